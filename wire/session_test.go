package wire_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/taskhub/taskhub/wire"
)

var testKey = []byte("a-fixed-test-key")

func newSession(tb testing.TB, cfg wire.Config) *wire.Session {
	tb.Helper()
	s, err := wire.NewSession(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// taskMessage is a typical apply_request: header, metadata, content and 2
// buffers behind one client identity.
func taskMessage(s *wire.Session) *wire.Message {
	m := s.NewMessage("apply_request", nil, nil)
	m.Identities = [][]byte{[]byte("0f1e2d3c-4b5a69788796a5b4c3d2e1f0")}
	m.Metadata = map[string]any{
		"after": []any{}, "follow": []any{}, "retries": int64(0),
		"targets": []any{}, "timeout": nil,
	}
	m.Buffers = [][]byte{bytes.Repeat([]byte{0x80}, 120), bytes.Repeat([]byte{0x42}, 64)}
	return m
}

func encode(tb testing.TB, s *wire.Session, m *wire.Message) [][]byte {
	tb.Helper()
	f, err := s.Encode(m)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func TestNewSession(t *testing.T) {
	for _, c := range []struct {
		cfg              wire.Config
		pack, unpack, sc string
		err              error
	}{
		{wire.Config{}, "msgpack.packb", "msgpack.unpackb", "hmac-sha256", nil},
		{wire.Config{Packer: "json", SignatureScheme: "hmac-md5"}, "json", "json", "hmac-md5", nil},
		{wire.Config{SignatureScheme: "hmac-sha3"}, "", "", "", wire.ErrUnknownScheme},
		{wire.Config{SignatureScheme: "sha256"}, "", "", "", wire.ErrUnknownScheme},
		{wire.Config{Packer: "pickle"}, "", "", "", errors.New("any")},
	} {
		t.Run(fmt.Sprintf("%s/%s", c.cfg.Packer, c.cfg.SignatureScheme), func(t *testing.T) {
			s, err := wire.NewSession(c.cfg)
			if c.err != nil {
				if err == nil || (errors.Is(c.err, wire.ErrUnknownScheme) && !errors.Is(err, wire.ErrUnknownScheme)) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.PackName() != c.pack || s.UnpackName() != c.unpack || s.SignatureScheme() != c.sc {
				t.Errorf("names %q %q %q, want %q %q %q", s.PackName(), s.UnpackName(), s.SignatureScheme(), c.pack, c.unpack, c.sc)
			}
			if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{24}$`).MatchString(s.ID()) {
				t.Errorf("ID() = %q, not like jupyter_client's new_id", s.ID())
			}
			if s.Username() == "" {
				t.Error("empty username")
			}
		})
	}
	s := newSession(t, wire.Config{SessionID: "sid", Username: "bob"})
	if s.ID() != "sid" || s.Username() != "bob" {
		t.Errorf("ID, Username = %q, %q", s.ID(), s.Username())
	}
}

func TestNewMessage(t *testing.T) {
	s := newSession(t, wire.Config{SessionID: "sid", Username: "bob"})
	parent := wire.Header{MsgID: "p"}
	before := time.Now()
	m := s.NewMessage("t", nil, &parent)
	h := m.Header
	if h.MsgType != "t" || h.Username != "bob" || h.Session != "sid" || h.Version != wire.ProtocolVersion || m.Parent != parent {
		t.Errorf("header %+v parent %+v", h, m.Parent)
	}
	if h.Date.Location() != time.UTC || h.Date.Nanosecond()%1000 != 0 || h.Date.Before(before.Truncate(time.Microsecond)) {
		t.Errorf("date %v: want UTC now, to the microsecond", h.Date)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(h.MsgID) {
		t.Errorf("msg_id %q is not a random uuid", h.MsgID)
	}
	if m.Content == nil || m.Metadata == nil {
		t.Error("nil content or metadata")
	}
	if s.NewMessage("t", nil, nil).Header.MsgID == h.MsgID {
		t.Error("msg_id repeated")
	}
}

// TestRoundTrip encodes and decodes with every packer and scheme, and with
// no key.
func TestRoundTrip(t *testing.T) {
	for _, packer := range []string{"msgpack", "json"} {
		for _, scheme := range []string{"hmac-sha256", "hmac-sha1", "hmac-sha512", "hmac-md5", ""} {
			t.Run(packer+"/"+scheme, func(t *testing.T) {
				cfg := wire.Config{Packer: packer, SignatureScheme: scheme, Key: testKey}
				if scheme == "" {
					cfg.Key = nil
				}
				s := newSession(t, cfg)
				m := taskMessage(s)
				parent := s.NewMessage("x", nil, nil).Header
				m.Parent = parent
				m.Metadata["started"] = time.Date(2024, 5, 6, 7, 8, 9, 10000, time.UTC)
				m.Content = map[string]any{"n": int64(-3), "s": "é", "l": []any{1.25, nil, true}}
				frames := encode(t, s, m)
				sig := frames[2]
				wantLen := map[string]int{"hmac-sha256": 64, "hmac-sha1": 40, "hmac-sha512": 128, "hmac-md5": 32, "": 0}[scheme]
				if len(sig) != wantLen || !regexp.MustCompile(`^[0-9a-f]*$`).Match(sig) {
					t.Errorf("signature %q: want %d lowercase hex digits", sig, wantLen)
				}
				got, err := s.Decode(frames)
				if err != nil {
					t.Fatal(err)
				}
				if !sameFrames(got.Raw, frames) {
					t.Error("Raw differs from the frames")
				}
				// Nothing is copied: identities and buffers alias the frames
				// both ways.
				if &frames[0][0] != &m.Identities[0][0] || &frames[7][0] != &m.Buffers[0][0] ||
					&got.Identities[0][0] != &frames[0][0] || &got.Buffers[1][0] != &frames[8][0] || &got.Raw[0] != &frames[0] {
					t.Error("identities, buffers or Raw were copied")
				}
				got.Raw = nil
				if !reflect.DeepEqual(got, m) {
					t.Errorf("round trip\n got %#v\nwant %#v", got, m)
				}
			})
		}
	}
}

// resign replaces the packed frame i (0 header … 3 content) and signs the
// result with HMAC-SHA256 and testKey, so that only unpacking can fail.
func resign(frames [][]byte, i int, packed []byte) [][]byte {
	out := append([][]byte(nil), frames...)
	out[3+i] = packed
	mac := hmac.New(sha256.New, testKey)
	for _, p := range out[3:7] {
		mac.Write(p)
	}
	out[2] = []byte(hex.EncodeToString(mac.Sum(nil)))
	return out
}

func TestDecodeErrors(t *testing.T) {
	for _, packer := range []string{"msgpack", "json"} {
		cfg := wire.Config{Key: testKey, Packer: packer}
		s := newSession(t, cfg)
		good := func() [][]byte { return encode(t, s, taskMessage(s)) } // fresh signature each call
		garbage := map[string][]byte{"msgpack": {0xc1}, "json": []byte("{")}[packer]
		list := map[string][]byte{"msgpack": {0x90}, "json": []byte("[]")}[packer]
		badDate := map[string][]byte{
			"msgpack": {0x81, 0xa4, 'd', 'a', 't', 'e', 0xa3, 'n', 'o', 'w'},
			"json":    []byte(`{"date": "now"}`),
		}[packer]
		intID := map[string][]byte{
			"msgpack": {0x81, 0xa6, 'm', 's', 'g', '_', 'i', 'd', 0x05},
			"json":    []byte(`{"msg_id": 5}`),
		}[packer]
		for _, c := range []struct {
			name   string
			frames [][]byte
			want   error
			frame  string // FrameError.Frame, if any
		}{
			{"nil", nil, wire.ErrMalformed, ""},
			{"no delimiter", good()[3:], wire.ErrMalformed, ""},
			{"4 frames after delimiter", good()[:6], wire.ErrMalformed, ""},
			{"unsigned", func() [][]byte { f := good(); f[2] = nil; return f }(), wire.ErrUnsigned, ""},
			{"tampered content", func() [][]byte { f := good(); f[6] = list; return f }(), wire.ErrBadSignature, ""},
			{"tampered header", func() [][]byte { f := good(); f[3] = append([]byte{}, f[3]...); f[3][5] ^= 1; return f }(), wire.ErrBadSignature, ""},
			{"uppercase signature", func() [][]byte { f := good(); f[2] = bytes.ToUpper(f[2]); return f }(), wire.ErrBadSignature, ""},
			{"short signature", func() [][]byte { f := good(); f[2] = f[2][:10]; return f }(), wire.ErrBadSignature, ""},
			{"other key", encode(t, newSession(t, wire.Config{Key: []byte("other"), Packer: packer}), taskMessage(s)), wire.ErrBadSignature, ""},
			{"other scheme", encode(t, newSession(t, wire.Config{Key: testKey, Packer: packer, SignatureScheme: "hmac-sha512"}), taskMessage(s)), wire.ErrBadSignature, ""},
			{"bad header", resign(good(), 0, garbage), wire.ErrMalformed, "header"},
			{"bad parent", resign(good(), 1, garbage), wire.ErrMalformed, "parent_header"},
			{"bad metadata", resign(good(), 2, garbage), wire.ErrMalformed, "metadata"},
			{"bad content", resign(good(), 3, garbage), wire.ErrMalformed, "content"},
			{"content is a list", resign(good(), 3, list), wire.ErrMalformed, "content"},
			{"metadata is a list", resign(good(), 2, list), wire.ErrMalformed, "metadata"},
			{"header date", resign(good(), 0, badDate), wire.ErrMalformed, "header"},
			{"parent msg_id not a string", resign(good(), 1, intID), wire.ErrMalformed, "parent_header"},
			{"trailing bytes", resign(good(), 3, append(append([]byte{}, list...), list...)), wire.ErrMalformed, "content"},
		} {
			t.Run(packer+"/"+c.name, func(t *testing.T) {
				m, err := s.Decode(c.frames)
				if !errors.Is(err, c.want) || m != nil {
					t.Fatalf("Decode = %v, %v; want %v", m, err, c.want)
				}
				var fe *wire.FrameError
				if got := errors.As(err, &fe); got != (c.frame != "") || (got && fe.Frame != c.frame) {
					t.Fatalf("err %v: want a FrameError for %q", err, c.frame)
				}
			})
		}
	}
}

// TestPackedAndHeaders checks the pieces of Encode and Decode that
// senders of pre-packed messages and header-only receivers use:
// EncodePacked over Pack's frames gives Encode's bytes, DecodeHeaders
// verifies as Decode does but leaves metadata and content packed, and
// UnpackHeader reads a header frame alone.
func TestPackedAndHeaders(t *testing.T) {
	for _, packer := range []string{"msgpack", "json"} {
		t.Run(packer, func(t *testing.T) {
			s := newSession(t, wire.Config{Key: testKey, Packer: packer})
			m := taskMessage(s)
			m.Parent = s.NewMessage("x", nil, nil).Header
			want := encode(t, s, m)
			var packed [4][]byte
			for i, v := range []any{&m.Header, &m.Parent, m.Metadata, m.Content} {
				var err error
				if packed[i], err = s.Pack(v); err != nil {
					t.Fatal(err)
				}
			}
			got := s.EncodePacked(m.Identities, packed, m.Buffers)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("EncodePacked\n got %q\nwant %q", got, want)
			}

			h, err := s.DecodeHeaders(got)
			if err != nil {
				t.Fatal(err)
			}
			if h.Header != m.Header || h.Parent != m.Parent || h.Metadata != nil || h.Content != nil ||
				!reflect.DeepEqual(h.Buffers, m.Buffers) || !reflect.DeepEqual(h.Identities, m.Identities) {
				t.Errorf("DecodeHeaders = %+v, want the headers of %+v and no metadata or content", h, m)
			}
			if _, err := s.DecodeHeaders(got); !errors.Is(err, wire.ErrReplayed) {
				t.Errorf("DecodeHeaders of a replay: %v, want ErrReplayed", err)
			}
			tampered := append([][]byte(nil), want...)
			tampered[5] = append([]byte{}, tampered[5]...) // metadata
			tampered[5][len(tampered[5])/2] ^= 1
			if _, err := s.DecodeHeaders(tampered); !errors.Is(err, wire.ErrBadSignature) {
				t.Errorf("DecodeHeaders of a tampered message: %v, want ErrBadSignature", err)
			}

			if hdr, err := s.UnpackHeader(packed[0]); err != nil || hdr != m.Header {
				t.Errorf("UnpackHeader = %+v, %v; want %+v", hdr, err, m.Header)
			}
			if _, err := s.UnpackHeader(packed[2][:1]); !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("UnpackHeader of a cut frame: %v, want ErrMalformed", err)
			}
		})
	}
}
