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

// FuzzHeader: Decode's header path (msgpack decodes headers without a
// map) agrees with HeaderFromMap over Unpack, on success and on failure.
func FuzzHeader(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.Packer == "json", v.Frames[4]) // header
		f.Add(v.Packer == "json", v.Frames[5]) // parent
	}
	f.Fuzz(func(t *testing.T, json bool, header []byte) {
		packer := "msgpack"
		if json {
			packer = "json"
		}
		s := newSession(t, wire.Config{Packer: packer})
		empty, err := s.Pack(map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Decode([][]byte{[]byte(wire.Delimiter), nil, header, empty, empty, empty})
		var want wire.Header
		doc, wantErr := s.Unpack(header)
		if wantErr == nil {
			want, wantErr = wire.HeaderFromMap(doc)
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("Decode: %v; HeaderFromMap(Unpack): %v", err, wantErr)
		}
		if err == nil && m.Header != want {
			t.Fatalf("Decode header %+v; HeaderFromMap(Unpack) %+v", m.Header, want)
		}
	})
}
