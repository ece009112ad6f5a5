package hub

import (
	"bytes"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/taskdb/nodb"
	"github.com/taskhub/taskhub/wire"
)

// wantError fails unless r is an error reply of type msgType with ename.
func wantError(t *testing.T, r *wire.Message, msgType, ename string) {
	t.Helper()
	if r.Header.MsgType != msgType || r.Content["status"] != "error" || r.Content["ename"] != ename {
		t.Fatalf("got %s %v, want %s error %s", r.Header.MsgType, r.Content, msgType, ename)
	}
	if _, ok := r.Content["evalue"].(string); !ok {
		t.Fatalf("no evalue: %v", r.Content)
	}
	if _, ok := r.Content["traceback"].([]any); !ok {
		t.Fatalf("no traceback list: %v", r.Content)
	}
	if ei, ok := r.Content["engine_info"].(map[string]any); !ok || len(ei) != 0 {
		t.Fatalf("engine_info %v, want {}", r.Content["engine_info"])
	}
}

// run submits a load-balanced task and waits for its reply.
func (c *client) run(t *testing.T, op string, md map[string]any, bufs ...[]byte) (*wire.Message, *wire.Message) {
	t.Helper()
	req := c.apply(op, md, bufs...)
	return req, c.task.recvReply(req)
}

