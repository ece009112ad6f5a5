package hub

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/taskdb/nodb"
	"github.com/taskhub/taskhub/taskdb/query"
)

func TestFinishedFIFO(t *testing.T) {
	f := newFinished(3)
	f.add("a", "E", endOK, true)
	f.add("b", "E", endAborted, true)
	f.add("c", "", endFailed, true)
	f.add("d", "F", endOK, false)
	if f.has("a") || f.len() != 3 {
		t.Fatalf("a kept or %d remembered; want the oldest forgotten, 3 kept", f.len())
	}
	f.add("b", "F", endOK, false) // finished again: moves to the end
	f.add("e", "E", endOK, true)
	if f.has("c") || !f.has("b") {
		t.Fatalf("c %v, b %v: want c forgotten, b kept", f.has("c"), f.has("b"))
	}
	if got := f.listOn([]string{"E", "F"}); !slices.Equal(got["E"], []string{"e"}) || !slices.Equal(got["F"], []string{"d", "b"}) {
		t.Fatalf("lists %v", got)
	}
	// a, forgotten, still counts on E.
	if f.completedOn("E") != 2 || f.completedOn("F") != 2 {
		t.Fatalf("counts E %d, F %d; want 2 and 2", f.completedOn("E"), f.completedOn("F"))
	}
	f.forgetEngine("F")
	if f.len() != 1 || f.completedOn("F") != 0 || len(f.perEngine) != 1 {
		t.Fatalf("after forgetting F: %d remembered, per engine %v", f.len(), f.perEngine)
	}
	f.forgetEngine("E")
	if f.completedOn("E") != 0 {
		t.Fatalf("after forgetting E: count %d", f.completedOn("E"))
	}
	f.add("x", "E", endOK, true)
	f.forgetAll()
	if f.len() != 0 || f.oldest != nil || len(f.perEngine) != 0 || f.completedOn("E") != 0 {
		t.Fatal("forgetAll left tasks")
	}
}

// TestFinishedMemoryBounded: however many tasks run, the hub remembers
// at most TaskMemory of them, and nothing else grows per task.
func TestFinishedMemoryBounded(t *testing.T) {
	const limit = 50
	x := newSocketlessWith(t, Config{Key: "k", Packer: "json", TaskMemory: limit}, nodb.New())
	x.s.beat(time.Now())
	for _, e := range []string{"e0", "e1"} {
		x.register(t, e)
	}
	x.runTasks(t, "e0", 1000)
	x.runTasks(t, "e1", 1000)
	x.flush()
	s, sc := x.s, x.s.sched
	if n := s.done.len(); n != limit {
		t.Errorf("%d finished tasks remembered, want %d", n, limit)
	}
	if n := s.done.completedOn("e0") + s.done.completedOn("e1"); n != 2000 {
		t.Errorf("the engines count %d completed tasks, want all 2000", n)
	}
	if l := s.done.listOn([]string{"e0", "e1"}); len(l["e0"])+len(l["e1"]) > limit || len(l["e1"]) == 0 {
		t.Errorf("lists of %d and %d tasks, want the last ones of the %d remembered", len(l["e0"]), len(l["e1"]), limit)
	}
	for what, n := range map[string]int{
		"pending": len(s.pending), "unassigned": len(s.unassigned),
		"scheduler jobs": len(sc.jobs), "dependency graph": len(sc.graph),
		"wait list": sc.waiting.Len(), "free queue": len(sc.free.h),
		"e0 tasks": len(s.reg.byUUID["e0"].tasks) + len(s.reg.byUUID["e0"].queue),
	} {
		if n != 0 {
			t.Errorf("%s holds %d entries after every task finished", what, n)
		}
	}
}

