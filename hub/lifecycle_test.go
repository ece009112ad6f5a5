package hub

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/wire"
)

// TestDeadEngine: an engine whose heart stops is removed everywhere and
// its tasks get EngineError results, delivered and recorded.
func TestDeadEngine(t *testing.T) {
	cfg := testConfig(t)
	cfg.DeadEngineGrace = time.Second
	h := startHub(t, cfg, nil)
	c := newClient(t, h)
	e := startEngine(t, h, c, true)
	req := c.apply("hold", nil)
	direct := c.sess.NewMessage("apply_request", map[string]any{"op": "hold"}, nil)
	direct.Identities = [][]byte{[]byte(e.uuid)}
	c.mux.sendMsg(direct)
	waitPending(t, c, direct.Header.MsgID)

	e.kill() // the heart stops
	c.waitNotification(t, "unregistration_notification", e.uuid)
	// its uuid stays taken until its work is failed
	wantError(t, e.reg.request("registration_request", map[string]any{"uuid": e.uuid}), "registration_reply", "KeyError")
	r := c.task.recvReply(req)
	wantError(t, r, "apply_reply", "EngineError")
	if r.Metadata["engine"] != e.uuid {
		t.Fatalf("metadata %v", r.Metadata)
	}
	waitCompleted(t, c, req.Header.MsgID)
	waitCompleted(t, c, direct.Header.MsgID)
	for _, id := range []string{req.Header.MsgID, direct.Header.MsgID} {
		rec := c.ok(t, "db_request", map[string]any{"query": map[string]any{"msg_id": id},
			"keys": []any{"result_content", "engine_uuid", "completed"}}).Content["records"].([]any)[0].(map[string]any)
		if rec["engine_uuid"] != e.uuid || rec["completed"] == nil || rec["result_content"].(map[string]any)["ename"] != "EngineError" {
			t.Errorf("record %v", rec)
		}
	}
	q := c.ok(t, "queue_request", map[string]any{"targets": nil})
	if _, ok := q.Content[strconv.Itoa(e.id)]; ok {
		t.Fatalf("dead engine still in queue status: %v", q.Content)
	}
	conn := c.ok(t, "connection_request", nil)
	if len(conn.Content["engines"].(map[string]any)) != 0 {
		t.Fatalf("dead engine still connected: %v", conn.Content)
	}
	if r := e.reg.request("registration_request", map[string]any{"uuid": e.uuid}); r.Content["status"] != "ok" {
		t.Fatalf("re-registration after cleanup: %v", r.Content)
	}
}

