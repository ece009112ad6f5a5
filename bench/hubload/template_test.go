package main

import (
	"testing"

	"github.com/taskhub/taskhub/wire"
)

// TestTemplates checks that filled templates are the messages the fake
// peers mean to send, with both packers: the header carries the new
// msg_id and date, ids keep one length and never repeat, and the
// signature verifies.
func TestTemplates(t *testing.T) {
	for _, packer := range []string{"msgpack", "json"} {
		t.Run(packer, func(t *testing.T) {
			s, err := wire.NewSession(wire.Config{Key: []byte("k"), Packer: packer})
			if err != nil {
				t.Fatal(err)
			}
			ids := newIDGen(s)
			h, err := headerTemplate(s, ids, "apply_request")
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for range 300 { // past 0xff: the counter's digits change
				id, date := ids.next(), stamp()
				if len(id) != len(ids.placeholder()) || seen[string(id)] {
					t.Fatalf("msg_id %q: repeated, or not %d long", id, len(ids.placeholder()))
				}
				seen[string(id)] = true
				empty, _ := s.Pack(map[string]any{})
				m, err := s.Decode(s.EncodePacked(nil, [4][]byte{h.fill(id, date), empty, empty, empty}, nil))
				if err != nil {
					t.Fatal(err)
				}
				want := wire.Header{MsgID: string(id), MsgType: "apply_request", Username: s.Username(), Session: s.ID(), Version: wire.ProtocolVersion}
				want.Date, _ = wire.ParseDate(string(date))
				if m.Header != want {
					t.Fatalf("header %+v, want %+v", m.Header, want)
				}
			}
		})
	}
}
