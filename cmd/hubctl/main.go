package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/taskhub/taskhub/config"
	"github.com/taskhub/taskhub/hub/client"
	"github.com/taskhub/taskhub/hub/connfile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError marks a bad command line: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitCode reports err on stderr and returns the process exit status. A
// hub error prints as "ename: evalue", its Error form.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "hubctl: %v\nRun 'hubctl --help' for usage.\n", err)
		return 2
	}
	fmt.Fprintln(stderr, err)
	return 1
}

const usageText = `Usage: hubctl [--file F] [--timeout D] <command> [flags] [args]

Commands:
  history [--limit N]                        msg_ids of recorded tasks, newest last
  query '<json>' [--keys a,b] [--format F]   task records matching a query; F is table, json or jsonl
  result <msg_id>...                         status and result of tasks
  status [--verbose]                         engines and queue counts
  purge <msg_id>... | --all | --engine N     drop completed task records
  resubmit <msg_id>...                       run tasks again
  watch [--interval D] [--count N]           live view; Ctrl-C to quit
  shutdown                                   stop the hub

Global flags (also accepted after the command):
  --file F      client connection file (default: $TASKHUB_CLIENT_FILE, else
                ipcontroller-client.json in $TASKHUB_CONNECTION_DIR or %s)
  --timeout D   bound on each request to the hub (default %v)

Exit status: 0 success, 1 failure (hub errors print as "ename: evalue"), 2 bad usage.
`

// globals are the flags every command accepts.
type globals struct {
	file    string
	timeout time.Duration
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.file, "file", g.file, "client connection `file`")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "bound on each request")
}

// env is what a command works with.
type env struct {
	g      globals
	stdout io.Writer
	c      *client.Client // dialled lazily by connect
}

// connect dials the hub named by the connection file.
func (e *env) connect(ctx context.Context) (*client.Client, error) {
	path := e.g.file
	if path == "" {
		path = defaultClientFile(os.LookupEnv)
	}
	cf, err := connfile.ReadClient(path)
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(ctx, cf, client.Options{Timeout: e.g.timeout})
	if err != nil {
		return nil, err
	}
	e.c = c
	return c, nil
}

// defaultClientFile is $TASKHUB_CLIENT_FILE, else the client file in
// $TASKHUB_CONNECTION_DIR (hubd's connection_dir setting), else in hubd's
// default connection directory.
func defaultClientFile(lookup func(string) (string, bool)) string {
	if p, ok := lookup(config.ClientFileEnv); ok && p != "" {
		return p
	}
	dir, ok := lookup(config.EnvName("connection_dir"))
	if !ok || dir == "" {
		dir = config.DefaultConnectionDir(lookup)
	}
	return filepath.Join(dir, connfile.ClientFile)
}

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	g := globals{timeout: client.DefaultTimeout}
	fs := flag.NewFlagSet("hubctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, usageText, config.DefaultConnectionDir(os.LookupEnv), client.DefaultTimeout)
			return nil
		}
		return &usageError{err}
	}
	if fs.NArg() == 0 {
		return usagef("no command")
	}
	name := fs.Arg(0)
	if name == "help" {
		fmt.Fprintf(stdout, usageText, config.DefaultConnectionDir(os.LookupEnv), client.DefaultTimeout)
		return nil
	}
	define, ok := commands[name]
	if !ok {
		return usagef("unknown command %q", name)
	}
	cfs := flag.NewFlagSet("hubctl "+name, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	g.register(cfs)
	cmd := define(cfs)
	pos, err := parseInterspersed(cfs, fs.Args()[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, usageText, config.DefaultConnectionDir(os.LookupEnv), client.DefaultTimeout)
			return nil
		}
		return usagef("%s: %v", name, err)
	}
	if g.timeout <= 0 { // negative would lift the bound: a dead hub would hang hubctl
		return usagef("--timeout %v is not positive", g.timeout)
	}
	e := &env{g: g, stdout: stdout}
	defer func() {
		if e.c != nil {
			e.c.Close()
		}
	}()
	return cmd(ctx, e, pos)
}

// parseInterspersed parses flags anywhere among the arguments, as in
// "hubctl purge a b --engine 1", and returns the positional ones. After
// "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// needArgs checks the positional arguments of commands taking msg_ids.
func needArgs(name string, args []string) error {
	if len(args) == 0 {
		return usagef("%s: no msg_id given", name)
	}
	return nil
}

// csv splits a comma-separated flag value, dropping empty items.
func csv(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
