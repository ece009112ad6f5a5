package hub

import (
	"fmt"
	"time"

	"github.com/taskhub/taskhub/wire"
)

// registerEngine answers registration_request {uuid, [id]} (§5). The
// registration completes on the engine's first heartbeat.
func (s *state) registerEngine(m *wire.Message) {
	uuid, ok := m.Content["uuid"].(string)
	if !ok || uuid == "" {
		s.h.replyErr(sockQuery, m, "registration_reply", &wire.Error{Name: "KeyError", Value: "registration_request needs a string 'uuid'"})
		return
	}
	if s.dying.has(uuid) {
		s.h.replyErr(sockQuery, m, "registration_reply", &wire.Error{Name: "KeyError",
			Value: fmt.Sprintf("uuid %s in use: its previous registration is still being cleaned up", pyRepr(uuid))})
		return
	}
	var requested *int
	if id, ok := asInt(m.Content["id"]); ok {
		requested = &id
	}
	e, err := s.reg.register(uuid, requested, time.Now().Add(s.cfg.RegistrationTimeout))
	if err != nil {
		s.h.log.Warn("registration refused", "engine_uuid", uuid, "err", err)
		s.h.replyErr(sockQuery, m, "registration_reply", err)
		return
	}
	ci := s.h.EngineInfo()
	s.h.reply(sockQuery, m.Identities, m.Header, "registration_reply", map[string]any{
		"status":    "ok",
		"id":        e.id,
		"hb_period": s.cfg.HeartbeatPeriod.Milliseconds(),
		"connection_info": map[string]any{
			"interface": ci.Interface, "registration": ci.Registration,
			"control": ci.Control, "mux": ci.Mux, "task": ci.Task, "iopub": ci.IOPub,
			"hb_ping": ci.HBPing, "hb_pong": ci.HBPong, "broadcast": ci.Broadcast,
		},
	}, nil)
	s.h.log.Info("engine registering", "engine_id", e.id, "engine_uuid", uuid)
	// The engine's heart connects after the reply: repeat the current ping
	// soon rather than make it wait a whole period.
	for _, d := range []time.Duration{50 * time.Millisecond, 250 * time.Millisecond, time.Second} {
		if d < s.cfg.HeartbeatPeriod {
			s.h.after(d, func() {
				if _, waiting := s.reg.pending[uuid]; waiting && s.heart.cur != "" {
					s.h.send(sockHBPing, [][]byte{[]byte(s.heart.cur)})
				}
			})
		}
	}
}

// pong handles a heartbeat echo [uuid, payload]. The first one from a
// registering engine completes its registration.
func (s *state) pong(frames [][]byte) {
	if len(frames) != 2 {
		s.h.stats.badMessages.Add(1)
		return
	}
	uuid := string(frames[0])
	if !s.heart.pong(uuid, string(frames[1])) {
		return
	}
	e := s.reg.activate(uuid)
	if e == nil {
		return
	}
	s.sched.addEngine(uuid)
	s.notify("registration_notification", map[string]any{"id": e.id, "uuid": uuid})
	s.h.log.Info("engine registered", "engine_id", e.id, "engine_uuid", uuid)
}

// beat runs one heartbeat period: engines silent for too long are
// unregistered, stalled registrations dropped, and the next ping sent.
func (s *state) beat(now time.Time) {
	live := make([]string, 0, len(s.reg.live))
	for uuid := range s.reg.byUUID {
		live = append(live, uuid)
	}
	payload, stopped := s.heart.beat(now, live)
	for _, uuid := range stopped {
		if e := s.reg.byUUID[uuid]; e != nil {
			s.unregister(e, "heart stopped")
		}
	}
	for _, e := range s.reg.expire(now) {
		s.h.log.Warn("registration stalled: no heartbeat", "engine_id", e.id, "engine_uuid", e.uuid)
	}
	s.h.send(sockHBPing, [][]byte{[]byte(payload)})
}

