package hub

import (
	"context"
	"time"

	"github.com/taskhub/taskhub/wire"
)

// task is a request the hub has routed (or is about to) and whose result
// has not arrived.
type task struct {
	queue  string // "mux" or "task"
	engine string // engine uuid; "" while a task is unassigned
}

// state is everything the hub knows about engines and tasks. One
// goroutine owns it: the one running loop (inside Hub.Run). Socket
// owners, timers and the DB goroutine reach it through Hub.inbox and
// Hub.events.
type state struct {
	h     *Hub
	cfg   Config
	reg   *registry
	heart *heart
	pick  scheme
	sched *scheduler // built by loop

	pending    map[string]*task  // routed, no result yet
	done       *finished         // the most recent finished tasks
	unassigned map[string]uint64 // load-balanced tasks not yet on an engine
	dying      idSet             // uuids of dead engines whose work is not yet failed

	draining bool // shutting down: client requests are refused
}

func newState(h *Hub, pick scheme, cfg Config) state {
	s := state{
		h:          h,
		cfg:        cfg,
		pick:       pick,
		reg:        newRegistry(),
		heart:      newHeart(time.Now(), cfg.HeartbeatMaxMisses),
		pending:    map[string]*task{},
		done:       newFinished(cfg.TaskMemory),
		unassigned: map[string]uint64{},
		dying:      idSet{},
	}
	return s
}

// loop serves until ctx is done or shutdown is requested, then drains
// (results of assigned tasks may land) for at most half the shutdown
// timeout. It returns the shutdown deadline.
func (s *state) loop(ctx context.Context) time.Time {
	h := s.h
	s.sched = newScheduler(s.pick, s.cfg.HWM, s, s.done)
	tick := time.NewTicker(s.cfg.HeartbeatPeriod)
	defer tick.Stop()
	s.beat(time.Now())

	ctxDone, quit := ctx.Done(), h.quit
	var deadline, drainEnd time.Time
	var drainTick <-chan time.Time
	startDrain := func() {
		now := time.Now()
		s.draining = true
		ctxDone, quit = nil, nil
		deadline = now.Add(s.cfg.ShutdownTimeout)
		drainEnd = now.Add(s.cfg.ShutdownTimeout / 2)
		t := time.NewTicker(10 * time.Millisecond)
		drainTick = t.C
		h.log.Info("shutting down", "in_flight", s.inFlight())
	}
	for {
		select {
		case in := <-h.inbox:
			s.dispatch(in)
		case fn := <-h.events:
			fn()
		case now := <-tick.C:
			s.beat(now)
		case <-ctxDone:
			startDrain()
		case <-quit:
			startDrain()
		case now := <-drainTick:
			if s.inFlight() == 0 || now.After(drainEnd) {
				return deadline
			}
		}
	}
}

// inFlight counts routed requests whose engine may still answer.
func (s *state) inFlight() int {
	n := 0
	for _, t := range s.pending {
		if t.engine != "" {
			n++
		}
	}
	return n
}

// dispatch handles one received message, decoded by its pump.
func (s *state) dispatch(in inbound) {
	switch {
	case in.sock == sockHBPong:
		s.pong(in.frames)
		return
	case in.sock == sockEngineBroadcast:
		return // engines never send here unsolicited
	case in.msg == nil: // an IOPub status: nothing to record
		s.h.send(sockClientIOPub, in.frames)
		return
	}
	m := in.msg
	if s.draining && in.sock.clientSide() {
		s.h.log.Debug("refused request: shutting down", "socket", in.sock.String(), "msg_id", m.Header.MsgID)
		return
	}
	switch in.sock {
	case sockQuery:
		s.query(m)
	case sockClientTask:
		s.submitTask(m)
	case sockEngineTask:
		s.taskResult(m)
	case sockClientMux, sockClientControl:
		s.direct(in.sock, m)
	case sockEngineMux, sockEngineControl:
		s.directReply(in.sock, m)
	case sockEngineIOPub:
		s.iopub(m)
	case sockClientBroadcast:
		s.broadcast(m)
	}
}

// decode verifies and unpacks a received message for dispatch, on the
// socket's pump, so that decoding (a large part of the work per message)
// runs beside the state goroutine instead of on it. It leaves msg nil for
// heartbeats, broadcast-socket noise and IOPub status messages, which the
// state goroutine handles as frames, and reports false for a message that
// fails to decode (malformed, unsigned, forged, replayed): it is dropped
// and counted.
func (h *Hub) decode(in *inbound) bool {
	switch {
	case in.sock == sockHBPong, in.sock == sockEngineBroadcast:
		return true
	case in.sock == sockEngineIOPub && h.isStatus(in.frames):
		return true
	}
	m, err := h.sess.Decode(in.frames)
	if err != nil {
		h.stats.badMessages.Add(1)
		h.log.Warn("dropped message", "socket", in.sock.String(), "err", err)
		return false
	}
	in.msg = m
	return true
}

// isStatus reports whether frames hold an IOPub status message (busy,
// idle), the bulk of engine output, which is relayed without being
// verified or decoded: clients verify what they receive.
func (h *Hub) isStatus(frames [][]byte) bool {
	for i, f := range frames {
		if string(f) == wire.Delimiter {
			if i+2 >= len(frames) {
				return false
			}
			hdr, err := h.sess.UnpackHeader(frames[i+2])
			return err == nil && hdr.MsgType == "status"
		}
	}
	return false
}

// clientSide reports whether clients send requests on the socket.
func (id sockID) clientSide() bool {
	switch id {
	case sockQuery, sockClientMux, sockClientControl, sockClientTask, sockClientBroadcast:
		return true
	}
	return false
}

// send queues frames on a socket's owner. Any goroutine may call it while
// the hub runs.
func (h *Hub) send(id sockID, frames [][]byte) {
	select {
	case h.socks[id].out <- frames:
	case <-h.stop:
	}
}

// sendMsg encodes m and queues it on a socket. An encoding failure is
// logged; it means the hub built an unencodable message.
func (h *Hub) sendMsg(id sockID, m *wire.Message) {
	frames, err := h.sess.Encode(m)
	if err != nil {
		h.stats.sendErrors.Add(1)
		h.log.Error("encode failed", "socket", id.String(), "msg_type", m.Header.MsgType, "err", err)
		return
	}
	h.send(id, frames)
}

// reply sends a new message of msgType answering parent to idents.
func (h *Hub) reply(id sockID, idents [][]byte, parent wire.Header, msgType string, content map[string]any, bufs [][]byte) {
	m := h.sess.NewMessage(msgType, content, &parent)
	m.Identities = idents
	m.Buffers = bufs
	h.sendMsg(id, m)
}

// relay sends a received message's frames on with new identities in front,
// verbatim: never re-packed or re-signed.
func (h *Hub) relay(id sockID, m *wire.Message, idents ...[]byte) {
	rest := m.Raw[len(m.Identities):]
	frames := make([][]byte, 0, len(idents)+len(rest))
	frames = append(append(frames, idents...), rest...)
	h.send(id, frames)
}