// TestDependencyOnForgottenTask: a dependency on a task the hub has
// forgotten is resolved from the task database as if remembered:
// success, failure and location (follow).
func TestDependencyOnForgottenTask(t *testing.T) {
	cfg := testConfig(t)
	cfg.TaskMemory = 2
	h := startHub(t, cfg, dictdb.New(dictdb.Options{}))
	c := newClient(t, h)
	e0 := startEngine(t, h, c, true)
	startEngine(t, h, c, true)
	okReq, okRep := c.run(t, "ok", map[string]any{"targets": []any{e0.uuid}})
	failReq, _ := c.run(t, "fail", nil)
	for range 3 {
		c.run(t, "ok", nil)
	}
	waitCompleted(t, c, okReq.Header.MsgID) // now from the database
	okID, failID := okReq.Header.MsgID, failReq.Header.MsgID
	var remembered bool
	onState(h, func() { remembered = h.st.done.has(okID) || h.st.done.has(failID) })
	if remembered {
		t.Fatal("tasks not forgotten")
	}
	for _, tc := range []struct {
		name  string
		md    map[string]any
		ename string // "" for success
	}{
		{"after success", map[string]any{"after": []any{okID}}, ""},
		{"after failure", map[string]any{"after": []any{failID}}, "ImpossibleDependency"},
		{"after failure allowed", map[string]any{"after": map[string]any{"dependencies": []any{failID}, "success": false, "failure": true}}, ""},
		{"follow", map[string]any{"follow": []any{okID}}, ""},
		{"unknown", map[string]any{"after": []any{okID, "never-submitted"}}, "InvalidDependency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r := c.run(t, "ok", tc.md)
			if tc.ename != "" {
				wantError(t, r, "apply_reply", tc.ename)
				return
			}
			if r.Content["status"] != "ok" {
				t.Fatalf("reply %v", r.Content)
			}
			if tc.md["follow"] != nil && r.Metadata["engine"] != okRep.Metadata["engine"] {
				t.Fatalf("ran on %v, want %v where its dependency ran", r.Metadata["engine"], okRep.Metadata["engine"])
			}
		})
	}
	q := c.ok(t, "queue_request", map[string]any{"targets": nil, "verbose": true})
	for id, v := range q.Content {
		if l, ok := v.(map[string]any); ok && len(strs(l["completed"])) > cfg.TaskMemory {
			t.Errorf("engine %s lists %d completed tasks, more than task memory %d", id, len(strs(l["completed"])), cfg.TaskMemory)
		}
	}
}

// outageDB fails the dependency lookups of a hub with ErrUnavailable
// while down is set, like a remote backend during an outage.
type outageDB struct {
	taskdb.DB
	down    atomic.Bool
	refused atomic.Int32
}

func (d *outageDB) FindRecords(ctx context.Context, q *query.Filter, keys []string) ([]taskdb.Doc, error) {
	if d.down.Load() && slices.Equal(keys, dependencyKeys) {
		d.refused.Add(1)
		return nil, fmt.Errorf("outage: %w", taskdb.ErrUnavailable)
	}
	return d.DB.FindRecords(ctx, q, keys)
}

// TestDependencyLookupOutage: while the task database is unavailable, a
// dependency on a forgotten task is looked up again until the database
// answers (not failed as unknown), or until the task's timeout passes.
func TestDependencyLookupOutage(t *testing.T) {
	cfg := testConfig(t)
	cfg.TaskMemory = 1
	db := &outageDB{DB: dictdb.New(dictdb.Options{})}
	h := startHub(t, cfg, db)
	c := newClient(t, h)
	startEngine(t, h, c, true)
	old, _ := c.run(t, "ok", nil)
	c.run(t, "ok", nil)
	waitCompleted(t, c, old.Header.MsgID)
	oldID := old.Header.MsgID

	db.down.Store(true)
	req := c.apply("ok", map[string]any{"after": []any{oldID}})
	deadline := time.Now().Add(5 * time.Second)
	for db.refused.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the lookup was not retried")
		}
		time.Sleep(10 * time.Millisecond)
	}
	db.down.Store(false)
	if r := c.task.recvReply(req); r.Content["status"] != "ok" {
		t.Fatalf("after the outage: reply %v, want the task run", r.Content)
	}

	db.down.Store(true)
	_, r := c.run(t, "ok", map[string]any{"after": []any{oldID}, "timeout": 0.3})
	wantError(t, r, "apply_reply", "TaskTimeout")
}

