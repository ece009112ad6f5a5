package hub

import (
	"context"
	"errors"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/wire"
)

// iopub relays an engine's output [topic, DELIM, ...] verbatim to the
// clients and captures it in the task's record (§6):
//
//	stream          stdout / stderr, appended
//	error           error = content
//	execute_input   execute_input = code
//	execute_result  execute_result = content
//	display_data    execute_result = content (the schema's rich-output key;
//	                the reference writes a stray "display_data" key)
//	shutdown_reply  unregisters the engine
//
// status and data_pub are not stored; other types are ignored.
func (s *state) iopub(m *wire.Message) {
	s.h.send(sockClientIOPub, m.Raw)
	msgType := m.Header.MsgType
	if msgType == "shutdown_reply" {
		if e := s.reg.byUUID[m.Header.Session]; e != nil {
			s.unregister(e, "shutdown_reply")
		}
		return
	}
	msgID := m.Parent.MsgID
	if msgID == "" {
		return
	}
	var key string
	var value any
	switch msgType {
	case "stream":
		name, _ := m.Content["name"].(string)
		text, _ := m.Content["text"].(string)
		if name != taskdb.KeyStdout && name != taskdb.KeyStderr {
			s.h.log.Debug("ignored stream", "msg_id", msgID, "name", name)
			return
		}
		s.appendOutput(msgID, name, text)
		return
	case "error":
		key, value = taskdb.KeyError, m.Content
	case "execute_input":
		key, value = taskdb.KeyExecuteInput, m.Content["code"]
	case "execute_result", "display_data":
		key, value = taskdb.KeyExecuteResult, m.Content
	default:
		return
	}
	s.setOutput(msgID, key, value)
}

// appendOutput appends text to a record's stdout or stderr, creating the
// record (without submitted) if the request has not been recorded.
func (s *state) appendOutput(msgID, key, text string) {
	h := s.h
	s.do(func(ctx context.Context, db taskdb.DB) {
		old, err := db.GetRecord(ctx, msgID)
		switch {
		case err == nil:
			prev, _ := old.Get(key).(string)
			err = db.UpdateRecord(ctx, msgID, taskdb.Record{key: prev + text})
		case errors.Is(err, taskdb.ErrNoData):
			return
		case errors.Is(err, taskdb.ErrNotFound) && !errors.Is(err, taskdb.ErrCulled):
			rec := taskdb.EmptyRecord(msgID)
			rec[key] = text
			err = db.AddRecord(ctx, msgID, rec)
		}
		if err != nil {
			h.dbFailed("iopub", msgID, err)
		}
	})
}

// setOutput sets one output field, creating the record if needed.
func (s *state) setOutput(msgID, key string, value any) {
	h := s.h
	s.do(func(ctx context.Context, db taskdb.DB) {
		err := db.UpdateRecord(ctx, msgID, taskdb.Record{key: value})
		if errors.Is(err, taskdb.ErrNotFound) && !errors.Is(err, taskdb.ErrCulled) {
			rec := taskdb.EmptyRecord(msgID)
			rec[key] = value
			err = db.AddRecord(ctx, msgID, rec)
		}
		if err != nil {
			h.dbFailed("iopub", msgID, err)
		}
	})
}
