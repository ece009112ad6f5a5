package integration_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb/mongodb/mongotest"
	"github.com/taskhub/taskhub/taskdb/postgres/pgtest"
)

// checkResults checks the results driver.py's run got from its engines.
func checkResults(t *testing.T, r report, engines int) {
	t.Helper()
	if r.Engines != engines {
		t.Errorf("rc.ids has %d engines, want %d", r.Engines, engines)
	}
	if want := []int{0, 1, 4, 9, 16, 25}; !slices.Equal(r.Squares, want) {
		t.Errorf("map(square) = %v, want %v", r.Squares, want)
	}
	if r.Answer != 42 {
		t.Errorf("greet() = %d, want 42", r.Answer)
	}
}

// checkStored checks that driver.py saw every task of r in
// rc.hub_history() and rc.db_query(), completed, the greeting task with
// its stdout.
func checkStored(t *testing.T, r report) {
	t.Helper()
	h := r.history(t)
	for _, id := range r.taskIDs() {
		if !slices.Contains(h, id) {
			t.Errorf("rc.hub_history() lacks task %s: %v", id, h)
		}
	}
	recs := r.records(t)
	for _, id := range r.taskIDs() {
		rec, ok := recs[id]
		switch {
		case !ok:
			t.Errorf("rc.db_query() lacks task %s", id)
		case rec.Submitted == "" || rec.Completed == "" || rec.EngineUUID == "" || rec.Queue != "task":
			t.Errorf("record %s: submitted %q, completed %q, engine_uuid %q, queue %q; want all set, queue task",
				id, rec.Submitted, rec.Completed, rec.EngineUUID, rec.Queue)
		}
	}
	if got := recs[r.GreetID].Stdout; !strings.Contains(got, "hello from taskhub") {
		t.Errorf("record %s: stdout %q, want the task's greeting", r.GreetID, got)
	}
}

// watcher is a hubctl watch process running until stopped.
type watcher struct {
	cmd     *exec.Cmd
	out     *lockedBuffer
	exited  chan struct{} // closed when the process has exited
	waitErr error         // set before exited is closed
}

// startWatch starts hubctl watch on h, refreshing every 200ms.
func startWatch(t *testing.T, h *hubd) *watcher {
	t.Helper()
	w := &watcher{
		cmd:    exec.Command(bin.hubctl, "--file", h.clientFile, "watch", "--interval", "200ms"),
		out:    &lockedBuffer{},
		exited: make(chan struct{}),
	}
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.waitErr = w.cmd.Wait(); close(w.exited) }()
	t.Cleanup(func() {
		w.cmd.Process.Kill()
		<-w.exited
	})
	return w
}

func (w *watcher) frames() int { return strings.Count(w.out.String(), "taskhub watch") }