// unregistration handles unregistration_request {id, [uuid]}: no reply.
// The id alone does not say which engine: it may have been granted again
// since the request was sent (an engine may ask for its old id). So the
// request is honoured when it comes from the engine's registration socket
// (whose identity is the engine's uuid) or names its uuid. The engine's
// nanny sends {id} from a socket of its own when the engine process exits:
// that request only makes the hub probe the engine's heart, which
// unregisters it if the next ping goes unanswered.
func (s *state) unregistration(m *wire.Message) {
	id, ok := asInt(m.Content["id"])
	if !ok {
		s.h.log.Warn("bad unregistration_request", "content", m.Content)
		return
	}
	e := s.reg.live[id]
	if e == nil {
		s.h.log.Info("unregistration of unknown engine", "engine_id", id)
		return
	}
	fromEngine := len(m.Identities) > 0 && string(m.Identities[0]) == e.uuid
	uuid, named := m.Content["uuid"]
	switch {
	case fromEngine || (named && uuid == e.uuid):
		s.unregister(e, "unregistration_request")
	case named:
		s.h.log.Warn("ignored unregistration_request: uuid does not match the engine's", "engine_id", id, "engine_uuid", e.uuid, "uuid", uuid)
	default:
		s.h.log.Info("unregistration_request from another socket: probing the engine's heart", "engine_id", id, "engine_uuid", e.uuid)
		s.heart.suspect(e.uuid)
	}
}

// unregister removes a live engine everywhere, tells clients, and arms
// the grace timer after which its unfinished work gets EngineError
// results.
func (s *state) unregister(e *engine, why string) {
	if s.reg.remove(e.id) == nil {
		return
	}
	s.heart.forget(e.uuid)
	s.sched.removeEngine(e.uuid)
	s.notify("unregistration_notification", map[string]any{"id": e.id, "uuid": e.uuid})
	s.h.log.Info("engine unregistered", "engine_id", e.id, "engine_uuid", e.uuid, "reason", why,
		"queue", len(e.queue), "tasks", len(e.tasks))
	s.dying.add(e.uuid)
	s.h.after(s.cfg.DeadEngineGrace, func() { s.strand(e) })
}

// strand fails the work still held by a dead engine. Direct requests are
// recorded as failed (the client fakes their EngineError itself when it
// sees the unregistration, §5); load-balanced tasks get an EngineError
// apply_reply through the scheduler, which may retry them elsewhere.
func (s *state) strand(e *engine) {
	defer delete(s.dying, e.uuid)
	t := now()
	for _, msgID := range ordered(e.queue) {
		delete(e.queue, msgID)
		if _, ok := s.pending[msgID]; !ok {
			continue
		}
		delete(s.pending, msgID)
		s.done.add(msgID, e.uuid, endFailed, false)
		s.updateRecord(msgID, map[string]any{
			"result_content": engineError(e, msgID).Content(),
			"result_header":  map[string]any{"engine": e.uuid, "date": t},
			"result_buffers": [][]byte{},
			"completed":      t,
			"engine_uuid":    e.uuid,
		})
	}
	for _, j := range s.sched.stranded(e.uuid) {
		r := s.h.sess.NewMessage("apply_reply", engineError(e, j.msgID).Content(), &j.header)
		r.Metadata = map[string]any{"status": "error", "engine": e.uuid, "date": t}
		s.finishResult(j.msgID, e.uuid, r, func() {
			if j.client != nil {
				r.Identities = [][]byte{j.client, []byte(e.uuid)}
				s.h.sendMsg(sockClientTask, r)
			}
		})
	}
}

func engineError(e *engine, msgID string) *wire.Error {
	return &wire.Error{Name: "EngineError", Value: fmt.Sprintf("Engine %s died while running task %s", pyRepr(e.uuid), pyRepr(msgID))}
}

// notify publishes on the notification socket (no topic frame).
func (s *state) notify(msgType string, content map[string]any) {
	s.h.sendMsg(sockNotification, s.h.sess.NewMessage(msgType, content, nil))
}

// asInt reads a JSON/msgpack number that holds an integer.
func asInt(v any) (int, bool) {
	switch v := v.(type) {
	case int64:
		return int(v), true
	case float64:
		if v == float64(int(v)) {
			return int(v), true
		}
	}
	return 0, false
}
