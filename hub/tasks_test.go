package hub

import (
	"math"
	"testing"
	"time"

	"github.com/taskhub/taskhub/wire"
)

// encoded returns m with Raw set, as a pump hands it to the state goroutine.
func encoded(tb testing.TB, sess *wire.Session, m *wire.Message, idents ...string) *wire.Message {
	tb.Helper()
	for _, id := range idents {
		m.Identities = append(m.Identities, []byte(id))
	}
	frames, err := sess.Encode(m)
	if err != nil {
		tb.Fatal(err)
	}
	m.Raw = frames
	return m
}

// TestRetryBookkeeping: a failed task with retries left is either on its
// new engine or unassigned again, as queue_request and the shutdown drain
// see it; never on neither.
func TestRetryBookkeeping(t *testing.T) {
	for _, engines := range [][]string{{"e1", "e2"}, {"e1"}} {
		t.Run(engines[len(engines)-1], func(t *testing.T) {
			x := newSocketless(t)
			s, sess := x.s, x.h.sess
			s.beat(time.Now())
			for _, u := range engines {
				s.registerEngine(encoded(t, sess, sess.NewMessage("registration_request", map[string]any{"uuid": u}, nil), "reg"))
				s.pong([][]byte{[]byte(u), []byte(s.heart.cur)})
			}
			req := encoded(t, sess, sess.NewMessage("apply_request", map[string]any{}, nil), "client")
			req.Metadata = map[string]any{"retries": int64(1)}
			id := req.Header.MsgID
			s.submitTask(req)
			first := s.pending[id].engine
			if first == "" {
				t.Fatal("task not assigned")
			}
			r := sess.NewMessage("apply_reply", map[string]any{"status": "error"}, &req.Header)
			r.Metadata = map[string]any{"status": "error"}
			s.taskResult(encoded(t, sess, r, first, "client"))

			tk := s.pending[id]
			if tk == nil {
				t.Fatal("task finished; want it retried")
			}
			if len(engines) == 1 { // the only engine failed it: it waits
				if tk.engine != "" || !isUnassigned(s, id) {
					t.Errorf("engine %q, unassigned %v; want unassigned", tk.engine, isUnassigned(s, id))
				}
				return
			}
			second := s.reg.byUUID[tk.engine]
			if tk.engine == first || second == nil {
				t.Fatalf("task on %q after a failure on %q; want the other engine", tk.engine, first)
			}
			if _, ok := second.tasks[id]; !ok || isUnassigned(s, id) || s.inFlight() != 1 {
				t.Errorf("on %s: %v, unassigned %v, in flight %d; want 1 task on it", tk.engine, ok, isUnassigned(s, id), s.inFlight())
			}
		})
	}
}

func isUnassigned(s *state, id string) bool { _, ok := s.unassigned[id]; return ok }

// TestNewJobTimeout: a timeout is seconds in [0, 1e9], int or float;
// anything else is invalid rather than a wrapped or undefined duration.
func TestNewJobTimeout(t *testing.T) {
	for _, c := range []struct {
		in   any
		want time.Duration
		ok   bool
	}{
		{nil, 0, true},
		{int64(2), 2 * time.Second, true},
		{0.25, 250 * time.Millisecond, true},
		{int64(-1), 0, false},
		{-0.5, 0, false},
		{int64(18446744074), 0, false}, // wrapped to 0.7 s as int64 nanoseconds
		{math.NaN(), 0, false},
		{math.Inf(1), 0, false},
		{"soon", 0, false},
	} {
		m := &wire.Message{Identities: [][]byte{[]byte("client")}, Metadata: map[string]any{"timeout": c.in}}
		j, err := newJob(m)
		if (err == nil) != c.ok || (c.ok && j.timeout != c.want) {
			t.Errorf("timeout %v: got %v, %v; want %v, ok %v", c.in, j.timeout, err, c.want, c.ok)
		}
	}
}
