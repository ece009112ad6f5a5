package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskhub/taskhub/hub"
	"github.com/taskhub/taskhub/hub/client/clienttest"
	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/wire"
)

func TestMain(m *testing.M) {
	time.Local = time.UTC // dates in tables print in local time
	os.Exit(m.Run())
}

var (
	t0 = time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)
	t1 = t0.Add(1500 * time.Millisecond)
)

// fakeHub answers every query with fixed data: two engines (one gone from
// the connection reply), three recorded tasks, one failed.
func fakeHub(req *wire.Message) *clienttest.Reply {
	switch req.Header.MsgType {
	case "connection_request":
		return clienttest.OK("connection_reply", map[string]any{"engines": map[string]any{"0": "uuid-0"}})
	case "queue_request":
		if req.Content["verbose"] == true {
			return clienttest.OK("queue_reply", map[string]any{
				"0":          map[string]any{"queue": []string{}, "tasks": []string{"t2"}, "completed": []string{"t0", "t1"}},
				"1":          map[string]any{"queue": []string{"m9"}, "tasks": []string{}, "completed": []string{}},
				"unassigned": []string{"t3"}})
		}
		return clienttest.OK("queue_reply", map[string]any{
			"0": map[string]any{"queue": 0, "tasks": 1, "completed": 2},
			"1": map[string]any{"queue": 1, "tasks": 0, "completed": 0}, "unassigned": 1})
	case "history_request":
		return clienttest.OK("history_reply", map[string]any{"history": []string{"t0", "t1", "t2"}})
	case "db_request":
		if q, _ := req.Content["query"].(map[string]any); q["msg_id"] == "bad" {
			return clienttest.Error("db_reply", &wire.Error{Name: "InvalidQuery", Value: `field "msg_id": $foo is not an operator`})
		}
		return clienttest.OK("db_reply", map[string]any{"records": []any{
			map[string]any{"msg_id": "t0", "queue": "task", "engine_uuid": "uuid-0", "submitted": t0, "started": t0, "completed": t1,
				"stdout": "line1\nline2", "result_content": map[string]any{"status": "ok"}},
			map[string]any{"msg_id": "t1", "queue": "task", "engine_uuid": nil, "submitted": t0, "started": nil, "completed": nil, "stdout": ""},
		}, "buffer_lens": nil, "result_buffer_lens": nil})
	case "result_request":
		id := req.Content["msg_ids"].([]any)[0].(string)
		switch id {
		case "pending":
			return clienttest.OK("result_reply", map[string]any{"pending": []string{id}, "completed": []string{}})
		case "nope":
			return clienttest.Error("result_reply", &wire.Error{Name: "KeyError", Value: "No such message: nope"})
		}
		content := map[string]any{"status": "ok"}
		if id == "failed" {
			content = map[string]any{"status": "error", "ename": "ZeroDivisionError", "evalue": "division by zero"}
		}
		return clienttest.OK("result_reply", map[string]any{"pending": []string{}, "completed": []string{id},
			id: map[string]any{"header": map[string]any{"date": wire.FormatDate(t0)}, "metadata": map[string]any{},
				"result_header": map[string]any{"date": wire.FormatDate(t1)}, "result_metadata": map[string]any{"engine": "uuid-0", "started": wire.FormatDate(t0)},
				"result_content": content, "received": t1,
				"io": map[string]any{"stdout": "hello\n", "stderr": "", "execute_input": nil, "execute_result": nil, "error": nil}}},
			[]byte("abc"), []byte("de"))
	case "purge_request":
		if ids, _ := req.Content["engine_ids"].([]any); len(ids) > 0 && ids[0] == int64(9) {
			return clienttest.Error("purge_reply", &wire.Error{Name: "IndexError", Value: "No such engine: 9"})
		}
		return clienttest.OK("purge_reply", nil)
	case "resubmit_request":
		return clienttest.OK("resubmit_reply", map[string]any{"resubmitted": map[string]any{"t1": "n1", "t0": "n0"}})
	case "shutdown_request":
		return clienttest.OK("shutdown_reply", nil)
	}
	return clienttest.Error("hub_error", &wire.Error{Name: "KeyError", Value: "Bad Message Type: " + req.Header.MsgType})
}