// TestDependencyOnForgottenTaskNoDB: without a database a forgotten task
// cannot be looked up: its dependents fail at once with a clear
// InvalidDependency, as for any unknown msg_id.
func TestDependencyOnForgottenTaskNoDB(t *testing.T) {
	cfg := testConfig(t)
	cfg.TaskMemory = 1
	h := startHub(t, cfg, nodb.New())
	c := newClient(t, h)
	startEngine(t, h, c, true)
	old, _ := c.run(t, "ok", nil)
	c.run(t, "ok", nil)
	_, r := c.run(t, "ok", map[string]any{"after": []any{old.Header.MsgID}})
	wantError(t, r, "apply_reply", "InvalidDependency")
	if ev, _ := r.Content["evalue"].(string); !strings.Contains(ev, old.Header.MsgID) || !strings.Contains(ev, "last 1 finished tasks") {
		t.Fatalf("evalue %q does not explain the unknown dependency", ev)
	}
}

// TestSchedulerReadyOrder: ready jobs run oldest first, whether they may
// run anywhere or only on some engines.
func TestSchedulerReadyOrder(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(lru, 1, l, newFinished(0))
	s.addEngine("A")
	s.addEngine("B")
	s.submit(newJobFor("busyB"))
	s.submit(newJobFor("busyA"))
	for i, targets := range []idSet{{"A": {}}, nil, {"B": {}}, nil} {
		j := newJobFor(fmt.Sprint("t", i))
		j.targets = targets
		s.submit(j)
	}
	l.expect(t, "", "assign busyB B; assign busyA A")
	s.result("B", "busyB", endOK, true, nil)
	l.expect(t, "B frees up: t0 wants A", "assign t1 B")
	s.result("A", "busyA", endOK, true, nil)
	l.expect(t, "", "assign t0 A")
	s.result("A", "t0", endOK, true, nil)
	l.expect(t, "A frees up: t2 wants B", "assign t3 A")
	s.result("B", "t1", endOK, true, nil)
	l.expect(t, "", "assign t2 B")
}

// TestSchedulerReadyQueueStale: jobs that may run on two engines but run
// on one leave no entries behind in the other's queue.
func TestSchedulerReadyQueueStale(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(lru, 1, l, newFinished(0))
	s.addEngine("A")
	s.addEngine("B")
	s.submit(newJobFor("hold")) // keeps B busy throughout
	s.submit(newJobFor("busy")) // A
	b := s.engines[slices.IndexFunc(s.engines, func(e *schedEngine) bool { return e.uuid == "B" })]
	const n = 100
	for i := range n {
		j := newJobFor(fmt.Sprint("t", i))
		j.targets = idSet{"A": {}, "B": {}}
		s.submit(j)
	}
	if len(b.ready.h) != n {
		t.Fatalf("B's queue holds %d, want %d", len(b.ready.h), n)
	}
	s.result("A", "busy", endOK, true, nil)
	for i := range n {
		if got := len(b.ready.h); got > 2*(n-i) {
			t.Fatalf("B's queue holds %d entries for %d ready jobs", got, n-i)
		}
		s.result("A", fmt.Sprint("t", i), endOK, true, nil)
	}
	if len(b.ready.h) != 0 || b.ready.stale != 0 {
		t.Fatalf("B's queue holds %d entries (%d stale) with no ready job", len(b.ready.h), b.ready.stale)
	}
}

// onState runs fn on a running hub's state goroutine and waits for it.
func onState(h *Hub, fn func()) {
	done := make(chan struct{})
	h.post(func() { fn(); close(done) })
	<-done
}
