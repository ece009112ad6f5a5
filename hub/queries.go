package hub

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
	"github.com/taskhub/taskhub/wire"
)

// query dispatches a message from the registration/query socket (§4).
// Handlers that need only the hub's memory answer at once; those that
// read the task database queue an operation that answers when it runs,
// after every write queued before it.
func (s *state) query(m *wire.Message) {
	switch t := m.Header.MsgType; t {
	case "registration_request":
		s.registerEngine(m)
	case "unregistration_request":
		s.unregistration(m)
	case "connection_request":
		s.connectionRequest(m)
	case "queue_request":
		s.queueRequest(m)
	case "load_request":
		s.loadRequest(m)
	case "result_request":
		s.resultRequest(m)
	case "history_request":
		s.historyRequest(m)
	case "db_request":
		s.dbRequest(m)
	case "purge_request":
		s.purgeRequest(m)
	case "resubmit_request":
		s.resubmitRequest(m)
	case "shutdown_request":
		s.shutdownRequest(m)
	case "become_dask_request", "stop_distributed_request":
		s.h.replyErr(sockQuery, m, replyType(t), &wire.Error{Name: "NotImplementedError", Value: "this hub does not run dask.distributed"})
	default:
		s.h.replyErr(sockQuery, m, "hub_error", &wire.Error{Name: "KeyError", Value: "Bad Message Type: " + pyRepr(t)})
	}
}

// ok answers m on the query socket with status ok plus content.
func (h *Hub) ok(m *wire.Message, msgType string, content map[string]any, bufs [][]byte) {
	if content == nil {
		content = map[string]any{}
	}
	content["status"] = "ok"
	h.reply(sockQuery, m.Identities, m.Header, msgType, content, bufs)
}

// badContent is the error for a request whose content lacks a key or
// holds the wrong type.
func badContent(key, want string) *wire.Error {
	return &wire.Error{Name: "KeyError", Value: fmt.Sprintf("%s: want %s", pyRepr(key), want)}
}

func (s *state) connectionRequest(m *wire.Message) {
	engines := map[string]any{}
	for id, e := range s.reg.live {
		engines[strconv.Itoa(id)] = e.uuid
	}
	s.h.ok(m, "connection_reply", map[string]any{"engines": engines}, nil)
}

// queueRequest answers queue_request {targets, verbose}: per engine the
// direct requests pending (queue), load-balanced tasks assigned (tasks)
// and finished (completed), as counts or, verbose, msg_id lists.
func (s *state) queueRequest(m *wire.Message) {
	targets, ok := m.Content["targets"]
	if !ok {
		s.h.replyErr(sockQuery, m, "hub_error", badContent("targets", "null, an engine id or a list of them"))
		return
	}
	es, err := s.reg.targets(targets)
	if err != nil {
		s.h.replyErr(sockQuery, m, "hub_error", err)
		return
	}
	verbose, _ := m.Content["verbose"].(bool)
	var completed map[string][]string
	if verbose {
		uuids := make([]string, len(es))
		for i, e := range es {
			uuids[i] = e.uuid
		}
		completed = s.done.listOn(uuids)
	}
	content := map[string]any{}
	for _, e := range es {
		if verbose {
			content[strconv.Itoa(e.id)] = map[string]any{
				"queue": ordered(e.queue), "tasks": ordered(e.tasks), "completed": completed[e.uuid],
			}
		} else {
			content[strconv.Itoa(e.id)] = map[string]any{
				"queue": len(e.queue), "tasks": len(e.tasks), "completed": s.done.completedOn(e.uuid),
			}
		}
	}
	if verbose {
		content["unassigned"] = ordered(s.unassigned)
	} else {
		content["unassigned"] = len(s.unassigned)
	}
	s.h.ok(m, "queue_reply", content, nil)
}

// loadRequest answers load_request {targets}: each engine's outstanding
// requests, keyed by engine id.
func (s *state) loadRequest(m *wire.Message) {
	es, err := s.reg.targets(m.Content["targets"])
	if err != nil {
		s.h.replyErr(sockQuery, m, "hub_error", err)
		return
	}
	content := map[string]any{}
	for _, e := range es {
		content[strconv.Itoa(e.id)] = len(e.queue) + len(e.tasks)
	}
	s.h.ok(m, "load_reply", content, nil)
}

// msgIDs reads a list of msg_id strings.
func msgIDs(v any) ([]string, bool) {
	l, ok := v.([]any)
	if !ok {
		return nil, false
	}
	ids := make([]string, 0, len(l))
	for _, x := range l {
		id, ok := x.(string)
		if !ok {
			return nil, false
		}
		ids = append(ids, id)
	}
	return ids, true
}

