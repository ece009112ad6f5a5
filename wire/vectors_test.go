package wire_test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/taskhub/taskhub/wire"
)

// vector is one message packed and signed by jupyter_client; see
// testdata/gen_vectors.py.
type vector struct {
	Name       string
	Packer     string
	Scheme     string
	Key        string
	SameFrames []int `json:"same_frames"` // packed frames Go must reproduce byte for byte
	Frames     [][]byte
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var f struct{ Cases []vector }
	if err := json.Unmarshal(b, &f); err != nil {
		tb.Fatal(err)
	}
	return f.Cases
}

var (
	d1 = time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)
	d2 = time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC)
	d3 = time.Date(2024, 1, 2, 3, 4, 7, 500000000, time.UTC) // sent as 04:04:07.5+01:00
)

const (
	vecSession = "0123abcd-4567ef0123456789abcdef01"
	vecEngine  = "fedcba98-76543210fedcba9876543210"
)

func vecHeader(id, typ string, date time.Time, session string) wire.Header {
	return wire.Header{MsgID: id, MsgType: typ, Username: "alice", Session: session, Date: date, Version: "5.3"}
}

// expected returns the message gen_vectors.py built for a case, as Decode
// must return it (without Raw).
func expected(packer, name string) *wire.Message {
	m := &wire.Message{
		Identities: [][]byte{[]byte("client-7"), {0, 'k', 0x8b, 0x45, 0x67}},
		Metadata:   map[string]any{},
		Content:    map[string]any{},
	}
	applyRequest := func() {
		m.Header = vecHeader("m-apply-1", "apply_request", d1, vecSession)
		m.Metadata = map[string]any{"after": []any{}, "follow": []any{"f1", "f2"}, "retries": int64(0),
			"targets": []any{int64(0), int64(3)}, "timeout": nil}
		m.Buffers = [][]byte{[]byte("\x80\x04\x95canned-pickle\x00\xff"), []byte(strings.Repeat("args-buffer", 3))}
	}
	applyReply := func() {
		m.Header = vecHeader("m-reply-1", "apply_reply", d2, vecEngine)
		m.Parent = vecHeader("m-apply-1", "apply_request", d1, vecSession)
		m.Metadata = map[string]any{"dependencies_met": true, "engine": vecEngine, "is_broadcast": false,
			"started": d2, "status": "ok"}
		m.Content = map[string]any{"status": "ok"}
		m.Buffers = [][]byte{[]byte("result")}
	}
	switch name {
	case "apply_request", "unsigned":
		applyRequest()
	case "apply_reply", "hmac-sha1", "hmac-sha512", "hmac-md5":
		applyReply()
	case "values":
		m.Header = vecHeader("m-values-1", "db_reply", d1, vecSession)
		// JSON has no binary type and both packers carry dates as strings.
		var bin any = []byte{0, 1, 0xfe, 0xff}
		when := "2024-01-02T03:04:05.123456+00:00"
		if packer == "json" {
			bin, when = "AAH+/w==\n", "2024-01-02T03:04:05.123456Z"
		}
		m.Content = map[string]any{
			"big": int64(1) << 62, "bool": true, "bytes": bin, "empty_list": []any{},
			"empty_map": map[string]any{}, "float": 1.5, "float_exp": 1e-07, "float_int": 3.0,
			"float_large": 1e16, "int": int64(42),
			"list":   []any{int64(1), "two", nil, false, int64(-7)},
			"nested": map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": int64(-129)}}}},
			"neg":    int64(-1), "neg_big": int64(-1) << 40, "none": nil,
			"text": "caf\u00e9 \u2603 \"quoted\" back\\slash\nnew\ttab\x01",
			"u16":  int64(65535), "u8": int64(200), "when": when,
		}
	case "offset_date":
		m.Header = vecHeader("m-offset-1", "status", d3, vecSession)
		m.Metadata = map[string]any{"submitted": d3}
		m.Content = map[string]any{"execution_state": "idle"}
	default:
		panic("no expectation for vector " + name)
	}
	return m
}

// TestVectors decodes messages that jupyter_client packed and signed,
// checks every field, and re-encodes them: byte for byte where the packer
// allows, and always to something that decodes to the same message.
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			s, err := wire.NewSession(wire.Config{Key: []byte(v.Key), SignatureScheme: v.Scheme, Packer: v.Packer, SessionID: vecSession})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Decode(v.Frames)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !sameFrames(got.Raw, v.Frames) {
				t.Error("Raw is not the received frames")
			}
			packer, name, _ := strings.Cut(v.Name, "/")
			want := expected(packer, name)
			got.Raw = nil
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded\n got %#v\nwant %#v", got, want)
			}

			out, err := s.Encode(got)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if len(out) != len(v.Frames) {
				t.Fatalf("encode: %d frames, want %d", len(out), len(v.Frames))
			}
			const first = 4 // 2 identities, delimiter, signature
			for i := range first - 1 {
				if i != first-2 || len(v.Key) > 0 { // the signature is checked below
					if !bytes.Equal(out[i], v.Frames[i]) {
						t.Errorf("frame %d = %q, want %q", i, out[i], v.Frames[i])
					}
				}
			}
			for _, i := range v.SameFrames {
				if !bytes.Equal(out[first+i], v.Frames[first+i]) {
					t.Errorf("packed frame %d\n got %q\nwant %q", i, out[first+i], v.Frames[first+i])
				}
			}
			if len(v.SameFrames) == 4 && !bytes.Equal(out[first-1], v.Frames[first-1]) {
				t.Errorf("signature %q, want %q", out[first-1], v.Frames[first-1])
			}
			if !sameFrames(out[first+4:], v.Frames[first+4:]) {
				t.Error("buffers differ")
			}
			// A fresh session: the first one has seen these signatures.
			s2, _ := wire.NewSession(wire.Config{Key: []byte(v.Key), SignatureScheme: v.Scheme, Packer: v.Packer})
			again, err := s2.Decode(out)
			if err != nil {
				t.Fatalf("decode re-encoded: %v", err)
			}
			again.Raw = nil
			if !reflect.DeepEqual(again, want) {
				t.Fatalf("re-encoded decodes to\n%#v\nwant %#v", again, want)
			}
		})
	}
}

func sameFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
