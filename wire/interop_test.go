package wire_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"reflect"
	"testing"
	"time"

	"github.com/taskhub/taskhub/wire"
	"github.com/taskhub/taskhub/wire/wiretest"
)

var interopCases = []struct{ packer, scheme string }{
	{"json", "hmac-sha256"},
	{"msgpack", "hmac-sha256"},
	{"json", "hmac-md5"},
	{"msgpack", "hmac-sha512"},
}

func runInterop(t *testing.T, python string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), python, append([]string{"testdata/interop.py"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("interop.py %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

// TestInteropPythonSigns: jupyter_client signs and packs, Go verifies and
// decodes.
func TestInteropPythonSigns(t *testing.T) {
	python := wiretest.Python(t, "jupyter_client", "msgpack")
	for _, c := range interopCases {
		t.Run(c.packer+"/"+c.scheme, func(t *testing.T) {
			before := time.Now().Add(-time.Second)
			var frames [][]byte
			if err := json.Unmarshal(runInterop(t, python, nil, "sign", c.packer, c.scheme, string(testKey)), &frames); err != nil {
				t.Fatal(err)
			}
			s := newSession(t, wire.Config{Key: testKey, SignatureScheme: c.scheme, Packer: c.packer})
			m, err := s.Decode(frames)
			if err != nil {
				t.Fatal(err)
			}
			h := m.Header
			if h.MsgType != "apply_reply" || h.Session != "py-session" || h.Username != "py" || h.Version != "5.3" || h.MsgID == "" {
				t.Errorf("header %+v", h)
			}
			if h.Date.Before(before) || h.Date.After(time.Now()) {
				t.Errorf("header date %v is not now", h.Date)
			}
			if m.Parent.MsgType != "apply_request" || m.Parent.Date.IsZero() {
				t.Errorf("parent %+v", m.Parent)
			}
			started, ok := m.Metadata["started"].(time.Time)
			if !ok || started.Before(before) || m.Metadata["engine"] != "e-uuid" {
				t.Errorf("metadata %#v", m.Metadata)
			}
			var bin any = []byte{0, 1}
			if c.packer == "json" {
				bin = "AAE=\n"
			}
			when, _ := m.Content["when"].(string)
			if d, ok := wire.ParseDate(when); !ok || !d.Equal(started) {
				t.Errorf("content date %q, want a string for %v", when, started)
			}
			delete(m.Content, "when")
			want := map[string]any{"bytes": bin, "float": 0.25, "int": int64(5), "list": []any{int64(1), "a", nil}, "str": "h\u00e9llo"}
			if !reflect.DeepEqual(m.Content, want) {
				t.Errorf("content\n got %#v\nwant %#v", m.Content, want)
			}
			if !sameFrames(m.Identities, [][]byte{[]byte("engine-0")}) || !sameFrames(m.Buffers, [][]byte{[]byte("buf-one"), make([]byte, 1000)}) {
				t.Errorf("identities %q, %d buffers", m.Identities, len(m.Buffers))
			}
		})
	}
}

// TestInteropGoSigns: Go signs and packs, jupyter_client verifies and
// deserializes.
func TestInteropGoSigns(t *testing.T) {
	python := wiretest.Python(t, "jupyter_client", "msgpack")
	for _, c := range interopCases {
		t.Run(c.packer+"/"+c.scheme, func(t *testing.T) {
			s := newSession(t, wire.Config{Key: testKey, SignatureScheme: c.scheme, Packer: c.packer, SessionID: "go-session", Username: "gopher"})
			d := time.Date(2024, 1, 2, 3, 4, 5, 678000000, time.UTC)
			parent := s.NewMessage("apply_request", nil, nil).Header
			m := s.NewMessage("apply_reply", map[string]any{
				"status": "ok", "n": -7, "f": 2.5, "bin": []byte{0xff, 0}, "ids": []string{"a", "b"}, "when": d,
			}, &parent)
			m.Header.Date = d
			m.Metadata["started"] = d
			m.Identities = [][]byte{[]byte("client"), {0, 1}}
			m.Buffers = [][]byte{[]byte("b1"), bytes.Repeat([]byte{7}, 70000)}
			frames := encode(t, s, m)
			in, err := json.Marshal(frames)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(runInterop(t, python, in, "verify", c.packer, c.scheme, string(testKey)), &got); err != nil {
				t.Fatal(err)
			}
			// jupyter_client parses header dates; dates elsewhere stay strings.
			hdr := got["header"].(map[string]any)
			if hdr["date"] != "DT:2024-01-02T03:04:05.678000+00:00" || hdr["msg_id"] != m.Header.MsgID ||
				hdr["session"] != "go-session" || hdr["username"] != "gopher" || hdr["version"] != "5.3" || hdr["msg_type"] != "apply_reply" {
				t.Errorf("header %v", hdr)
			}
			if p := got["parent_header"].(map[string]any); p["msg_id"] != parent.MsgID {
				t.Errorf("parent %v", p)
			}
			if md := got["metadata"].(map[string]any); md["started"] != "2024-01-02T03:04:05.678000Z" {
				t.Errorf("metadata %v", md)
			}
			bin := "B64:/wA="
			if c.packer == "json" {
				bin = "/wA=\n"
			}
			want := map[string]any{"status": "ok", "n": -7.0, "f": 2.5, "bin": bin, "ids": []any{"a", "b"}, "when": "2024-01-02T03:04:05.678000Z"}
			if ct := got["content"]; !reflect.DeepEqual(ct, want) {
				t.Errorf("content\n got %#v\nwant %#v", ct, want)
			}
			wantBufs := []any{"B64:YjE=", "B64:" + base64.StdEncoding.EncodeToString(m.Buffers[1])}
			if !reflect.DeepEqual(got["idents"], []any{"B64:Y2xpZW50", "B64:AAE="}) || !reflect.DeepEqual(got["buffers"], wantBufs) {
				t.Errorf("idents %v, buffers differ", got["idents"])
			}
		})
	}
}
