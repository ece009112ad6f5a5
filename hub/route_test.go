package hub

import (
	"bytes"
	"strconv"
	"testing"
)

func TestTaskRoundTrip(t *testing.T) {
	h := startHub(t, testConfig(t), nil)
	c := newClient(t, h)
	e := startEngine(t, h, c, true)

	req := c.apply("ok", nil, []byte("b0"), []byte("b1"))
	r := c.task.recvReply(req)
	if r.Header.MsgType != "apply_reply" || r.Content["status"] != "ok" {
		t.Fatalf("reply %s %v", r.Header.MsgType, r.Content)
	}
	if len(r.Buffers) != 2 || !bytes.Equal(r.Buffers[1], []byte("b1")) {
		t.Fatalf("buffers %q", r.Buffers)
	}
	if r.Header.Session != e.uuid {
		t.Fatalf("reply session %q, want the engine's %q (relayed verbatim)", r.Header.Session, e.uuid)
	}

	rec := c.ok(t, "db_request", map[string]any{"query": map[string]any{"msg_id": req.Header.MsgID}, "keys": nil})
	recs := rec.Content["records"].([]any)
	if len(recs) != 1 {
		t.Fatalf("records %v", recs)
	}
	got := recs[0].(map[string]any)
	for k, want := range map[string]any{
		"msg_id": req.Header.MsgID, "queue": "task", "engine_uuid": e.uuid, "client_uuid": c.sess.ID(),
	} {
		if got[k] != want {
			t.Errorf("record %s = %v, want %v", k, got[k], want)
		}
	}
	for _, k := range []string{"submitted", "started", "completed", "received"} {
		if _, ok := got[k].(string); !ok {
			t.Errorf("record %s = %#v, want a date", k, got[k])
		}
	}
	if _, ok := got["buffers"]; ok {
		t.Errorf("db_reply records must not carry buffers")
	}
}

func TestDirectRoundTrip(t *testing.T) {
	h := startHub(t, testConfig(t), nil)
	c := newClient(t, h)
	e := startEngine(t, h, c, true)
	m := c.sess.NewMessage("apply_request", map[string]any{"op": "ok"}, nil)
	m.Identities = [][]byte{[]byte(e.uuid)}
	c.mux.sendMsg(m)
	r := c.mux.recvReply(m)
	if r.Content["status"] != "ok" {
		t.Fatalf("reply %v", r.Content)
	}
	q := c.ok(t, "queue_request", map[string]any{"targets": nil, "verbose": true})
	st := q.Content[strconv.Itoa(e.id)].(map[string]any)
	if done := st["completed"].([]any); len(done) != 1 || done[0] != m.Header.MsgID {
		t.Fatalf("queue status %v", q.Content)
	}
	// control requests are relayed, not recorded
	ctl := c.sess.NewMessage("abort_request", map[string]any{}, nil)
	ctl.Identities = [][]byte{[]byte(e.uuid)}
	c.control.sendMsg(ctl)
	if r := c.control.recvReply(ctl); r.Header.MsgType != "abort_reply" {
		t.Fatalf("control reply %s", r.Header.MsgType)
	}
	// a direct request for an engine that does not exist gets an error
	bad := c.sess.NewMessage("apply_request", map[string]any{}, nil)
	bad.Identities = [][]byte{[]byte("no-such-engine")}
	c.mux.sendMsg(bad)
	if r := c.mux.recvReply(bad); r.Content["ename"] != "EngineError" || r.Header.MsgType != "apply_reply" {
		t.Fatalf("unknown engine: %s %v", r.Header.MsgType, r.Content)
	}
	h2 := c.ok(t, "history_request", map[string]any{})
	if hist := h2.Content["history"].([]any); len(hist) != 1 || hist[0] != m.Header.MsgID {
		t.Fatalf("history %v", hist)
	}
}

// TestSchemesOverTheWire: every scheme spreads tasks over the engines.
func TestSchemesOverTheWire(t *testing.T) {
	for _, scheme := range []string{SchemeLeastLoad, SchemeLRU, SchemePlainRandom, SchemeTwoBin} {
		t.Run(scheme, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Scheme = scheme
			h := startHub(t, cfg, nil)
			if got := h.ClientInfo().TaskScheme; got != scheme {
				t.Fatalf("task_scheme %q", got)
			}
			c := newClient(t, h)
			e0 := startEngine(t, h, c, true)
			e1 := startEngine(t, h, c, true)
			var reqs []string
			for range 8 {
				reqs = append(reqs, c.apply("slow", nil).Header.MsgID)
			}
			for range reqs {
				if r := c.task.recv(); r.Content["status"] != "ok" {
					t.Fatalf("reply %v", r.Content)
				}
			}
			// hwm=1: while one engine is busy the other gets the work
			if len(e0.got()) == 0 || len(e1.got()) == 0 {
				t.Fatalf("engines ran %d and %d tasks", len(e0.got()), len(e1.got()))
			}
		})
	}
}

// TestDuplicateMsgID: a request reusing the msg_id of a pending one, on
// the task or the mux socket, is answered with an error and not routed:
// the first request keeps its record and its engine sees it only once.
func TestDuplicateMsgID(t *testing.T) {
	h := startHub(t, testConfig(t), nil)
	c := newClient(t, h)
	e := startEngine(t, h, c, true)
	first := c.apply("hold", nil)
	id := first.Header.MsgID
	waitPending(t, c, id)

	again := c.sess.NewMessage("apply_request", map[string]any{"op": "ok"}, nil)
	again.Header.MsgID = id
	c.task.sendMsg(again)
	wantError(t, c.task.recv(), "apply_reply", "KeyError")

	direct := c.sess.NewMessage("apply_request", map[string]any{"op": "ok"}, nil)
	direct.Header.MsgID = id
	direct.Identities = [][]byte{[]byte(e.uuid)}
	c.mux.sendMsg(direct)
	r := c.mux.recv()
	wantError(t, r, "apply_reply", "KeyError")
	if r.Parent.MsgID != id {
		t.Fatalf("error reply parent %q, want %q", r.Parent.MsgID, id)
	}

	rec := c.ok(t, "db_request", map[string]any{"query": map[string]any{"msg_id": id}, "keys": []any{"content", "queue"}})
	got := rec.Content["records"].([]any)[0].(map[string]any)
	if got["queue"] != "task" || got["content"].(map[string]any)["op"] != "hold" {
		t.Fatalf("record %v, want the first request's", got)
	}
	if seen := e.got(); len(seen) > 1 {
		t.Fatalf("engine received %v, want the first request only", seen)
	}
	if s := h.Stats(); s.Duplicates != 2 || s.Tasks != 1 {
		t.Fatalf("stats %+v, want 2 duplicates of 1 task", s)
	}
}