func writeClientFile(t *testing.T, cf connfile.Client) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), connfile.ClientFile)
	if err := connfile.Write(path, cf); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCommands(t *testing.T) {
	h := clienttest.Start(t, "msgpack", fakeHub)
	file := writeClientFile(t, h.File)
	for _, c := range []struct {
		name    string
		args    []string
		code    int
		stdout  string // exact, when not empty
		has     []string
		stderr  string
		request map[string]any // content of the last request, when not nil
	}{
		{name: "history", args: []string{"history"}, stdout: "t0\nt1\nt2\n"},
		{name: "history limit", args: []string{"history", "--limit", "2"}, stdout: "t1\nt2\n"},
		{name: "history limit larger", args: []string{"history", "--limit=10"}, stdout: "t0\nt1\nt2\n"},
		{name: "query table", args: []string{"query", `{"completed": {"$ne": null}, "x": 3, "y": 1.5}`},
			stdout: "MSG_ID  QUEUE  ENGINE_UUID  SUBMITTED                STARTED                  COMPLETED\n" +
				"t0      task   uuid-0       2024-01-02 03:04:05.123  2024-01-02 03:04:05.123  2024-01-02 03:04:06.623\n" +
				"t1      task   -            2024-01-02 03:04:05.123  -                        -\n",
			request: map[string]any{"query": map[string]any{"completed": map[string]any{"$ne": nil}, "x": int64(3), "y": 1.5},
				"keys": []any{"msg_id", "queue", "engine_uuid", "submitted", "started", "completed"}}},
		{name: "query keys", args: []string{"query", "{}", "--keys", "stdout,result_content"},
			stdout: "MSG_ID  STDOUT        RESULT_CONTENT\n" +
				"t0      line1\\nline2  {\"status\":\"ok\"}\n" +
				"t1      \"\"            -\n",
			request: map[string]any{"query": map[string]any{}, "keys": []any{"stdout", "result_content"}}},
		{name: "query json", args: []string{"query", "{}", "--format", "json"},
			has:     []string{"[\n  {\n", `"completed": "2024-01-02T03:04:06.623456Z"`, `"msg_id": "t1"`},
			request: map[string]any{"query": map[string]any{}, "keys": nil}},
		{name: "query jsonl", args: []string{"query", "--format=jsonl", "{}"},
			has: []string{`{"completed":"2024-01-02T03:04:06.623456Z","engine_uuid":"uuid-0",`, "\n{\"completed\":null,"}},
		{name: "query hub error", args: []string{"query", `{"msg_id": "bad"}`}, code: 1,
			stderr: "InvalidQuery: field \"msg_id\": $foo is not an operator\n"},
		{name: "query bad json", args: []string{"query", "{"}, code: 2, stderr: "query: not a JSON object"},
		{name: "query trailing", args: []string{"query", "{} {}"}, code: 2, stderr: "text after the object"},
		{name: "query null", args: []string{"query", "null"}, code: 2, stderr: "not a JSON object: null"},
		{name: "query huge number", args: []string{"query", `{"x": [1e400]}`}, code: 2, stderr: "query: number 1e400 is out of range"},
		{name: "query no arg", args: []string{"query"}, code: 2, stderr: "want one JSON query argument"},
		{name: "query bad format", args: []string{"query", "{}", "--format", "csv"}, code: 2, stderr: `--format "csv" is not one of table, json, jsonl`},
		{name: "result", args: []string{"result", "t0", "pending"},
			stdout: "t0: completed, ok\n" +
				"  engine:    uuid-0\n" +
				"  submitted: 2024-01-02 03:04:05.123\n" +
				"  started:   2024-01-02 03:04:05.123\n" +
				"  completed: 2024-01-02 03:04:06.623\n" +
				"  received:  2024-01-02 03:04:06.623\n" +
				"  stdout:    hello\\n\n" +
				"  buffers:   2 buffers, 5 bytes\n" +
				"pending: pending\n"},
		{name: "result failed", args: []string{"result", "failed"}, has: []string{"failed: completed, error\n", "  error:     ZeroDivisionError: division by zero\n"}},
		{name: "result unknown", args: []string{"result", "t0", "nope"}, code: 1, stderr: "KeyError: No such message: nope\n"},
		{name: "negative timeout", args: []string{"history", "--timeout", "-1s"}, code: 2, stderr: "--timeout -1s is not positive"},
		{name: "zero timeout", args: []string{"--timeout=0s", "status"}, code: 2, stderr: "--timeout 0s is not positive"},
		{name: "result no id", args: []string{"result"}, code: 2, stderr: "result: no msg_id given"},
		{name: "status", args: []string{"status"},
			stdout: "engines: 1   pending: 3 (queued 1, running 1, unassigned 1)   completed: 2\n" +
				"ENGINE  UUID    QUEUE  TASKS  COMPLETED\n" +
				"0       uuid-0  0      1      2\n" +
				"1       (gone)  1      0      0\n",
			request: map[string]any{"targets": nil, "verbose": false}},
		{name: "status verbose", args: []string{"status", "--verbose"},
			stdout: "engines: 1   pending: 3 (queued 1, running 1, unassigned 1)   completed: 2\n" +
				"ENGINE  UUID    QUEUE  TASKS  COMPLETED\n" +
				"0       uuid-0  0      1      2\n" +
				"1       (gone)  1      0      0\n" +
				"engine 0:\n" +
				"  queue:     -\n" +
				"  tasks:     t2\n" +
				"  completed: t0 t1\n" +
				"engine 1:\n" +
				"  queue:     m9\n" +
				"  tasks:     -\n" +
				"  completed: -\n" +
				"unassigned:  t3\n",
			request: map[string]any{"targets": nil, "verbose": true}},
		{name: "purge ids", args: []string{"purge", "t0", "t1"}, request: map[string]any{"msg_ids": []any{"t0", "t1"}, "engine_ids": []any{}}},
		{name: "purge engines", args: []string{"purge", "--engine", "1", "t0", "--engine=2"},
			request: map[string]any{"msg_ids": []any{"t0"}, "engine_ids": []any{int64(1), int64(2)}}},
		{name: "purge all", args: []string{"purge", "--all"}, request: map[string]any{"msg_ids": "all", "engine_ids": []any{}}},
		{name: "purge unknown engine", args: []string{"purge", "--engine", "9"}, code: 1, stderr: "IndexError: No such engine: 9\n"},
		{name: "purge nothing", args: []string{"purge"}, code: 2, stderr: "purge: give msg_ids, --engine N or --all"},
		{name: "purge all and ids", args: []string{"purge", "--all", "t0"}, code: 2, stderr: "--all takes no msg_id"},
		{name: "purge bad engine", args: []string{"purge", "--engine", "x"}, code: 2, stderr: `"x" is not an engine id`},
		{name: "purge dashdash", args: []string{"purge", "--", "--all"}, request: map[string]any{"msg_ids": []any{"--all"}, "engine_ids": []any{}}},
		{name: "resubmit", args: []string{"resubmit", "t1", "t0"}, stdout: "t0 -> n0\nt1 -> n1\n", request: map[string]any{"msg_ids": []any{"t1", "t0"}}},
		{name: "resubmit no id", args: []string{"resubmit"}, code: 2},
		{name: "watch", args: []string{"watch", "--count", "2", "--interval", "10ms"},
			has: []string{"taskhub watch  " + h.File.Endpoint(h.File.Registration), "tasks/s: -\n", "tasks/s: 0.0\n", "pending: 3 (queued 1, running 1, unassigned 1)"}},
		{name: "watch bad interval", args: []string{"watch", "--interval", "0s"}, code: 2, stderr: "--interval 0s is not positive"},
		{name: "shutdown", args: []string{"shutdown"}, stdout: "hub at " + h.File.Endpoint(h.File.Registration) + " is shutting down\n"},
		{name: "shutdown args", args: []string{"shutdown", "now"}, code: 2},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: `hubctl: unknown command "frobnicate"`},
		{name: "no command", args: []string{}, code: 2, stderr: "hubctl: no command"},
		{name: "help", args: []string{"--help"}, has: []string{"Usage: hubctl", "watch [--interval D] [--count N]", "TASKHUB_CLIENT_FILE"}},
		{name: "help command", args: []string{"help"}, has: []string{"Usage: hubctl"}},
		{name: "bad global flag", args: []string{"--bogus", "status"}, code: 2},
		{name: "missing file", args: []string{"--file", "/nonexistent/c.json", "status"}, code: 1, stderr: "no connection file (is the hub running?)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for len(h.Requests) > 0 {
				<-h.Requests
			}
			var stdout, stderr bytes.Buffer
			code := exitCode(run(t.Context(), append([]string{"--file", file}, c.args...), &stdout, &stderr), &stderr)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, c.code, &stderr)
			}
			if c.stdout != "" && stdout.String() != c.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", &stdout, c.stdout)
			}
			for _, w := range c.has {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, &stdout)
				}
			}
			if !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr %q lacks %q", &stderr, c.stderr)
			}
			if c.request != nil {
				var last *wire.Message
				for len(h.Requests) > 0 {
					last = <-h.Requests
				}
				if last == nil || !reflect.DeepEqual(last.Content, c.request) {
					t.Errorf("request content %#v\nwant %#v", last, c.request)
				}
			}
		})
	}
}

