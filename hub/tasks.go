package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/wire"
)

// submitTask takes a load-balanced request [client, DELIM, ...] from the
// client task socket: record it, then hand it to the scheduler.
func (s *state) submitTask(m *wire.Message) {
	if len(m.Identities) == 0 || m.Header.MsgID == "" {
		s.h.stats.badMessages.Add(1)
		s.h.log.Warn("dropped task without identity or msg_id", "msg_id", m.Header.MsgID)
		return
	}
	if s.duplicate(sockClientTask, m) {
		return
	}
	j, err := newJob(m)
	s.accept(m, "task", "")
	if string(j.client) == resubmitIdentity {
		j.client = nil // recorded, not delivered
	}
	if err != nil {
		s.h.log.Warn("invalid task metadata", "msg_id", m.Header.MsgID, "err", err)
		s.sched.reject(j)
		return
	}
	s.sched.submit(j)
}

// duplicate answers m with an error and reports true when its msg_id is
// already pending: routing it would overwrite the first request's record
// and bookkeeping (its timeout, its dependents) and deliver two results
// under one id.
func (s *state) duplicate(sock sockID, m *wire.Message) bool {
	msgID := m.Header.MsgID
	if _, ok := s.pending[msgID]; !ok {
		return false
	}
	s.h.stats.duplicates.Add(1)
	s.h.log.Warn("refused request: msg_id already pending", "socket", sock.String(), "msg_id", msgID)
	err := &wire.Error{Name: "KeyError", Value: fmt.Sprintf("duplicate msg_id %s: a request with this id is still pending", pyRepr(msgID))}
	s.h.reply(sock, m.Identities, m.Header, replyType(m.Header.MsgType), toWire(err).Content(), nil)
	return true
}

// accept records a new request and marks it pending.
func (s *state) accept(m *wire.Message, queue, engine string) {
	msgID := m.Header.MsgID
	s.h.stats.tasks.Add(1)
	s.pending[msgID] = &task{queue: queue, engine: engine}
	if queue == "task" {
		s.reg.track(s.unassigned, msgID)
	}
	s.addRecord(requestRecord(m, queue, engine))
}

// newJob reads the scheduling metadata of a request (§7). On error the
// returned job still carries the msg_id.
func newJob(m *wire.Message) (*job, error) {
	md := m.Metadata
	j := &job{msgID: m.Header.MsgID, client: m.Identities[0], frames: m.Raw, header: m.Header}
	switch ts := md["targets"].(type) {
	case nil:
	case []any:
		if len(ts) > 0 {
			j.targets = idSet{}
			for _, t := range ts {
				u, ok := t.(string)
				if !ok {
					return j, fmt.Errorf("target %v is %T, not an engine uuid", t, t)
				}
				j.targets.add(u)
			}
		}
	default:
		return j, fmt.Errorf("targets is %T, not a list", ts)
	}
	if r, ok := asInt(md["retries"]); ok {
		j.retries = r
	} else if md["retries"] != nil {
		return j, fmt.Errorf("retries is %T, not an int", md["retries"])
	}
	var err error
	if j.after, err = parseDependency(md["after"]); err != nil {
		return j, fmt.Errorf("after: %w", err)
	}
	if j.follow, err = parseDependency(md["follow"]); err != nil {
		return j, fmt.Errorf("follow: %w", err)
	}
	var timeout float64 // seconds
	switch t := md["timeout"].(type) {
	case nil:
	case int64:
		timeout = float64(t)
	case float64:
		timeout = t
	default:
		return j, fmt.Errorf("timeout is %T, not a number", t)
	}
	if !(timeout >= 0 && timeout <= 1e9) { // also rejects NaN
		return j, fmt.Errorf("timeout %v out of range", md["timeout"])
	}
	j.timeout = time.Duration(timeout * float64(time.Second))
	return j, nil
}

// assign implements schedOutput: relay the request to the engine as
// [engine, client, DELIM, ...].
func (s *state) assign(j *job, engine string) {
	frames := make([][]byte, 0, 1+len(j.frames))
	frames = append(append(frames, []byte(engine)), j.frames...)
	s.h.send(sockEngineTask, frames)
	delete(s.unassigned, j.msgID)
	if t := s.pending[j.msgID]; t != nil {
		t.engine = engine
	}
	if e := s.reg.byUUID[engine]; e != nil {
		s.reg.track(e.tasks, j.msgID)
	}
	s.updateRecord(j.msgID, map[string]any{"engine_uuid": engine})
}

