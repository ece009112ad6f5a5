package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/taskhub/taskhub/hub/client"
	"github.com/taskhub/taskhub/wire"
)

// dateLayout shows dates in local time, to the millisecond.
const dateLayout = "2006-01-02 15:04:05.000"

// maxCell bounds a table cell; longer values are cut with "…".
const maxCell = 60

// cell renders a record value for a table: dates human-readable, buffers
// as counts, documents as compact JSON, null as "-", the empty string as "".
func cell(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		return "-"
	case time.Time:
		return v.Local().Format(dateLayout)
	case string:
		if t, ok := wire.ParseDate(v); ok {
			return t.Local().Format(dateLayout)
		}
		if v == "" {
			return `""`
		}
		s = v
	case []byte:
		return fmt.Sprintf("<%d bytes>", len(v))
	case [][]byte:
		return buffers(v)
	case map[string]any, []any:
		b, err := json.Marshal(v)
		if err != nil {
			s = fmt.Sprint(v)
		} else {
			s = string(b)
		}
	default:
		s = fmt.Sprint(v)
	}
	s = strings.NewReplacer("\n", `\n`, "\t", " ", "\r", `\r`).Replace(s)
	if r := []rune(s); len(r) > maxCell {
		s = string(r[:maxCell-1]) + "…"
	}
	return s
}

func buffers(bufs [][]byte) string {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	if len(bufs) == 1 {
		return fmt.Sprintf("1 buffer, %d bytes", n)
	}
	return fmt.Sprintf("%d buffers, %d bytes", len(bufs), n)
}

// writeResult writes one task's status and, if completed, its result.
func writeResult(w io.Writer, id string, r client.Results) {
	res, done := r.Results[id]
	if !done {
		fmt.Fprintf(w, "%s: pending\n", id)
		return
	}
	rc := res.ResultContent
	fmt.Fprintf(w, "%s: completed, %s\n", id, cell(rc["status"]))
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	field := func(name string, v any) {
		if v != nil && v != "" {
			fmt.Fprintf(tw, "  %s:\t%s\n", name, cell(v))
		}
	}
	field("engine", res.ResultMetadata["engine"])
	field("submitted", res.Header["date"])
	field("started", res.ResultMetadata["started"])
	field("completed", res.ResultHeader["date"])
	if !res.Received.IsZero() {
		field("received", res.Received)
	}
	if rc["status"] == "error" {
		fmt.Fprintf(tw, "  error:\t%v: %v\n", rc["ename"], rc["evalue"])
	}
	field("execute_input", res.IO["execute_input"])
	field("execute_result", res.IO["execute_result"])
	field("stdout", res.IO["stdout"])
	field("stderr", res.IO["stderr"])
	if len(r.Buffers) > 0 {
		field("buffers", r.Buffers)
	}
	tw.Flush()
}

// snapshot is one view of the hub's engines and queues.
type snapshot struct {
	at      time.Time
	engines map[int]string // live engines: id → uuid
	queues  client.QueueStatus
}

func sample(ctx context.Context, c *client.Client, verbose bool) (snapshot, error) {
	engines, err := c.Connection(ctx)
	if err != nil {
		return snapshot{}, err
	}
	qs, err := c.QueueStatus(ctx, nil, verbose)
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{at: time.Now(), engines: engines, queues: qs}, nil
}

// totals sums the queues: direct requests waiting on engines, load-balanced
// tasks on engines, tasks waiting for an engine, and completed requests.
func (s snapshot) totals() (queued, running, unassigned, completed int) {
	for _, q := range s.queues.Engines {
		queued += q.Queue
		running += q.Tasks
		completed += q.Completed
	}
	return queued, running, s.queues.Unassigned, completed
}

// ids lists every engine id the hub reported, sorted.
func (s snapshot) ids() []int {
	set := maps.Clone(s.engines)
	if set == nil {
		set = map[int]string{}
	}
	for id := range s.queues.Engines {
		if _, ok := set[id]; !ok {
			set[id] = ""
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// writeStatus writes the summary line and one row per engine; verbose adds
// the msg_ids of each queue.
func writeStatus(w io.Writer, s snapshot, verbose bool) {
	queued, running, unassigned, completed := s.totals()
	fmt.Fprintf(w, "engines: %d   pending: %d (queued %d, running %d, unassigned %d)   completed: %d\n",
		len(s.engines), queued+running+unassigned, queued, running, unassigned, completed)
	ids := s.ids()
	if len(ids) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENGINE\tUUID\tQUEUE\tTASKS\tCOMPLETED")
	for _, id := range ids {
		q := s.queues.Engines[id]
		uuid, live := s.engines[id]
		if !live {
			uuid = "(gone)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\n", id, uuid, q.Queue, q.Tasks, q.Completed)
	}
	tw.Flush()
	if !verbose {
		return
	}
	tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, id := range ids {
		q := s.queues.Engines[id]
		fmt.Fprintf(tw, "engine %d:\n", id)
		for _, l := range []struct {
			name string
			ids  []string
		}{{"queue", q.QueueIDs}, {"tasks", q.TaskIDs}, {"completed", q.CompletedIDs}} {
			fmt.Fprintf(tw, "  %s:\t%s\n", l.name, idList(l.ids))
		}
	}
	fmt.Fprintf(tw, "unassigned:\t%s\n", idList(s.queues.UnassignedIDs))
	tw.Flush()
}

// idList joins msg_ids with spaces; "-" for none.
func idList(ids []string) string {
	if len(ids) == 0 {
		return "-"
	}
	return strings.Join(ids, " ")
}