func TestQueries(t *testing.T) {
	h := startHub(t, testConfig(t), nil)
	c := newClient(t, h)
	e0 := startEngine(t, h, c, true)
	e1 := startEngine(t, h, c, true)

	conn := c.ok(t, "connection_request", map[string]any{})
	if want := map[string]any{"0": e0.uuid, "1": e1.uuid}; !equalMaps(conn.Content["engines"].(map[string]any), want) {
		t.Fatalf("connection_reply engines %v", conn.Content["engines"])
	}
	if conn.Parent.MsgID == "" {
		t.Fatal("reply without parent")
	}

	// two finished tasks with distinct result buffers, one held
	r1, _ := c.run(t, "ok", nil, []byte("one"))
	r2, _ := c.run(t, "ok", nil, []byte("two-a"), []byte("two-b"))
	held := c.apply("hold", nil)
	waitPending(t, c, held.Header.MsgID)

	t.Run("queue_request", func(t *testing.T) {
		q := c.ok(t, "queue_request", map[string]any{"targets": nil, "verbose": false})
		total := 0
		for _, id := range []string{"0", "1"} {
			st := q.Content[id].(map[string]any)
			total += int(st["completed"].(int64)) + int(st["tasks"].(int64))
		}
		if total != 3 || q.Content["unassigned"] != int64(0) {
			t.Fatalf("queue_reply %v", q.Content)
		}
		q = c.ok(t, "queue_request", map[string]any{"targets": []any{e1.uuid}, "verbose": true})
		if _, ok := q.Content["0"]; ok {
			t.Fatalf("engine 0 not requested: %v", q.Content)
		}
		wantError(t, c.query.request("queue_request", map[string]any{"targets": []any{int64(99)}}), "hub_error", "IndexError")
		wantError(t, c.query.request("queue_request", map[string]any{}), "hub_error", "KeyError")
	})
	t.Run("load_request", func(t *testing.T) {
		l := c.ok(t, "load_request", map[string]any{"targets": nil})
		if l.Content["0"].(int64)+l.Content["1"].(int64) != 1 {
			t.Fatalf("load_reply %v", l.Content)
		}
		wantError(t, c.query.request("load_request", map[string]any{"targets": "nope"}), "hub_error", "IndexError")
	})
	t.Run("result_request", func(t *testing.T) {
		ids := []any{r2.Header.MsgID, held.Header.MsgID, r1.Header.MsgID, r1.Header.MsgID}
		r := c.ok(t, "result_request", map[string]any{"msg_ids": ids})
		done := []string{r1.Header.MsgID, r2.Header.MsgID}
		sort.Strings(done)
		if got := strs(r.Content["completed"]); !slices.Equal(got, done) {
			t.Fatalf("completed %v, want %v", got, done)
		}
		if got := strs(r.Content["pending"]); !slices.Equal(got, []string{held.Header.MsgID}) {
			t.Fatalf("pending %v", got)
		}
		var want [][]byte
		for _, id := range done { // buffers in sorted-id order
			if id == r1.Header.MsgID {
				want = append(want, []byte("one"))
			} else {
				want = append(want, []byte("two-a"), []byte("two-b"))
			}
		}
		if !slices.EqualFunc(r.Buffers, want, bytes.Equal) {
			t.Fatalf("buffers %q, want %q", r.Buffers, want)
		}
		entry := r.Content[r1.Header.MsgID].(map[string]any)
		for _, k := range []string{"header", "metadata", "result_metadata", "result_header", "result_content", "received", "io"} {
			if _, ok := entry[k]; !ok {
				t.Errorf("entry lacks %s", k)
			}
		}
		s := c.ok(t, "result_request", map[string]any{"msg_ids": ids, "status_only": true})
		if len(s.Buffers) != 0 || s.Content[r1.Header.MsgID] != nil {
			t.Fatalf("status_only carried results")
		}
		bad := c.query.request("result_request", map[string]any{"msg_ids": []any{r1.Header.MsgID, "zzz"}})
		wantError(t, bad, "result_reply", "KeyError")
		if len(bad.Buffers) != 0 {
			t.Fatalf("error reply carries %d buffers (§10.9)", len(bad.Buffers))
		}
		wantError(t, c.query.request("result_request", map[string]any{}), "hub_error", "KeyError")
	})
	t.Run("db_request", func(t *testing.T) {
		q := map[string]any{"msg_id": map[string]any{"$in": []any{r1.Header.MsgID, r2.Header.MsgID}}}
		r := c.ok(t, "db_request", map[string]any{"query": q, "keys": []any{"buffers", "result_buffers", "completed"}})
		recs := r.Content["records"].([]any)
		if len(recs) != 2 {
			t.Fatalf("records %v", recs)
		}
		bl, rl := r.Content["buffer_lens"].([]any), r.Content["result_buffer_lens"].([]any)
		var want [][]byte
		for i, rec := range recs {
			id := rec.(map[string]any)["msg_id"]
			n := int64(1)
			bufs := [][]byte{[]byte("one")}
			if id == r2.Header.MsgID {
				n, bufs = 2, [][]byte{[]byte("two-a"), []byte("two-b")}
			}
			if bl[i] != n || rl[i] != n {
				t.Fatalf("lens %v %v", bl, rl)
			}
			want = append(append(want, bufs...), bufs...) // buffers, then result_buffers (echoed)
		}
		if !slices.EqualFunc(r.Buffers, want, bytes.Equal) {
			t.Fatalf("buffers %q, want %q", r.Buffers, want)
		}
		r = c.ok(t, "db_request", map[string]any{"query": q, "keys": []any{"completed"}})
		if r.Content["buffer_lens"] != nil || r.Content["result_buffer_lens"] != nil || len(r.Buffers) != 0 {
			t.Fatalf("lens without buffer keys: %v", r.Content)
		}
		// operators and dates: every record completed after the epoch
		r = c.ok(t, "db_request", map[string]any{"query": map[string]any{
			"completed": map[string]any{"$gt": "2000-01-01T00:00:00Z"},
			"queue":     "task",
		}, "keys": []any{"msg_id"}})
		if n := len(r.Content["records"].([]any)); n != 2 {
			t.Fatalf("$gt date: %d records", n)
		}
		wantError(t, c.query.request("db_request", map[string]any{"query": map[string]any{"a": map[string]any{"$bogus": 1}}}), "db_reply", "InvalidQuery")
		wantError(t, c.query.request("db_request", map[string]any{"query": "x"}), "db_reply", "KeyError")
		wantError(t, c.query.request("db_request", map[string]any{"keys": []any{int64(1)}}), "db_reply", "KeyError")
	})
	t.Run("history_request", func(t *testing.T) {
		r := c.ok(t, "history_request", map[string]any{})
		if got := strs(r.Content["history"]); !slices.Equal(got, []string{r1.Header.MsgID, r2.Header.MsgID, held.Header.MsgID}) {
			t.Fatalf("history %v", got)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		r := c.query.request("frobnicate_request", map[string]any{})
		wantError(t, r, "hub_error", "KeyError")
		if r.Content["evalue"] != "Bad Message Type: 'frobnicate_request'" {
			t.Fatalf("evalue %q", r.Content["evalue"])
		}
		wantError(t, c.query.request("become_dask_request", map[string]any{}), "become_dask_reply", "NotImplementedError")
	})
	t.Run("broadcast", func(t *testing.T) {
		m := c.sess.NewMessage("apply_request", map[string]any{}, nil)
		m.Metadata = map[string]any{"is_broadcast": true, "targets": []any{}}
		c.bcast.sendMsg(m)
		wantError(t, c.bcast.recvReply(m), "apply_reply", "NotImplementedError")
		// per target, answering "<msg_id>_<uuid>", as a BroadcastView waits
		m = c.sess.NewMessage("apply_request", map[string]any{}, nil)
		m.Metadata = map[string]any{"is_broadcast": true, "is_coalescing": false,
			"targets": []any{[]any{e0.uuid, int64(0)}, []any{e1.uuid, int64(1)}}}
		c.bcast.sendMsg(m)
		got := map[string]bool{}
		for range 2 {
			r := c.bcast.recv()
			wantError(t, r, "apply_reply", "NotImplementedError")
			got[r.Parent.MsgID] = true
		}
		if !got[m.Header.MsgID+"_"+e0.uuid] || !got[m.Header.MsgID+"_"+e1.uuid] {
			t.Fatalf("replies answer %v", got)
		}
	})
}

func TestPurge(t *testing.T) {
	cfg := testConfig(t)
	cfg.HWM = -1 // the held task must not block the others
	h := startHub(t, cfg, nil)
	c := newClient(t, h)
	e := startEngine(t, h, c, true)
	var ids []string
	for range 3 {
		req, _ := c.run(t, "ok", nil)
		ids = append(ids, req.Header.MsgID)
	}
	held := c.apply("hold", nil)
	waitPending(t, c, held.Header.MsgID)

	wantError(t, c.query.request("purge_request", map[string]any{"msg_ids": []any{held.Header.MsgID}}), "purge_reply", "IndexError")
	wantError(t, c.query.request("purge_request", map[string]any{"engine_ids": []any{int64(7)}}), "purge_reply", "IndexError")
	wantError(t, c.query.request("purge_request", map[string]any{"msg_ids": "some"}), "purge_reply", "KeyError")

	c.ok(t, "purge_request", map[string]any{"msg_ids": []any{ids[0]}})
	r := c.query.request("result_request", map[string]any{"msg_ids": []any{ids[0]}, "status_only": true})
	wantError(t, r, "result_reply", "KeyError") // memory purged too (§10.16)
	if hist := strs(c.ok(t, "history_request", nil).Content["history"]); slices.Contains(hist, ids[0]) {
		t.Fatalf("purged id in history %v", hist)
	}

	// engine_ids really purges that engine's finished records (§10.2)
	c.ok(t, "purge_request", map[string]any{"engine_ids": []any{int64(e.id)}})
	hist := strs(c.ok(t, "history_request", nil).Content["history"])
	if !slices.Equal(hist, []string{held.Header.MsgID}) {
		t.Fatalf("after engine purge: history %v", hist)
	}
	q := c.ok(t, "queue_request", map[string]any{"targets": nil})
	if q.Content[strconv.Itoa(e.id)].(map[string]any)["completed"] != int64(0) {
		t.Fatalf("queue status after purge %v", q.Content)
	}

	req, _ := c.run(t, "ok", nil)
	c.ok(t, "purge_request", map[string]any{"msg_ids": "all"})
	hist = strs(c.ok(t, "history_request", nil).Content["history"])
	if !slices.Equal(hist, []string{held.Header.MsgID}) || slices.Contains(hist, req.Header.MsgID) {
		t.Fatalf("after purge all: history %v (the pending task must stay)", hist)
	}
}

func TestResubmit(t *testing.T) {
	h := startHub(t, testConfig(t), nil)
	c := newClient(t, h)
	startEngine(t, h, c, true)
	req, _ := c.run(t, "ok", map[string]any{"retries": int64(0)}, []byte("payload"))

	wantError(t, c.query.request("resubmit_request", map[string]any{"msg_ids": []any{req.Header.MsgID, "nope"}}), "resubmit_reply", "KeyError")
	r := c.ok(t, "resubmit_request", map[string]any{"msg_ids": []any{req.Header.MsgID}})
	newID, _ := r.Content["resubmitted"].(map[string]any)[req.Header.MsgID].(string)
	if newID == "" || newID == req.Header.MsgID {
		t.Fatalf("resubmit_reply %v", r.Content)
	}
	waitCompleted(t, c, newID)
	res := c.ok(t, "result_request", map[string]any{"msg_ids": []any{newID}})
	if len(res.Buffers) != 1 || string(res.Buffers[0]) != "payload" {
		t.Fatalf("resubmitted result buffers %q", res.Buffers)
	}
	recs := c.ok(t, "db_request", map[string]any{
		"query": map[string]any{"msg_id": map[string]any{"$in": []any{req.Header.MsgID, newID}}},
		"keys":  []any{"resubmitted", "client_uuid", "header", "queue"},
	}).Content["records"].([]any)
	for _, x := range recs {
		rec := x.(map[string]any)
		if rec["client_uuid"] != c.sess.ID() || rec["queue"] != "task" {
			t.Errorf("record %v", rec)
		}
		if rec["msg_id"] == req.Header.MsgID && rec["resubmitted"] != newID {
			t.Errorf("old record resubmitted = %v, want %s", rec["resubmitted"], newID)
		}
		if rec["msg_id"] == newID && rec["header"].(map[string]any)["msg_type"] != "apply_request" {
			t.Errorf("new header %v", rec["header"])
		}
	}
	c.task.quiet(100 * time.Millisecond) // the client gets no unsolicited reply
}

func TestIOPubCapture(t *testing.T) {
	h := startHub(t, testConfig(t), nil)
	c := newClient(t, h)
	startEngine(t, h, c, true)
	req, _ := c.run(t, "print", nil)
	// the client sees the output, relayed verbatim
	seen := map[string]bool{}
	for !seen["status"] || !seen["stream"] {
		m := c.iopub.recv()
		if m.Parent.MsgID == req.Header.MsgID {
			seen[m.Header.MsgType] = true
		}
	}
	deadline := time.Now().Add(waitFor)
	for {
		rec := c.ok(t, "db_request", map[string]any{"query": map[string]any{"msg_id": req.Header.MsgID},
			"keys": []any{"stdout", "execute_input", "execute_result"}}).Content["records"].([]any)[0].(map[string]any)
		shown, _ := rec["execute_result"].(map[string]any)
		if rec["stdout"] == "hello\n" && rec["execute_input"] == "print('hello')" && shown != nil {
			if data := shown["data"].(map[string]any); data["text/plain"] != "shown" {
				t.Fatalf("display data %v", shown)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("record %v", rec)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNoDB(t *testing.T) {
	h := startHub(t, testConfig(t), nodb.New())
	c := newClient(t, h)
	startEngine(t, h, c, true)
	req, rep := c.run(t, "ok", nil)
	if rep.Content["status"] != "ok" {
		t.Fatalf("task under NoDB: %v", rep.Content)
	}
	wantError(t, c.query.request("history_request", nil), "history_reply", "NoData")
	wantError(t, c.query.request("db_request", map[string]any{"query": map[string]any{}}), "db_reply", "NoData")
	wantError(t, c.query.request("result_request", map[string]any{"msg_ids": []any{req.Header.MsgID}}), "result_reply", "NoData")
	s := c.ok(t, "result_request", map[string]any{"msg_ids": []any{req.Header.MsgID}, "status_only": true})
	if got := strs(s.Content["completed"]); !slices.Equal(got, []string{req.Header.MsgID}) {
		t.Fatalf("status_only under NoDB: %v", s.Content)
	}
	if h.Stats().DBErrors != 0 {
		t.Fatalf("NoDB writes counted as errors: %+v", h.Stats())
	}
}

func waitPending(t *testing.T, c *client, id string) {
	t.Helper()
	waitStatus(t, c, id, "pending")
}

func waitCompleted(t *testing.T, c *client, id string) {
	t.Helper()
	waitStatus(t, c, id, "completed")
}

func waitStatus(t *testing.T, c *client, id, list string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		r := c.query.request("result_request", map[string]any{"msg_ids": []any{id}, "status_only": true})
		if slices.Contains(strs(r.Content[list]), id) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never %s: %v", id, list, r.Content)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func equalMaps(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestResultStatusFromDB: status_only classifies ids the hub's memory
// does not know (recorded before a restart) by their own records.
func TestResultStatusFromDB(t *testing.T) {
	db := dictdb.New(dictdb.Options{})
	ctx := t.Context()
	done := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for id, completed := range map[string]any{"old-done": done, "old-pending": nil} {
		if err := db.AddRecord(ctx, id, taskdb.Record{taskdb.KeyMsgID: id, taskdb.KeyCompleted: completed}); err != nil {
			t.Fatal(err)
		}
	}
	h := startHub(t, testConfig(t), db)
	c := newClient(t, h)
	s := c.ok(t, "result_request", map[string]any{"msg_ids": []any{"old-pending", "old-done"}, "status_only": true})
	if p, d := strs(s.Content["pending"]), strs(s.Content["completed"]); !slices.Equal(p, []string{"old-pending"}) || !slices.Equal(d, []string{"old-done"}) {
		t.Fatalf("pending %v, completed %v; want [old-pending], [old-done]", p, d)
	}
	wantError(t, c.query.request("result_request", map[string]any{"msg_ids": []any{"old-done", "nope"}, "status_only": true}), "result_reply", "KeyError")
}