// fail implements schedOutput: answer the client with the scheduler's
// error (empty metadata, §7) and record it.
func (s *state) fail(j *job, why taskFailure) {
	var value string
	switch why {
	case failInvalidDependency:
		value = "invalid dependency, targets or scheduling metadata"
		if len(j.unknown) > 0 {
			value = s.unknownDeps(j.unknown)
		}
	case failImpossibleDependency:
		value = "the task's dependencies or targets can no longer be met"
	case failTimeout:
		value = fmt.Sprintf("task waited longer than its %v timeout", j.timeout)
	}
	r := s.h.sess.NewMessage("apply_reply", (&wire.Error{Name: string(why), Value: value}).Content(), &j.header)
	if j.client != nil {
		r.Identities = [][]byte{j.client}
		s.h.sendMsg(sockClientTask, r)
	}
	s.finish(j.msgID, "", r)
}

// unknownDeps explains an InvalidDependency for msg_ids found neither in
// memory nor in the task database.
func (s *state) unknownDeps(ids []string) string {
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = pyRepr(id)
	}
	remembered := "every finished task"
	if s.cfg.TaskMemory > 0 {
		remembered = fmt.Sprintf("the last %d finished tasks", s.cfg.TaskMemory)
	}
	return fmt.Sprintf("unknown msg_id(s) [%s]: not load-balanced tasks of this hub; it remembers %s "+
		"and looks older ones up in the task database, which does not have them", strings.Join(quoted, ", "), remembered)
}

// resolve implements schedOutput: the task database, on its goroutine
// and after the writes queued before, tells how the tasks among ids
// ended; the scheduler gets the answer on the state goroutine. A
// database that stores nothing (nodb) or fails finds nothing, except
// one that is unavailable (an outage of a remote backend): the records
// may well be there, so the lookup is retried until it answers or the
// task's timeout passes.
func (s *state) resolve(j *job, ids []string) { s.lookupDeps(j.msgID, ids, 0, time.Time{}) }

// Waits between dependency lookups during a database outage.
const (
	depRetryMin = 100 * time.Millisecond
	depRetryMax = 5 * time.Second
)

// lookupDeps is resolve's lookup, after tries failed ones, the first
// at since.
func (s *state) lookupDeps(msgID string, ids []string, tries int, since time.Time) {
	h, f := s.h, inFilter(ids)
	s.do(func(ctx context.Context, db taskdb.DB) {
		recs, err := db.FindRecords(ctx, f, dependencyKeys)
		if errors.Is(err, taskdb.ErrUnavailable) {
			if tries == 0 {
				since = time.Now()
				h.log.Warn("dependency lookup failed; retrying until the task database answers", "msg_id", msgID, "err", err)
			}
			h.after(min(depRetryMin<<min(tries, 6), depRetryMax), func() { s.retryDeps(msgID, tries+1, since) })
			return
		}
		if err != nil && !errors.Is(err, taskdb.ErrNoData) {
			h.log.Warn("dependency lookup failed", "msg_id", msgID, "err", err)
		}
		found := make(map[string]taskState, len(recs))
		for _, rec := range recs {
			if id, st, ok := finishedTask(rec); ok {
				found[id] = st
			}
		}
		// Not h.post from here: the state goroutine may be waiting for
		// room in this goroutine's queue.
		go h.post(func() { s.sched.resolved(msgID, found) })
	})
}

// retryDeps looks up the unknown dependencies of job msgID again, if it
// still waits for them and its timeout has not passed since the lookups
// began to fail.
func (s *state) retryDeps(msgID string, tries int, since time.Time) {
	j := s.sched.jobs[msgID]
	switch {
	case j == nil || len(j.unknown) == 0 || j.waiting():
	case j.timeout > 0 && time.Since(since) >= j.timeout:
		s.sched.failJob(j, failTimeout)
	default:
		s.lookupDeps(msgID, j.unknown, tries, since)
	}
}