func inFilter(ids []string) *query.Filter {
	in := make([]any, len(ids))
	for i, id := range ids {
		in[i] = id
	}
	f, err := query.Parse(map[string]any{taskdb.KeyMsgID: map[string]any{"$in": in}})
	if err != nil {
		panic(err) // a constant shape over strings always parses
	}
	return f
}

// resultRequest answers result_request {msg_ids, status_only} (§4.1):
// sorted pending and completed lists and, unless status_only, each
// completed task's result with its result_buffers in sorted-id order. An
// unknown id fails the whole request, without buffers.
func (s *state) resultRequest(m *wire.Message) {
	ids, ok := msgIDs(m.Content["msg_ids"])
	if !ok {
		s.h.replyErr(sockQuery, m, "hub_error", badContent("msg_ids", "a list of msg_ids"))
		return
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	statusOnly, _ := m.Content["status_only"].(bool)
	// What memory knows now; the database part runs after queued writes.
	type known int
	const (
		unknown known = iota
		isPending
		isCompleted
	)
	mem := make([]known, len(ids))
	for i, id := range ids {
		switch {
		case s.pending[id] != nil:
			mem[i] = isPending
		case s.done.has(id):
			mem[i] = isCompleted
		}
	}
	h := s.h
	// A status needs only msg_id and completed, and only for the ids
	// memory does not know (e.g. recorded before a restart).
	lookup, keys := ids, []string(nil)
	if statusOnly {
		lookup, keys = nil, []string{taskdb.KeyCompleted}
		for i, id := range ids {
			if mem[i] == unknown {
				lookup = append(lookup, id)
			}
		}
	}
	s.do(func(ctx context.Context, db taskdb.DB) {
		records := map[string]taskdb.Doc{}
		if len(lookup) > 0 {
			recs, err := db.FindRecords(ctx, inFilter(lookup), keys)
			if err != nil {
				h.replyErr(sockQuery, m, "result_reply", err)
				return
			}
			for _, r := range recs {
				records[r.Get(taskdb.KeyMsgID).(string)] = r
			}
		}
		pending, completed := []any{}, []any{}
		content := map[string]any{"pending": nil, "completed": nil}
		var bufs [][]byte
		for i, id := range ids {
			rec, inDB := records[id]
			switch {
			case mem[i] == isPending:
				pending = append(pending, id)
			case mem[i] == isCompleted && statusOnly:
				completed = append(completed, id)
			case !inDB:
				h.replyErr(sockQuery, m, "result_reply", &wire.Error{Name: "KeyError", Value: "No such message: " + id})
				return
			case rec.Get(taskdb.KeyCompleted) == nil:
				pending = append(pending, id)
			case statusOnly:
				completed = append(completed, id)
			default:
				completed = append(completed, id)
				content[id] = resultContent(rec)
				bufs = append(bufs, recordBuffers(rec.Get(taskdb.KeyResultBuffers))...)
			}
		}
		content["pending"], content["completed"] = pending, completed
		h.ok(m, "result_reply", content, bufs)
	})
}

// resultContent is a result_request entry (§4.1).
func resultContent(rec taskdb.Doc) map[string]any {
	io := map[string]any{}
	for _, k := range []string{taskdb.KeyExecuteInput, taskdb.KeyExecuteResult, taskdb.KeyError, taskdb.KeyStdout, taskdb.KeyStderr} {
		io[k] = rec.Get(k)
	}
	return map[string]any{
		"header":          rec.Get(taskdb.KeyHeader),
		"metadata":        rec.Get(taskdb.KeyMetadata),
		"result_metadata": rec.Get(taskdb.KeyResultMetadata),
		"result_header":   rec.Get(taskdb.KeyResultHeader),
		"result_content":  rec.Get(taskdb.KeyResultContent),
		"received":        rec.Get(taskdb.KeyReceived),
		"io":              io,
	}
}

// recordBuffers reads a stored buffer list ([]any of []byte once
// normalized by the database).
func recordBuffers(v any) [][]byte {
	switch v := v.(type) {
	case [][]byte:
		return v
	case []any:
		out := make([][]byte, 0, len(v))
		for _, b := range v {
			switch b := b.(type) {
			case []byte:
				out = append(out, b)
			case string:
				out = append(out, []byte(b))
			}
		}
		return out
	}
	return nil
}

func (s *state) historyRequest(m *wire.Message) {
	h := s.h
	s.do(func(ctx context.Context, db taskdb.DB) {
		ids, err := db.History(ctx)
		if err != nil {
			h.replyErr(sockQuery, m, "history_reply", err)
			return
		}
		if ids == nil {
			ids = []string{}
		}
		h.ok(m, "history_reply", map[string]any{"history": ids}, nil)
	})
}

// dbRequest answers db_request {query, keys} (§4.2). buffers and
// result_buffers leave the records; when keys lists them, their lengths go
// in buffer_lens / result_buffer_lens and the frames follow, per record:
// its buffers, then its result_buffers.
func (s *state) dbRequest(m *wire.Message) {
	q := map[string]any{}
	if v, ok := m.Content["query"]; ok && v != nil {
		if q, ok = wire.ExtractDates(v).(map[string]any); !ok {
			s.h.replyErr(sockQuery, m, "db_reply", badContent("query", "a query document"))
			return
		}
	}
	f, err := query.Parse(q)
	if err != nil {
		s.h.replyErr(sockQuery, m, "db_reply", err)
		return
	}
	var keys []string
	switch k := m.Content["keys"].(type) {
	case nil:
	case string:
		keys = []string{k}
	case []any:
		var ok bool
		if keys, ok = msgIDs(k); !ok {
			s.h.replyErr(sockQuery, m, "db_reply", badContent("keys", "null or a list of record keys"))
			return
		}
	default:
		s.h.replyErr(sockQuery, m, "db_reply", badContent("keys", "null or a list of record keys"))
		return
	}
	h := s.h
	s.do(func(ctx context.Context, db taskdb.DB) {
		recs, err := db.FindRecords(ctx, f, keys)
		if err != nil {
			h.replyErr(sockQuery, m, "db_reply", err)
			return
		}
		var bufLens, resultLens []any
		withBufs := len(keys) > 0 && slices.Contains(keys, taskdb.KeyBuffers)
		withResults := len(keys) > 0 && slices.Contains(keys, taskdb.KeyResultBuffers)
		if withBufs {
			bufLens = []any{}
		}
		if withResults {
			resultLens = []any{}
		}
		var bufs [][]byte
		records := make([]any, len(recs))
		for i, rec := range recs {
			b, rb := recordBuffers(rec.Get(taskdb.KeyBuffers)), recordBuffers(rec.Get(taskdb.KeyResultBuffers))
			rec = slices.DeleteFunc(rec, func(f taskdb.Field) bool {
				return f.Key == taskdb.KeyBuffers || f.Key == taskdb.KeyResultBuffers
			})
			if withBufs {
				bufLens = append(bufLens, len(b))
				bufs = append(bufs, b...)
			}
			if withResults {
				resultLens = append(resultLens, len(rb))
				bufs = append(bufs, rb...)
			}
			records[i] = rec
		}
		h.ok(m, "db_reply", map[string]any{
			"records": records, "buffer_lens": nilIfNil(bufLens), "result_buffer_lens": nilIfNil(resultLens),
		}, bufs)
	})
}

// nilIfNil keeps a nil list as null rather than a typed nil.
func nilIfNil(l []any) any {
	if l == nil {
		return nil
	}
	return l
}

// purgeRequest answers purge_request {msg_ids: list|"all", engine_ids}
// (§4.3), purging the hub's memory as well as the database. Later tasks
// that depend on a purged msg_id get InvalidDependency, as for any
// unknown id.
func (s *state) purgeRequest(m *wire.Message) {
	var filters []*query.Filter
	switch v := m.Content["msg_ids"].(type) {
	case string:
		if v != "all" {
			s.h.replyErr(sockQuery, m, "purge_reply", badContent("msg_ids", `a list of msg_ids or "all"`))
			return
		}
		filters = append(filters, query.MustParse(`{"completed": {"$ne": null}}`))
		s.done.forgetAll()
	default:
		ids, ok := []string{}, true
		if v != nil {
			ids, ok = msgIDs(v)
		}
		if !ok {
			s.h.replyErr(sockQuery, m, "purge_reply", badContent("msg_ids", `a list of msg_ids or "all"`))
			return
		}
		for _, id := range ids {
			if s.pending[id] != nil {
				s.h.replyErr(sockQuery, m, "purge_reply", &wire.Error{Name: "IndexError", Value: "msg pending: " + pyRepr(id)})
				return
			}
		}
		var es []*engine
		if v := m.Content["engine_ids"]; v != nil {
			l, ok := v.([]any)
			if !ok {
				s.h.replyErr(sockQuery, m, "purge_reply", badContent("engine_ids", "a list of engine ids"))
				return
			}
			for _, x := range l {
				id, ok := asInt(x)
				e := s.reg.live[id]
				if !ok || e == nil {
					s.h.replyErr(sockQuery, m, "purge_reply", &wire.Error{Name: "IndexError", Value: "No such engine: " + pyRepr(x)})
					return
				}
				es = append(es, e)
			}
		}
		if len(ids) > 0 {
			filters = append(filters, inFilter(ids))
			for _, id := range ids {
				s.done.forget(id)
			}
		}
		for _, e := range es {
			f, err := query.Parse(map[string]any{
				taskdb.KeyEngineUUID: e.uuid,
				taskdb.KeyCompleted:  map[string]any{"$ne": nil},
			})
			if err != nil {
				s.h.replyErr(sockQuery, m, "purge_reply", err)
				return
			}
			filters = append(filters, f)
			s.done.forgetEngine(e.uuid)
		}
	}
	h := s.h
	s.do(func(ctx context.Context, db taskdb.DB) {
		for _, f := range filters {
			if err := db.DropMatchingRecords(ctx, f); err != nil {
				h.replyErr(sockQuery, m, "purge_reply", err)
				return
			}
		}
		h.ok(m, "purge_reply", nil, nil)
	})
}

// resubmitRequest answers resubmit_request {msg_ids} (§4.4): each task is
// submitted again under a new msg_id, with the original header (new
// msg_id and date), metadata, content and buffers, and the original header
// as parent. The new tasks' results are recorded, not sent to a client:
// clients poll them with result_request.
func (s *state) resubmitRequest(m *wire.Message) {
	ids, ok := msgIDs(m.Content["msg_ids"])
	if !ok {
		s.h.replyErr(sockQuery, m, "resubmit_reply", badContent("msg_ids", "a list of msg_ids"))
		return
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	h := s.h
	keys := []string{taskdb.KeyHeader, taskdb.KeyMetadata, taskdb.KeyContent, taskdb.KeyBuffers}
	s.do(func(ctx context.Context, db taskdb.DB) {
		recs, err := db.FindRecords(ctx, inFilter(ids), keys)
		if err != nil {
			h.replyErr(sockQuery, m, "resubmit_reply", err)
			return
		}
		if len(recs) < len(ids) {
			found := idSet{}
			for _, r := range recs {
				found.add(r.Get(taskdb.KeyMsgID).(string))
			}
			var missing []string
			for _, id := range ids {
				if !found.has(id) {
					missing = append(missing, pyRepr(id))
				}
			}
			h.replyErr(sockQuery, m, "resubmit_reply", &wire.Error{Name: "KeyError", Value: "No such msg(s): [" + strings.Join(missing, ", ") + "]"})
			return
		}
		// Not h.post from here: the state goroutine may be waiting for
		// room in this goroutine's queue.
		go h.post(func() { s.resubmit(m, recs) })
	})
}

// resubmit submits the found records again, on the state goroutine.
func (s *state) resubmit(req *wire.Message, recs []taskdb.Doc) {
	msgs := make([]*wire.Message, 0, len(recs))
	for _, rec := range recs {
		hd, _ := rec.Get(taskdb.KeyHeader).(taskdb.Doc)
		orig, err := wire.HeaderFromMap(hd.Record())
		if err != nil || orig.MsgType == "" {
			s.h.replyErr(sockQuery, req, "resubmit_reply", &wire.Error{Name: "ValueError",
				Value: fmt.Sprintf("record %s has no request header to resubmit", pyRepr(rec.Get(taskdb.KeyMsgID).(string))), Err: err})
			return
		}
		content, _ := rec.Get(taskdb.KeyContent).(taskdb.Doc)
		md, _ := rec.Get(taskdb.KeyMetadata).(taskdb.Doc)
		n := s.h.sess.NewMessage(orig.MsgType, content.Record(), &orig)
		hdr := orig
		hdr.MsgID, hdr.Date = n.Header.MsgID, n.Header.Date
		n.Header = hdr
		if md != nil {
			n.Metadata = md.Record()
		}
		n.Buffers = recordBuffers(rec.Get(taskdb.KeyBuffers))
		n.Identities = [][]byte{[]byte(resubmitIdentity)}
		frames, err := s.h.sess.Encode(n)
		if err != nil {
			s.h.replyErr(sockQuery, req, "resubmit_reply", err)
			return
		}
		n.Raw = frames
		msgs = append(msgs, n)
	}
	resubmitted := map[string]any{}
	for i, n := range msgs {
		resubmitted[recs[i].Get(taskdb.KeyMsgID).(string)] = n.Header.MsgID
		s.submitTask(n)
	}
	s.h.ok(req, "resubmit_reply", map[string]any{"resubmitted": resubmitted}, nil)
	for old, n := range resubmitted {
		s.updateRecord(old, taskdb.Record{taskdb.KeyResubmitted: n})
	}
}

// resubmitIdentity stands in for the client of a resubmitted task: its
// result is recorded, not delivered.
const resubmitIdentity = "\x00hub-resubmit"

// shutdownRequest answers, notifies every client, and stops the hub.
func (s *state) shutdownRequest(m *wire.Message) {
	s.h.ok(m, "shutdown_reply", nil, nil)
	s.h.sendMsg(sockNotification, s.h.sess.NewMessage("shutdown_notification", map[string]any{"status": "ok"}, &m.Header))
	s.h.requestShutdown()
}