// An unreachable hub gives a clear error and exit 1 within the timeout.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	file := writeClientFile(t, connfile.Client{Interface: "tcp://127.0.0.1", Registration: port, Control: 1, Mux: 1, Task: 1,
		IOPub: 1, Notification: 1, Broadcast: 1, Pack: "json", Unpack: "json", SignatureScheme: "hmac-sha256"})
	var stderr bytes.Buffer
	start := time.Now()
	code := exitCode(run(t.Context(), []string{"history", "--file", file, "--timeout", "300ms"}, &bytes.Buffer{}, &stderr), &stderr)
	want := "hub at tcp://127.0.0.1:" + strconv.Itoa(port) + " is not reachable"
	if code != 1 || !strings.Contains(stderr.String(), want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, &stderr, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v with --timeout 300ms", d)
	}
}

// A hub that never answers times out with a message naming it.
func TestSilentHub(t *testing.T) {
	h := clienttest.Start(t, "json", func(*wire.Message) *clienttest.Reply { return nil })
	var stderr bytes.Buffer
	code := exitCode(run(t.Context(), []string{"--timeout", "1s", "--file", writeClientFile(t, h.File), "status"}, &bytes.Buffer{}, &stderr), &stderr)
	want := "hub at " + h.File.Endpoint(h.File.Registration) + " did not answer connection_request within 1s"
	if code != 1 || !strings.Contains(stderr.String(), want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, &stderr, want)
	}
}

