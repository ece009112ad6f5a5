package client

import (
	"testing"

	"github.com/taskhub/taskhub/wire"
)

// FuzzReplies feeds arbitrary reply content (msgpack, as a hub would send
// it) with some buffer frames to every reply parser: a hostile or broken
// hub may make calls fail, never panic the client.
func FuzzReplies(f *testing.F) {
	sess, err := wire.NewSession(wire.Config{})
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []map[string]any{
		{"status": "ok", "engines": map[string]any{"0": "u0"}},
		{"status": "ok", "0": map[string]any{"queue": 1, "tasks": []string{"a"}, "completed": 3}, "unassigned": []string{"x"}},
		{"status": "ok", "pending": []string{"b"}, "completed": []string{"a"}, "a": map[string]any{"header": map[string]any{}, "received": "2024-01-02T03:04:05Z"}},
		{"status": "ok", "history": []string{"a", "b"}},
		{"status": "ok", "records": []any{map[string]any{"msg_id": "a", "submitted": "2024-01-02T03:04:05.5Z", "header": map[string]any{"date": "x"}}},
			"buffer_lens": []int{2}, "result_buffer_lens": []int{1}},
		{"status": "ok", "resubmitted": map[string]any{"a": "b"}},
		{"status": "error", "ename": "KeyError", "evalue": "x", "traceback": []any{"l", 1}},
	} {
		b, err := sess.Pack(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(3))
	}
	f.Fuzz(func(t *testing.T, packed []byte, nbufs uint8) {
		content, err := sess.Unpack(packed)
		if err != nil {
			return
		}
		m := &wire.Message{Header: wire.Header{MsgType: "fuzz_reply"}, Content: content}
		for i := range int(nbufs % 8) {
			m.Buffers = append(m.Buffers, make([]byte, i))
		}
		replyError(m)
		parseConnection(m)
		parseQueueStatus(m)
		resultStatus(m)
		parseResults(m)
		parseHistory(m)
		parseDBQuery(m)
		parseResubmit(m)
	})
}