// dependencyKeys are the record keys finishedTask reads.
var dependencyKeys = []string{taskdb.KeyQueue, taskdb.KeyCompleted, taskdb.KeyEngineUUID, taskdb.KeyResultMetadata, taskdb.KeyResultContent}

// finishedTask reads how a finished load-balanced task ended from its
// record; ok is false for any other record.
func finishedTask(rec taskdb.Doc) (msgID string, st taskState, ok bool) {
	msgID, _ = rec.Get(taskdb.KeyMsgID).(string)
	if rec.Get(taskdb.KeyQueue) != "task" || rec.Get(taskdb.KeyCompleted) == nil {
		return msgID, st, false
	}
	engine, _ := rec.Get(taskdb.KeyEngineUUID).(string)
	engine = strings.Clone(engine) // kept by waiting jobs: not a share of the database's memory
	end := endOf(resultStatus(rec.Get(taskdb.KeyResultMetadata), rec.Get(taskdb.KeyResultContent)))
	return msgID, taskState{done: true, ok: end == endOK, engine: engine}, true
}

// resultStatus is a result's status: its metadata's, else its
// content's (the scheduler's own failures have empty metadata). Each is
// a message's map or a record's Doc.
func resultStatus(md, content any) string {
	if st := statusOf(md); st != "" {
		return st
	}
	return statusOf(content)
}

func statusOf(v any) string {
	var st any
	switch v := v.(type) {
	case map[string]any:
		st = v["status"]
	case taskdb.Doc:
		st = v.Get("status")
	}
	s, _ := st.(string)
	return s
}

// armTimeout implements schedOutput.
func (s *state) armTimeout(j *job) func() bool {
	msgID, gen := j.msgID, j.timerGen
	return s.h.after(j.timeout, func() { s.sched.timeout(msgID, gen) }).Stop
}

// taskResult takes an engine's reply [engine, client, DELIM, ...] on the
// engine task socket.
func (s *state) taskResult(m *wire.Message) {
	if len(m.Identities) < 2 {
		s.h.stats.badMessages.Add(1)
		return
	}
	engine, client := m.Identities[0], m.Identities[1]
	s.finishResult(m.Parent.MsgID, string(engine), m, func() {
		if string(client) != resubmitIdentity {
			s.h.relay(sockClientTask, m, client, engine)
		}
	})
}

// finishResult passes an engine's result for a load-balanced task through
// the scheduler. If it is final, deliver sends it to the client and the
// task is completed; otherwise the scheduler has rescheduled the task.
func (s *state) finishResult(msgID, engine string, r *wire.Message, deliver func()) {
	depsMet := r.Metadata["dependencies_met"] != false
	final := func() {
		deliver()
		s.finish(msgID, engine, r)
	}
	switch s.sched.result(engine, msgID, endOf(resultStatus(r.Metadata, r.Content)), depsMet, final) {
	case resultFinal:
	case resultRetried:
		if e := s.reg.byUUID[engine]; e != nil {
			delete(e.tasks, msgID)
		}
		// The scheduler may already have assigned the task to another
		// engine (assign ran inside result); only a task still marked on
		// the failing engine is waiting again.
		if t := s.pending[msgID]; t != nil && t.engine == engine {
			t.engine = ""
			s.reg.track(s.unassigned, msgID)
		}
	case resultUnknown:
		s.lateResult(msgID, engine, r)
	}
}

// lateResult records a real result that arrives after the hub gave up on
// the task (its engine was declared dead): the record gets the truth, the
// client already has its EngineError.
func (s *state) lateResult(msgID, engine string, r *wire.Message) {
	if !s.done.has(msgID) {
		s.h.log.Warn("result for unknown task", "msg_id", msgID, "engine_uuid", engine)
		return
	}
	s.h.log.Info("late result recorded", "msg_id", msgID, "engine_uuid", engine)
	s.updateRecord(msgID, resultRecord(r, engine))
}

// finish completes a pending task with result r. The scheduler has
// remembered a load-balanced task's end; a direct one's is remembered here.
func (s *state) finish(msgID, engine string, r *wire.Message) {
	t := s.pending[msgID]
	delete(s.pending, msgID)
	delete(s.unassigned, msgID)
	if e := s.reg.byUUID[engine]; e != nil {
		delete(e.tasks, msgID)
		delete(e.queue, msgID)
		engine = e.uuid // one copy of the uuid for every task
	}
	if t != nil && t.queue == "mux" {
		s.done.add(msgID, engine, endOf(resultStatus(r.Metadata, r.Content)), false)
	}
	s.h.stats.results.Add(1)
	s.updateRecord(msgID, resultRecord(r, engine))
}