// watch ends with exit 0 when its context ends (Ctrl-C).
func TestWatchInterrupted(t *testing.T) {
	h := clienttest.Start(t, "msgpack", fakeHub)
	ctx, cancel := context.WithCancel(t.Context())
	out := &signalWriter{wrote: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--file", writeClientFile(t, h.File), "watch", "--interval", "1h"}, out, &bytes.Buffer{})
	}()
	select {
	case <-out.wrote: // the first frame is out; the next is an hour away
	case err := <-done:
		t.Fatalf("watch ended before drawing: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watch after Ctrl-C: %v, want nil", err)
	}
}

type signalWriter struct{ wrote chan struct{} }

func (w *signalWriter) Write(p []byte) (int, error) {
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func TestDefaultClientFile(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"TASKHUB_CLIENT_FILE": "/x/c.json", "HOME": "/h"}, "/x/c.json"},
		{map[string]string{"TASKHUB_CONNECTION_DIR": "/d", "HOME": "/h"}, "/d/ipcontroller-client.json"},
		{map[string]string{"XDG_RUNTIME_DIR": "/run/user/1", "HOME": "/h"}, "/run/user/1/taskhub/ipcontroller-client.json"},
		{map[string]string{"HOME": "/h"}, "/h/.taskhub/security/ipcontroller-client.json"},
	} {
		got := defaultClientFile(func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
		if got != c.want {
			t.Errorf("env %v: %q, want %q", c.env, got, c.want)
		}
	}
}

