package hub

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/wire"
)

// socketless is a hub whose state is driven directly, without sockets:
// what it would send is discarded. For fuzzing the handlers.
type socketless struct {
	h  *Hub
	s  *state
	wg sync.WaitGroup
}

func newSocketless(tb testing.TB) *socketless {
	tb.Helper()
	return newSocketlessWith(tb, Config{Key: "k", Packer: "json"}, dictdb.New(dictdb.Options{}))
}

// newSocketlessWith is newSocketless with a given configuration and
// database.
func newSocketlessWith(tb testing.TB, cfg Config, db taskdb.DB) *socketless {
	tb.Helper()
	h, err := New(cfg, db, nil)
	if err != nil {
		tb.Fatal(err)
	}
	x := &socketless{h: h, s: &h.st}
	for id := range numSockets {
		s := &hubSocket{id: id, out: make(chan [][]byte, outQueue)}
		h.socks[id] = s
		x.wg.Go(func() {
			for {
				select {
				case <-s.out:
				case <-h.stop:
					return
				}
			}
		})
	}
	dbDone := make(chan struct{})
	go h.serveDB(dbDone)
	x.s.sched = newScheduler(x.s.pick, x.s.cfg.HWM, x.s, x.s.done)
	tb.Cleanup(func() {
		close(h.loopDone)
		close(h.dbq)
		<-dbDone
		close(h.stop)
		x.wg.Wait()
		h.db.Close()
	})
	return x
}

// flush waits until the DB goroutine ran everything queued so far.
func (x *socketless) flush() {
	done := make(chan struct{})
	x.s.do(func(context.Context, taskdb.DB) { close(done) })
	<-done
}

// FuzzHandlers feeds arbitrary documents, as content and metadata, to
// every query handler and to the task, direct and IOPub paths. Nothing
// may panic, whatever a client sends. Seeds: testdata/fuzz/FuzzHandlers.
func FuzzHandlers(f *testing.F) {
	sess, err := wire.NewSession(wire.Config{Key: []byte("k"), Packer: "json"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		content, err := sess.Unpack(doc)
		if err != nil {
			return
		}
		x := newSocketless(t)
		msg := func(msgType string, idents ...string) *wire.Message {
			m := sess.NewMessage(msgType, content, &wire.Header{MsgID: "a", MsgType: "apply_request"})
			m.Metadata = content
			for _, id := range idents {
				m.Identities = append(m.Identities, []byte(id))
			}
			frames, err := sess.Encode(m)
			if err != nil {
				t.Skip("unencodable")
			}
			m.Raw = frames
			return m
		}
		x.s.beat(time.Now()) // a ping for the engine's pong to echo
		x.s.registerEngine(msg("registration_request", "e"))
		x.s.pong([][]byte{[]byte("e"), []byte(x.s.heart.cur)})
		for _, typ := range []string{
			"connection_request", "queue_request", "load_request", "result_request",
			"history_request", "db_request", "purge_request", "resubmit_request",
			"unregistration_request", "registration_request", "nonsense",
		} {
			x.s.query(msg(typ, "client"))
		}
		x.s.submitTask(msg("apply_request", "client"))
		x.s.direct(sockClientMux, msg("apply_request", "client", "e"))
		x.s.iopub(msg("stream", "engine.e.stream"))
		x.s.iopub(msg("execute_result", "engine.e.execute_result"))
		x.s.taskResult(msg("apply_reply", "e", "client"))
		x.s.directReply(sockEngineMux, msg("apply_reply", "e", "client"))
		x.flush()
	})
}
