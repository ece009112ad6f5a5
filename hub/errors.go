package hub

import (
	"errors"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
	"github.com/taskhub/taskhub/wire"
)

// toWire is the one place where errors become reply contents. A
// *wire.Error passes through; database errors get the Python exception
// names ipyparallel clients know; anything else is an InternalError whose
// cause stays in the log.
func toWire(err error) *wire.Error {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		return we
	case errors.Is(err, taskdb.ErrNoData):
		return &wire.Error{Name: "NoData", Value: err.Error(), Err: err}
	case errors.Is(err, taskdb.ErrNotFound):
		return &wire.Error{Name: "KeyError", Value: err.Error(), Err: err}
	case errors.Is(err, taskdb.ErrUnavailable):
		return &wire.Error{Name: "DBUnavailable", Value: err.Error(), Err: err}
	case errors.Is(err, query.ErrInvalid):
		return &wire.Error{Name: "InvalidQuery", Value: err.Error(), Err: err}
	default:
		return &wire.Error{Name: "InternalError", Value: "internal error", Err: err}
	}
}

// replyErr answers m on sock with msgType carrying err, and logs it once.
// Any goroutine may call it while the hub runs.
func (h *Hub) replyErr(sock sockID, m *wire.Message, msgType string, err error) {
	we := toWire(err)
	if we.Name == "InternalError" {
		h.log.Error("request failed", "msg_type", m.Header.MsgType, "msg_id", m.Header.MsgID, "err", err)
	} else {
		h.log.Info("request failed", "msg_type", m.Header.MsgType, "msg_id", m.Header.MsgID, "ename", we.Name, "evalue", we.Value)
	}
	h.reply(sock, m.Identities, m.Header, msgType, we.Content(), nil)
}