// waitFrames waits until watch has drawn n frames.
func (w *watcher) waitFrames(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(commandTimeout)
	for w.frames() < n {
		if time.Now().After(deadline) {
			t.Fatalf("hubctl watch drew %d frames in %v, want %d:\n%s", w.frames(), commandTimeout, n, w.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop interrupts watch as Ctrl-C would, checks that it exits 0, and
// returns its output.
func (w *watcher) stop(t *testing.T) string {
	t.Helper()
	if err := w.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.exited:
		if w.waitErr != nil {
			t.Errorf("hubctl watch after SIGINT: %v, want exit status 0\n%s", w.waitErr, w.out)
		}
	case <-time.After(commandTimeout):
		t.Fatalf("hubctl watch still running %v after SIGINT", commandTimeout)
	}
	return w.out.String()
}

// tableDate is a date as hubctl's tables show it.
var tableDate = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}`)

// The default dict backend with the real ipyparallel Client and 2 engines;
// then every hubctl command against that hub while the engines run, and
// hubctl shutdown.
func TestDictWithEngines(t *testing.T) {
	t.Parallel()
	py := python(t)
	dir := t.TempDir()
	h := startHubd(t, writeConfig(t, dir, hubConfig(dir, "")), filepath.Join(dir, "conn"))
	startEngines(t, py, h, dir, 2)
	w := startWatch(t, h)
	w.waitFrames(t, 1) // a first sample before any task completes
	r := driver(t, py, h, "run", "2")
	checkResults(t, r, 2)
	checkStored(t, r)
	ids := r.taskIDs()

	t.Run("watch while tasks run", func(t *testing.T) {
		w.waitFrames(t, w.frames()+1) // a sample after every task completed
		out := w.stop(t)
		frames := strings.Split(out, "taskhub watch")
		last := frames[len(frames)-1]
		if !strings.Contains(last, "engines: 2 ") || !strings.Contains(last, "completed: "+strconv.Itoa(len(ids))) {
			t.Errorf("watch's last frame: want 2 engines and %d completed tasks:\n%s", len(ids), last)
		}
		positive := false
		for _, m := range regexp.MustCompile(`tasks/s: ([0-9.]+)`).FindAllStringSubmatch(out, -1) {
			if v, err := strconv.ParseFloat(m[1], 64); err == nil && v > 0 {
				positive = true
			}
		}
		if !positive {
			t.Errorf("watch never showed a positive tasks/s while %d tasks completed:\n%s", len(ids), out)
		}
	})

	t.Run("history", func(t *testing.T) {
		got := lines(h.ok(t, "history"))
		if len(got) != len(ids) || got[len(got)-1] != r.GreetID {
			t.Errorf("history = %q, want the %d tasks %q, the last one submitted last", got, len(ids), ids)
		}
		for _, id := range ids {
			if !slices.Contains(got, id) {
				t.Errorf("history lacks %s", id)
			}
		}
		if got := lines(h.ok(t, "history", "--limit", "1")); !slices.Equal(got, []string{r.GreetID}) {
			t.Errorf("history --limit 1 = %q, want [%s]", got, r.GreetID)
		}
	})

	t.Run("query", func(t *testing.T) {
		q := `{"msg_id": "` + r.GreetID + `"}`
		var recs []map[string]any
		if err := json.Unmarshal([]byte(h.ok(t, "query", q, "--keys", "stdout,completed", "--format", "json")), &recs); err != nil {
			t.Fatalf("query --format json: %v", err)
		}
		if len(recs) != 1 || recs[0]["msg_id"] != r.GreetID || recs[0]["completed"] == nil ||
			!strings.Contains(recs[0]["stdout"].(string), "hello from taskhub") {
			t.Errorf("query %s --keys stdout,completed = %v", q, recs)
		}
		if _, extra := recs[0]["engine_uuid"]; extra {
			t.Errorf("--keys stdout,completed returned engine_uuid too: %v", recs[0])
		}

		jsonl := lines(h.ok(t, "query", `{"completed": {"$ne": null}}`, "--keys", "msg_id", "--format", "jsonl"))
		var got []string
		for _, l := range jsonl {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("query --format jsonl line %q: %v", l, err)
			}
			got = append(got, rec["msg_id"].(string))
		}
		slices.Sort(got)
		if want := slices.Sorted(slices.Values(ids)); !slices.Equal(got, want) {
			t.Errorf("completed tasks in jsonl = %q, want %q", got, want)
		}

		table := lines(h.ok(t, "query", `{"msg_id": {"$in": ["`+strings.Join(ids, `", "`)+`"]}}`))
		if len(table) != 1+len(ids) {
			t.Fatalf("query --format table: %d lines, want a header and %d rows:\n%s", len(table), len(ids), strings.Join(table, "\n"))
		}
		if hdr := strings.Fields(table[0]); !slices.Equal(hdr, []string{"MSG_ID", "QUEUE", "ENGINE_UUID", "SUBMITTED", "STARTED", "COMPLETED"}) {
			t.Errorf("table header %q", table[0])
		}
		for _, row := range table[1:] {
			if n := len(tableDate.FindAllString(row, -1)); n != 3 {
				t.Errorf("table row has %d readable dates, want submitted, started, completed: %q", n, row)
			}
		}
	})

	t.Run("result", func(t *testing.T) {
		out := h.ok(t, "result", r.GreetID)
		for _, want := range []string{r.GreetID + ": completed, ok", "stdout:", "hello from taskhub"} {
			if !strings.Contains(out, want) {
				t.Errorf("result %s lacks %q:\n%s", r.GreetID, want, out)
			}
		}
	})

	t.Run("status", func(t *testing.T) {
		out := h.ok(t, "status", "--verbose")
		if !strings.HasPrefix(out, "engines: 2 ") || !strings.Contains(out, "completed: "+strconv.Itoa(len(ids))) {
			t.Errorf("status --verbose: want 2 engines and %d completed:\n%s", len(ids), out)
		}
		for _, id := range ids {
			if !strings.Contains(out, id) {
				t.Errorf("status --verbose lacks completed task %s:\n%s", id, out)
			}
		}
	})

	t.Run("watch", func(t *testing.T) {
		out := h.ok(t, "watch", "--count", "2", "--interval", "200ms")
		if n := strings.Count(out, "engines: 2 "); n != 2 {
			t.Errorf("watch --count 2: %d frames showing 2 engines, want 2:\n%s", n, out)
		}
		if n := strings.Count(out, "completed: "+strconv.Itoa(len(ids))); n != 2 {
			t.Errorf("watch --count 2: %d frames showing %d completed tasks, want 2:\n%s", n, len(ids), out)
		}
		if !regexp.MustCompile(`tasks/s: \d+\.\d`).MatchString(out) {
			t.Errorf("watch: no tasks/s rate in the second frame:\n%s", out)
		}
	})

	t.Run("resubmit", func(t *testing.T) {
		out := strings.TrimSpace(h.ok(t, "resubmit", r.MapIDs[0]))
		old, resub, ok := strings.Cut(out, " -> ")
		if !ok || old != r.MapIDs[0] || resub == "" {
			t.Fatalf("resubmit %s = %q, want %q", r.MapIDs[0], out, r.MapIDs[0]+" -> <new msg_id>")
		}
		deadline := time.Now().Add(commandTimeout)
		for out = h.ok(t, "result", resub); !strings.Contains(out, "completed, ok"); out = h.ok(t, "result", resub) {
			if time.Now().After(deadline) {
				t.Fatalf("resubmitted task %s not completed after %v:\n%s", resub, commandTimeout, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("purge", func(t *testing.T) {
		h.ok(t, "purge", r.GreetID)
		if got := lines(h.ok(t, "history")); slices.Contains(got, r.GreetID) {
			t.Errorf("history after purge %s still has it: %q", r.GreetID, got)
		}
		h.ok(t, "purge", "--all")
		if out := h.ok(t, "query", `{"completed": {"$ne": null}}`, "--format", "jsonl"); out != "" {
			t.Errorf("completed records after purge --all:\n%s", out)
		}
	})

	out := h.ok(t, "shutdown")
	if !strings.Contains(out, "shutting down") {
		t.Errorf("shutdown printed %q", out)
	}
	h.waitExit(t, "hubctl shutdown")
}

// db.backend: nodb in the config file: tasks still run and return results,
// while every read (rc.hub_history, rc.db_query, hubctl history and query)
// fails with NoData pointing at db.backend: dict. SIGTERM with engines
// connected still exits 0.
func TestNoDBWithEngines(t *testing.T) {
	t.Parallel()
	py := python(t)
	dir := t.TempDir()
	h := startHubd(t, writeConfig(t, dir, hubConfig(dir, "db:\n  backend: nodb\n")), filepath.Join(dir, "conn"))
	startEngines(t, py, h, dir, 1)
	r := driver(t, py, h, "run", "1")
	checkResults(t, r, 1)
	for name, raw := range map[string]json.RawMessage{"rc.hub_history()": r.History, "rc.db_query()": r.Records} {
		var e remoteError
		if json.Unmarshal(raw, &e) != nil || e.Ename != "NoData" || !strings.Contains(e.Evalue, "db.backend: dict") {
			t.Errorf("%s on nodb = %s, want a NoData error naming db.backend: dict", name, raw)
		}
	}
	for _, args := range [][]string{{"history"}, {"query", "{}"}, {"result", r.GreetID}} {
		res := h.hubctl(t, args...)
		if res.code != 1 || !strings.HasPrefix(res.stderr, "NoData: ") || !strings.Contains(res.stderr, "db.backend: dict") {
			t.Errorf("hubctl %q on nodb: exit %d, stderr %q; want exit 1, NoData: ... db.backend: dict", args, res.code, res.stderr)
		}
	}
	if out := h.ok(t, "status"); !strings.HasPrefix(out, "engines: 1 ") {
		t.Errorf("status on nodb = %q, want 1 engine", out)
	}
	h.terminate(t)
}

// db.backend: sqlite keeps the task history across a restart of hubd on
// the same file (issue 6). The json packer, the other one clients may use,
// carries the dates as strings the hub parses and stores.
func TestSQLiteRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "db", "tasks.db")
	checkRestart(t, dir, "session:\n  packer: json\ndb:\n  backend: sqlite\n  sqlite:\n    path: "+db+"\n")
}

// db.backend: postgres keeps the task history across a restart of hubd
// on the same table (issue 7).
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	table := pgtest.Table(t, dsn)
	dir := t.TempDir()
	checkRestart(t, dir, fmt.Sprintf("db:\n  backend: postgres\n  postgres:\n    dsn: %q\n    table: %s\n", dsn, table))
}

// db.backend: mongodb keeps the task history across a restart of hubd on
// the same collection (issue 7), here on the FerretDB fixture.
func TestMongoDBRestart(t *testing.T) {
	t.Parallel()
	python(t) // skips (or fails under CI) before a server is started
	uri := mongotest.URI(t)
	dir := t.TempDir()
	checkRestart(t, dir, fmt.Sprintf("db:\n  backend: mongodb\n  mongodb:\n    uri: %q\n    database: %s\n", uri, mongotest.Database(t, uri)))
}

// checkRestart runs tasks on a hubd configured with extra (see
// hubConfig), restarts it, and checks that history, results and queries
// are intact.
func checkRestart(t *testing.T, dir, extra string) {
	py := python(t)
	cfg := writeConfig(t, dir, hubConfig(dir, extra))
	conn := filepath.Join(dir, "conn")

	h := startHubd(t, cfg, conn)
	kill := startEngines(t, py, h, dir, 1)
	r := driver(t, py, h, "run", "1")
	checkResults(t, r, 1)
	checkStored(t, r)
	ids := r.taskIDs()
	before := lines(h.ok(t, "history"))
	h.terminate(t)
	kill()

	h = startHubd(t, cfg, conn)
	if after := lines(h.ok(t, "history")); !slices.Equal(after, before) {
		t.Errorf("history after restart = %q, want %q", after, before)
	}
	again := driver(t, py, h, append([]string{"report"}, ids...)...)
	again.MapIDs, again.GreetID = r.MapIDs, r.GreetID
	checkStored(t, again)
	// rc.get_result of tasks run before the restart, by another client:
	// each map task returned its chunk of one square.
	want := `[[0],[1],[4],[9],[16],[25],42]`
	if got, _ := json.Marshal(again.Results); string(got) != want {
		t.Errorf("rc.get_result(tasks).get() after restart = %s, want %s", again.Results, want)
	}
	if out := h.ok(t, "result", r.GreetID); !strings.Contains(out, r.GreetID+": completed, ok") || !strings.Contains(out, "hello from taskhub") {
		t.Errorf("hubctl result %s after restart:\n%s", r.GreetID, out)
	}
	out := h.ok(t, "query", `{"msg_id": "`+r.GreetID+`"}`, "--keys", "stdout", "--format", "jsonl")
	if !strings.Contains(out, "hello from taskhub") {
		t.Errorf("query after restart: %q, want the greeting task's stdout", out)
	}
	h.terminate(t)
}