// hubctl against the real hub: the commands that need no engines.
func TestRealHub(t *testing.T) {
	h, err := hub.New(hub.Config{ConnectionDir: t.TempDir()}, dictdb.New(dictdb.DefaultOptions()),
		slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(context.Background()) }()
	file, _ := h.ConnectionFiles()
	for _, c := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{args: []string{"status"}, stdout: "engines: 0   pending: 0 (queued 0, running 0, unassigned 0)   completed: 0\n"},
		{args: []string{"history"}, stdout: ""},
		{args: []string{"query", `{"completed": {"$ne": null}}`}, stdout: "MSG_ID  QUEUE  ENGINE_UUID  SUBMITTED  STARTED  COMPLETED\n"},
		{args: []string{"query", `{"completed": {"$near": 1}}`}, code: 1, stderr: "InvalidQuery: "},
		{args: []string{"result", "nope"}, code: 1, stderr: "KeyError: "},
		{args: []string{"purge", "--all"}},
		{args: []string{"shutdown"}, stdout: "hub at " + h.ClientInfo().Endpoint(h.ClientInfo().Registration) + " is shutting down\n"},
	} {
		var stdout, stderr bytes.Buffer
		code := exitCode(run(t.Context(), append([]string{"--file", file}, c.args...), &stdout, &stderr), &stderr)
		if code != c.code || stdout.String() != c.stdout || !strings.Contains(stderr.String(), c.stderr) {
			t.Errorf("hubctl %v: exit %d, stdout %q, stderr %q; want %d, %q, %q", c.args, code, &stdout, &stderr, c.code, c.stdout, c.stderr)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("hub Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("hub still running after hubctl shutdown")
	}
}

// watch keeps refreshing across a hub restart: the frame while the hub is
// down shows the error, the next one the hub's state again.
func TestWatchHubRestart(t *testing.T) {
	h := clienttest.Start(t, "msgpack", fakeHub)
	out := &gateWriter{frames: make(chan string), ack: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- run(t.Context(), []string{"--timeout", "500ms", "--file", writeClientFile(t, h.File), "watch", "--interval", "1ms", "--count", "3"}, out, &bytes.Buffer{})
	}()
	for i, step := range []struct {
		want   string
		before func() // runs before the frame is released
	}{
		{"engines", h.Stop},
		{"error: ", func() { h = h.Restart() }},
		{"engines", func() {}},
	} {
		f := <-out.frames
		if !strings.Contains(strings.ToLower(f), step.want) || (step.want != "error: " && strings.Contains(f, "error: ")) {
			t.Errorf("frame %d = %q, want %q", i, f, step.want)
		}
		step.before()
		out.ack <- struct{}{}
	}
	if err := <-done; err != nil {
		t.Errorf("watch: %v, want nil after the last frame succeeded", err)
	}
}

// gateWriter hands each write to the test and waits for its go-ahead.
type gateWriter struct {
	frames chan string
	ack    chan struct{}
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.frames <- string(p)
	<-w.ack
	return len(p), nil
}