// TestUnregistrationRetries: an engine that unregisters hands its task's
// retry to another engine.
func TestUnregistrationRetries(t *testing.T) {
	h := startHub(t, testConfig(t), nil)
	c := newClient(t, h)
	e0 := startEngine(t, h, c, true)
	req := c.apply("hold", map[string]any{"retries": int64(1), "targets": []any{e0.uuid}})
	waitPending(t, c, req.Header.MsgID)
	deadline := time.Now().Add(waitFor)
	for len(e0.got()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("task never reached the engine")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e0.reg.send("unregistration_request", map[string]any{"id": int64(e0.id)}, nil)
	c.waitNotification(t, "unregistration_notification", e0.uuid)
	// the only target is gone: the retry is impossible
	wantError(t, c.task.recvReply(req), "apply_reply", "ImpossibleDependency")

	e1 := startEngine(t, h, c, true)
	e2 := startEngine(t, h, c, true)
	req = c.apply("hold", map[string]any{"retries": int64(1), "targets": []any{e1.uuid, e2.uuid}})
	waitPending(t, c, req.Header.MsgID)
	for len(e1.got())+len(e2.got()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	first, other := e1, e2
	if len(e2.got()) > 0 {
		first, other = e2, e1
	}
	first.reg.send("unregistration_request", map[string]any{"id": int64(first.id)}, nil)
	for len(other.got()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("retry never reached the other engine")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSchedulingErrorsOverTheWire(t *testing.T) {
	h := startHub(t, testConfig(t), nil)
	c := newClient(t, h)
	for _, tc := range []struct {
		name  string
		md    map[string]any
		ename string
	}{
		{"timeout", map[string]any{"timeout": 0.05}, "TaskTimeout"},
		{"unknown after", map[string]any{"after": []any{"never"}}, "InvalidDependency"},
		{"bad targets", map[string]any{"targets": "not-a-list"}, "InvalidDependency"},
		{"bad timeout", map[string]any{"timeout": "soon"}, "InvalidDependency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := c.apply("ok", tc.md)
			r := c.task.recvReply(req)
			wantError(t, r, "apply_reply", tc.ename)
			if len(r.Metadata) != 0 {
				t.Fatalf("scheduler failure metadata %v, want {}", r.Metadata)
			}
			waitCompleted(t, c, req.Header.MsgID)
			rec := c.ok(t, "db_request", map[string]any{"query": map[string]any{"msg_id": req.Header.MsgID},
				"keys": []any{"engine_uuid", "result_content"}}).Content["records"].([]any)[0].(map[string]any)
			if rec["engine_uuid"] != "" || rec["result_content"].(map[string]any)["ename"] != tc.ename {
				t.Fatalf("record %v", rec)
			}
		})
	}
	e0 := startEngine(t, h, c, true)
	e1 := startEngine(t, h, c, true)
	t.Run("retries", func(t *testing.T) {
		req := c.apply("fail", map[string]any{"retries": int64(1)})
		wantError(t, c.task.recvReply(req), "apply_reply", "ValueError")
		if n := len(e0.got()) + len(e1.got()); n != 2 {
			t.Fatalf("ran %d times, want 2 (one retry)", n)
		}
	})
	t.Run("after", func(t *testing.T) {
		first := c.apply("slow", nil)
		second := c.apply("ok", map[string]any{"after": []any{first.Header.MsgID}})
		r1 := c.task.recvReply(first)
		r2 := c.task.recvReply(second)
		d1, d2 := r1.Header.Date, r2.Metadata["started"].(time.Time)
		if d2.Before(d1) {
			t.Fatalf("dependent started %v before its dependency finished %v", d2, d1)
		}
	})
}

func TestRegistrationErrors(t *testing.T) {
	cfg := testConfig(t)
	cfg.RegistrationTimeout = 100 * time.Millisecond
	h := startHub(t, cfg, nil)
	c := newClient(t, h)
	wantError(t, c.query.request("registration_request", map[string]any{}), "registration_reply", "KeyError")
	// no heartbeat: the registration expires and frees its id
	e := startEngine(t, h, nil, false)
	wantError(t, e.reg.request("registration_request", map[string]any{"uuid": e.uuid}), "registration_reply", "KeyError")
	time.Sleep(4 * cfg.HeartbeatPeriod)
	r := e.reg.request("registration_request", map[string]any{"uuid": e.uuid, "id": int64(e.id)})
	if r.Content["status"] != "ok" || r.Content["id"] != int64(e.id) {
		t.Fatalf("re-registration after expiry: %v", r.Content)
	}
	if r.Content["hb_period"] != cfg.HeartbeatPeriod.Milliseconds() {
		t.Fatalf("hb_period %v", r.Content["hb_period"])
	}
	ci := r.Content["connection_info"].(map[string]any)
	if ci["mux"] != int64(h.EngineInfo().Mux) {
		t.Fatalf("connection_info %v", ci)
	}
}

// TestBadMessages: garbage, unsigned, forged and replayed messages are
// dropped without a reply and without harm.
func TestBadMessages(t *testing.T) {
	h := startHub(t, testConfig(t), nil)
	c := newClient(t, h)
	good := c.sess.NewMessage("connection_request", map[string]any{}, nil)
	frames, err := c.sess.Encode(good)
	if err != nil {
		t.Fatal(err)
	}
	forged := slices.Clone(frames)
	forged[1] = []byte("00" + string(frames[1][2:]))
	unsigned := slices.Clone(frames)
	unsigned[1] = nil
	for _, f := range [][][]byte{
		{[]byte("garbage")},
		{[]byte("<IDS|MSG>")},
		{[]byte("<IDS|MSG>"), []byte("sig"), []byte("{"), []byte("{}"), []byte("{}"), []byte("{}")},
		forged,
		unsigned,
	} {
		for _, p := range []*peer{c.query, c.task, c.mux, c.control, c.bcast} {
			p.sendFrames(f)
		}
	}
	c.query.sendFrames(frames)
	if r := c.query.recv(); r.Parent.MsgID != good.Header.MsgID {
		t.Fatalf("reply to %s", r.Parent.MsgID)
	}
	c.query.sendFrames(frames) // replayed
	c.query.quiet(200 * time.Millisecond)
	if got := h.Stats().BadMessages; got < 20 {
		t.Fatalf("BadMessages = %d, want >= 20", got)
	}
	c.ok(t, "connection_request", nil) // still serving
}

func TestShutdownRequest(t *testing.T) {
	cfg := testConfig(t)
	h, err := New(cfg, dictdb.New(dictdb.Options{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Listen(); err != nil {
		t.Fatal(err)
	}
	cf, ef := h.ConnectionFiles()
	for _, p := range []string{cf, ef} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", p, st, err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(context.Background()) }()
	c := newClient(t, h)
	e := startEngine(t, h, c, true)
	req := c.apply("slow", nil) // in flight during shutdown: its result lands
	waitPending(t, c, req.Header.MsgID)
	for len(e.got()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	c.ok(t, "shutdown_request", nil)
	if n := c.waitNotificationType(t, "shutdown_notification"); n.Content["status"] != "ok" {
		t.Fatalf("notification %v", n.Content)
	}
	if r := c.task.recvReply(req); r.Content["status"] != "ok" {
		t.Fatalf("in-flight result %v", r.Content)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(cfg.ShutdownTimeout + time.Second):
		t.Fatal("Run did not return")
	}
	for _, p := range []string{cf, ef} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s not removed: %v", p, err)
		}
	}
	if err := h.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func (c *client) waitNotificationType(tb testing.TB, msgType string) *wire.Message {
	tb.Helper()
	for {
		m := c.notif.recv()
		if m.Header.MsgType == msgType {
			return m
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{IP: "nowhere"},
		{Scheme: "weighted"},
		{Unsigned: true, Key: "k"},
		{HeartbeatPeriod: -1},
		{Ports: Ports{Registration: 70000}},
		{Packer: "pickle"},
	} {
		if _, err := New(cfg, dictdb.New(dictdb.Options{}), nil); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Error("nil DB accepted")
	}
}

// TestQueryFlood: one client floods queries while another runs tasks;
// every task completes and every query is answered.
func TestQueryFlood(t *testing.T) {
	cfg := testConfig(t)
	cfg.HWM = -1
	h := startHub(t, cfg, nil)
	c := newClient(t, h)
	startEngine(t, h, c, true)
	startEngine(t, h, c, true)
	flood := newClient(t, h)
	const tasks, queries = 300, 300
	var wg sync.WaitGroup
	wg.Go(func() {
		var sent []string
		for i := range queries {
			typ := []string{"db_request", "queue_request", "history_request", "result_request"}[i%4]
			m := flood.sess.NewMessage(typ, map[string]any{
				"query": map[string]any{"completed": map[string]any{"$ne": nil}}, "targets": nil,
				"msg_ids": []any{}, "keys": []any{"msg_id", "completed"},
			}, nil)
			flood.query.sendMsg(m)
			sent = append(sent, m.Header.MsgID)
		}
		for range sent {
			r := flood.query.recv()
			if !slices.Contains(sent, r.Parent.MsgID) || r.Content["status"] != "ok" {
				t.Errorf("flood reply %s %v", r.Header.MsgType, r.Content)
				return
			}
		}
	})
	reqs := map[string]bool{}
	for range tasks {
		reqs[c.apply("ok", nil).Header.MsgID] = true
	}
	for range tasks {
		r := c.task.recv()
		if !reqs[r.Parent.MsgID] || r.Content["status"] != "ok" {
			t.Fatalf("task reply %v", r.Content)
		}
		delete(reqs, r.Parent.MsgID)
	}
	wg.Wait()
	if s := h.Stats(); s.Results != tasks || s.DBErrors != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestListenClose(t *testing.T) {
	h, err := New(testConfig(t), dictdb.New(dictdb.Options{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Listen(); err != nil {
		t.Fatal(err)
	}
	cf, _ := h.ConnectionFiles()
	if ci := h.ClientInfo(); ci.Registration == 0 || ci.Key == "" || ci.Pack != "msgpack.packb" {
		t.Fatalf("client info %+v", ci)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cf); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s not removed: %v", cf, err)
	}
	if err := h.Run(context.Background()); err == nil {
		t.Fatal("Run after Close succeeded")
	}
}

func TestUnsigned(t *testing.T) {
	cfg := testConfig(t)
	cfg.Unsigned = true
	cfg.Packer = "json"
	h := startHub(t, cfg, nil)
	if k := h.ClientInfo().Key; k != "" {
		t.Fatalf("key %q", k)
	}
	c := newClient(t, h)
	startEngine(t, h, c, true)
	if _, r := c.run(t, "ok", nil); r.Content["status"] != "ok" {
		t.Fatalf("reply %v", r.Content)
	}
}

// TestUnregistrationSender: an unregistration_request is honoured only
// from the engine's own registration socket or naming its uuid, as its id
// may have been granted again since it was sent. A bare {id} from another
// socket (an engine's nanny) unregisters the engine only if its heart
// fails the probe that follows.
func TestUnregistrationSender(t *testing.T) {
	cfg := testConfig(t)
	cfg.HeartbeatMaxMisses = 1000 // only a probe can stop a heart within the test
	h := startHub(t, cfg, nil)
	c := newClient(t, h)
	e0 := startEngine(t, h, c, true)
	e1 := startEngine(t, h, c, true)
	registered := func(e *fakeEngine) bool {
		_, ok := c.ok(t, "queue_request", map[string]any{"targets": nil}).Content[strconv.Itoa(e.id)]
		return ok
	}
	// a late request for e1's id from another engine, and one naming another uuid
	e0.reg.send("unregistration_request", map[string]any{"id": int64(e1.id)}, nil)
	e0.reg.send("unregistration_request", map[string]any{"id": int64(e1.id), "uuid": e0.uuid}, nil)
	time.Sleep(5 * cfg.HeartbeatPeriod) // past the probe
	if !registered(e1) || !registered(e0) {
		t.Fatal("a live engine was unregistered by a request that was not its own")
	}
	// e0's process dies; its nanny reports it from a socket of its own
	e0.kill()
	nanny := dialPeer(t, newSession(t, h), zmq4.Dealer, "", h.EngineInfo().Registration)
	nanny.send("unregistration_request", map[string]any{"id": int64(e0.id)}, nil)
	c.waitNotification(t, "unregistration_notification", e0.uuid)
	if !registered(e1) {
		t.Fatal("e1 unregistered")
	}
}
