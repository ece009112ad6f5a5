package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/taskhub/taskhub/hub/client"
)

// runFunc executes a command with its positional arguments, once its
// flags are parsed.
type runFunc func(ctx context.Context, e *env, args []string) error

// commands maps each command to a function that defines its flags on fs
// and returns the command bound to them.
var commands = map[string]func(fs *flag.FlagSet) runFunc{
	"history":  historyCmd,
	"query":    queryCmd,
	"result":   func(*flag.FlagSet) runFunc { return result },
	"status":   statusCmd,
	"purge":    purgeCmd,
	"resubmit": func(*flag.FlagSet) runFunc { return resubmit },
	"watch":    watchCmd,
	"shutdown": func(*flag.FlagSet) runFunc { return shutdown },
}

func historyCmd(fs *flag.FlagSet) runFunc {
	limit := fs.Int("limit", 0, "show only the newest `N` msg_ids (0: all)")
	return func(ctx context.Context, e *env, args []string) error { return history(ctx, e, args, *limit) }
}

func history(ctx context.Context, e *env, args []string, historyLimit int) error {
	if len(args) > 0 {
		return usagef("history: unexpected arguments %q", args)
	}
	if historyLimit < 0 {
		return usagef("history: --limit %d is negative", historyLimit)
	}
	c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	ids, err := c.History(ctx)
	if err != nil {
		return err
	}
	if historyLimit > 0 && len(ids) > historyLimit {
		ids = ids[len(ids)-historyLimit:]
	}
	var b bytes.Buffer
	for _, id := range ids {
		b.WriteString(id)
		b.WriteByte('\n')
	}
	_, err = e.stdout.Write(b.Bytes())
	return err
}

func queryCmd(fs *flag.FlagSet) runFunc {
	keys := fs.String("keys", "", "comma-separated record `keys` to return (msg_id is always there)")
	format := fs.String("format", "table", "output `format`: table, json or jsonl")
	return func(ctx context.Context, e *env, args []string) error {
		return query(ctx, e, args, csv(*keys), *format)
	}
}

// tableKeys are the columns of a table when --keys is not given.
var tableKeys = []string{"msg_id", "queue", "engine_uuid", "submitted", "started", "completed"}

func query(ctx context.Context, e *env, args []string, keys []string, format string) error {
	if len(args) != 1 {
		return usagef(`query: want one JSON query argument, e.g. '{"completed": {"$ne": null}}'`)
	}
	q, err := parseQuery(args[0])
	if err != nil {
		return usagef("query: %v", err)
	}
	switch format {
	case "table":
		if len(keys) == 0 {
			keys = tableKeys
		}
	case "json", "jsonl":
	default:
		return usagef("query: --format %q is not one of table, json, jsonl", format)
	}
	c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	recs, err := c.DBQuery(ctx, q, keys)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	switch format {
	case "table":
		writeTable(&b, keys, recs)
	case "json":
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if recs == nil {
			recs = []client.Record{}
		}
		if err := enc.Encode(recs); err != nil {
			return err
		}
	case "jsonl":
		enc := json.NewEncoder(&b)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	}
	_, err = e.stdout.Write(b.Bytes())
	return err
}

// parseQuery reads a JSON query document. Integral numbers become int64,
// so that {"x": 3} compares as an integer, as it would from Python.
func parseQuery(s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var q map[string]any
	if err := dec.Decode(&q); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, errors.New("not a JSON object: text after the object")
	}
	if q == nil {
		return nil, errors.New("not a JSON object: null")
	}
	v, err := numbers(q)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// numbers converts the json.Numbers in v to int64 or float64. A number
// too large for a float64 is an error.
func numbers(v any) (any, error) {
	var err error
	switch v := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return n, nil
		}
		f, err := v.Float64() // json.Decoder has checked the syntax
		if err != nil {
			return nil, fmt.Errorf("number %s is out of range", v)
		}
		return f, nil
	case map[string]any:
		for k, x := range v {
			if v[k], err = numbers(x); err != nil {
				return nil, err
			}
		}
	case []any:
		for i, x := range v {
			if v[i], err = numbers(x); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// writeTable writes records as aligned columns, one per key.
func writeTable(w io.Writer, keys []string, recs []client.Record) {
	if !slices.Contains(keys, "msg_id") {
		keys = append([]string{"msg_id"}, keys...)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(keys, "\t")))
	for _, r := range recs {
		cells := make([]string, len(keys))
		for i, k := range keys {
			cells[i] = cell(r[k])
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

func result(ctx context.Context, e *env, args []string) error {
	if err := needArgs("result", args); err != nil {
		return err
	}
	c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	// One request per msg_id: the reply does not say which buffers belong
	// to which task when it carries several.
	for _, id := range args {
		r, err := c.Results(ctx, []string{id})
		if err != nil {
			return err
		}
		writeResult(&b, id, r)
	}
	_, err = e.stdout.Write(b.Bytes())
	return err
}

func statusCmd(fs *flag.FlagSet) runFunc {
	verbose := fs.Bool("verbose", false, "list the msg_ids in each queue")
	return func(ctx context.Context, e *env, args []string) error { return status(ctx, e, args, *verbose) }
}

func status(ctx context.Context, e *env, args []string, verbose bool) error {
	if len(args) > 0 {
		return usagef("status: unexpected arguments %q", args)
	}
	c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	s, err := sample(ctx, c, verbose)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	writeStatus(&b, s, verbose)
	_, err = e.stdout.Write(b.Bytes())
	return err
}

// intList collects a repeatable integer flag.
type intList []int

func (l *intList) String() string { return fmt.Sprint(*l) }
func (l *intList) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not an engine id", s)
	}
	*l = append(*l, n)
	return nil
}

func purgeCmd(fs *flag.FlagSet) runFunc {
	all := fs.Bool("all", false, "drop the records of every completed task")
	var engines intList
	fs.Var(&engines, "engine", "drop the completed tasks of engine `N` (repeatable)")
	return func(ctx context.Context, e *env, args []string) error { return purge(ctx, e, args, *all, engines) }
}

func purge(ctx context.Context, e *env, args []string, all bool, engines []int) error {
	switch {
	case all && (len(args) > 0 || len(engines) > 0):
		return usagef("purge: --all takes no msg_id or --engine")
	case !all && len(args) == 0 && len(engines) == 0:
		return usagef("purge: give msg_ids, --engine N or --all")
	}
	c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	if all {
		return c.PurgeAll(ctx)
	}
	return c.Purge(ctx, args, engines)
}

func resubmit(ctx context.Context, e *env, args []string) error {
	if err := needArgs("resubmit", args); err != nil {
		return err
	}
	c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	m, err := c.Resubmit(ctx, args)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, old := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s -> %s\n", old, m[old])
	}
	_, err = e.stdout.Write(b.Bytes())
	return err
}

func shutdown(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usagef("shutdown: unexpected arguments %q", args)
	}
	c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	if err := c.Shutdown(ctx); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "hub at %s is shutting down\n", c.Addr())
	return err
}