// direct relays a client's mux or control request [client, engine, DELIM,
// ...] to the engine as [engine, client, DELIM, ...]. Mux requests are
// recorded; a request for an engine that is not registered gets an
// EngineError reply instead of vanishing.
func (s *state) direct(sock sockID, m *wire.Message) {
	if len(m.Identities) < 2 {
		s.h.stats.badMessages.Add(1)
		return
	}
	client, engine := m.Identities[0], m.Identities[1]
	e := s.reg.byUUID[string(engine)]
	if e == nil {
		s.h.replyErr(sock, m, replyType(m.Header.MsgType), &wire.Error{Name: "EngineError", Value: fmt.Sprintf("no registered engine %s", pyRepr(string(engine)))})
		return
	}
	target := sockEngineMux
	if sock == sockClientControl {
		target = sockEngineControl
	} else {
		if s.duplicate(sock, m) {
			return
		}
		s.accept(m, "mux", e.uuid)
		s.reg.track(e.queue, m.Header.MsgID)
	}
	s.h.relay(target, m, engine, client)
}

// directReply relays an engine's mux or control reply [engine, client,
// DELIM, ...] to the client as [client, engine, DELIM, ...].
func (s *state) directReply(sock sockID, m *wire.Message) {
	if len(m.Identities) < 2 {
		s.h.stats.badMessages.Add(1)
		return
	}
	engine, client := m.Identities[0], m.Identities[1]
	if sock == sockEngineControl {
		s.h.relay(sockClientControl, m, client, engine)
		return
	}
	s.h.relay(sockClientMux, m, client, engine)
	msgID := m.Parent.MsgID
	if t := s.pending[msgID]; t != nil && t.queue == "mux" {
		s.finish(msgID, string(engine), m)
		return
	}
	s.lateResult(msgID, string(engine), m)
}

// broadcast answers a broadcast-view request with an error: this hub
// binds the broadcast sockets but does not schedule broadcasts. The
// replies take the shape an ipyparallel BroadcastView waits for: one per
// target engine, answering "<msg_id>_<engine uuid>", or a single one with
// original_msg_id and broadcast_targets when it is coalescing (§7).
func (s *state) broadcast(m *wire.Message) {
	if len(m.Identities) == 0 {
		s.h.stats.badMessages.Add(1)
		return
	}
	content := (&wire.Error{
		Name:  "NotImplementedError",
		Value: "this hub does not schedule broadcast views; use a DirectView (rc[:]) or a LoadBalancedView",
	}).Content()
	reply := func(parent wire.Header, md map[string]any) {
		r := s.h.sess.NewMessage(replyType(m.Header.MsgType), content, &parent)
		r.Metadata = md
		r.Identities = m.Identities
		s.h.sendMsg(sockClientBroadcast, r)
	}
	targets, _ := m.Metadata["targets"].([]any)
	coalescing, _ := m.Metadata["is_coalescing"].(bool)
	var uuids []string
	for _, t := range targets {
		if pair, ok := t.([]any); ok && len(pair) == 2 {
			if u, ok := pair[0].(string); ok {
				uuids = append(uuids, u)
			}
		}
	}
	switch {
	case len(uuids) == 0 || len(uuids) != len(targets):
		reply(m.Header, map[string]any{"status": "error", "is_broadcast": false, "is_coalescing": false})
	case coalescing:
		reply(m.Header, map[string]any{"status": "error", "is_broadcast": true, "is_coalescing": true,
			"original_msg_id": m.Header.MsgID, "broadcast_targets": targets})
	default:
		for _, u := range uuids {
			parent := m.Header
			parent.MsgID = m.Header.MsgID + "_" + u
			reply(parent, map[string]any{"status": "error", "engine": u, "is_broadcast": true, "is_coalescing": false})
		}
	}
}

// replyType names the reply to a request type: x_request -> x_reply.
func replyType(msgType string) string {
	return strings.TrimSuffix(msgType, "_request") + "_reply"
}
