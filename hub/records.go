package hub

import (
	"context"
	"errors"
	"reflect"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/wire"
)

// dbOp is one task-database operation. The DB goroutine (serveDB) runs
// them one at a time in the order the state goroutine queued them, so a
// query queued after a write sees it.
type dbOp func(ctx context.Context, db taskdb.DB)

// serveDB runs queued operations until the queue is closed.
func (h *Hub) serveDB(done chan<- struct{}) {
	defer close(done)
	ctx := context.Background()
	for op := range h.dbq {
		op(ctx, h.db)
	}
}

// dbFailed logs and counts a failed write. Writes never stop routing.
func (h *Hub) dbFailed(op, msgID string, err error) {
	h.stats.dbErrors.Add(1)
	h.log.Error("task database write failed", "op", op, "msg_id", msgID, "err", err)
}

// do queues op; when the queue is full the state goroutine waits.
func (s *state) do(op dbOp) { s.h.dbq <- op }

// now is the hub clock for records: UTC, microseconds, as dates travel.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// requestRecord is init_record (§8.1) for a request arriving on queue
// ("task" or "mux"); engine is known for mux requests. The database fills
// the other schema keys with their defaults.
func requestRecord(m *wire.Message, queue, engine string) taskdb.Record {
	submitted := m.Header.Date
	if submitted.IsZero() {
		submitted = now()
	}
	rec := taskdb.Record{
		taskdb.KeyMsgID:      m.Header.MsgID,
		taskdb.KeyHeader:     m.Header.Map(),
		taskdb.KeyMetadata:   m.Metadata,
		taskdb.KeyContent:    m.Content,
		taskdb.KeyBuffers:    buffers(m.Buffers),
		taskdb.KeySubmitted:  submitted,
		taskdb.KeyClientUUID: m.Header.Session,
		taskdb.KeyQueue:      queue,
	}
	if engine != "" {
		rec[taskdb.KeyEngineUUID] = engine
	}
	return rec
}

// resultRecord holds the fields a result sets (§6): engine is the engine
// that produced it, "" for the scheduler's own failures.
func resultRecord(r *wire.Message, engine string) taskdb.Record {
	completed := r.Header.Date
	if completed.IsZero() {
		completed = now()
	}
	var started any
	if t, ok := r.Metadata["started"].(time.Time); ok {
		started = t
	}
	return taskdb.Record{
		taskdb.KeyResultHeader:   r.Header.Map(),
		taskdb.KeyResultMetadata: r.Metadata,
		taskdb.KeyResultContent:  r.Content,
		taskdb.KeyResultBuffers:  buffers(r.Buffers),
		taskdb.KeyStarted:        started,
		taskdb.KeyCompleted:      completed,
		taskdb.KeyReceived:       now(),
		taskdb.KeyEngineUUID:     engine,
	}
}

func buffers(b [][]byte) [][]byte {
	if b == nil {
		return [][]byte{}
	}
	return b
}

// addRecord stores a new request's record. If output arrived first (the
// record exists), the request's fields are merged in: an existing value
// survives only where the request has none.
func (s *state) addRecord(rec taskdb.Record) {
	h := s.h
	msgID := rec[taskdb.KeyMsgID].(string)
	s.do(func(ctx context.Context, db taskdb.DB) {
		err := db.AddRecord(ctx, msgID, rec)
		if !errors.Is(err, taskdb.ErrExists) {
			if err != nil {
				h.dbFailed("add", msgID, err)
			}
			return
		}
		old, err := db.GetRecord(ctx, msgID)
		if err != nil {
			h.dbFailed("merge", msgID, err)
			return
		}
		for k, v := range old.Record() {
			if !empty(v) && empty(rec[k]) {
				rec[k] = v
			} else if !empty(v) && k != taskdb.KeyBuffers && !reflect.DeepEqual(v, rec[k]) {
				h.log.Warn("conflicting initial record state", "msg_id", msgID, "key", k)
			}
		}
		if err := db.UpdateRecord(ctx, msgID, rec); err != nil {
			h.dbFailed("merge", msgID, err)
		}
	})
}

// empty is Python's falsiness for record values.
func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case [][]byte:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// updateRecord merges fields into a record.
func (s *state) updateRecord(msgID string, fields taskdb.Record) {
	h := s.h
	s.do(func(ctx context.Context, db taskdb.DB) {
		if err := db.UpdateRecord(ctx, msgID, fields); err != nil {
			h.dbFailed("update", msgID, err)
		}
	})
}
