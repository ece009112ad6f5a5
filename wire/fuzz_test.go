package wire_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/taskhub/taskhub/wire"
)

// fuzzSep separates frames in a fuzz input.
var fuzzSep = []byte("\x00|")

// FuzzDecode: Decode never panics, and whatever decodes re-encodes to
// frames that decode to the same message. Unsigned sessions, so that the
// fuzzer reaches the unpackers; a keyed session must reject everything it
// did not sign, without panicking.
func FuzzDecode(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.Packer == "json", bytes.Join(v.Frames, fuzzSep))
	}
	f.Fuzz(func(t *testing.T, json bool, raw []byte) {
		packer := "msgpack"
		if json {
			packer = "json"
		}
		frames := bytes.Split(raw, fuzzSep)
		keyed := newSession(t, wire.Config{Packer: packer, Key: testKey, ReplayHistory: -1})
		if _, err := keyed.Decode(frames); err == nil {
			t.Fatal("a keyed session accepted a message it cannot have signed")
		}
		s := newSession(t, wire.Config{Packer: packer})
		m, err := s.Decode(frames)
		if err != nil {
			return
		}
		out, err := s.Encode(m)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", m, err)
		}
		m2, err := s.Decode(out)
		if err != nil {
			t.Fatalf("decode re-encoded %q: %v", out, err)
		}
		m.Raw, m2.Raw = nil, nil
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip\n got %#v\nwant %#v", m2, m)
		}
	})
}
