package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// Builders of raw ZMTP byte streams, shared by the tests.

func greeting() []byte { g := nullGreeting; return g[:] }

// frame encodes one frame, long when the body needs it.
func frame(flags byte, body []byte) []byte {
	if len(body) > 255 {
		return append(longHeader(flags, uint64(len(body))), body...)
	}
	return append([]byte{flags, byte(len(body))}, body...)
}

func longHeader(flags byte, size uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{flags | flagLong}, size)
}

func command(name string, body []byte) []byte {
	return frame(flagCommand, append(append([]byte{byte(len(name))}, name...), body...))
}

// props encodes READY properties from name, value pairs.
func props(kv ...string) []byte {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, byte(len(kv[i])))
		b = append(b, kv[i]...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(kv[i+1])))
		b = append(b, kv[i+1]...)
	}
	return b
}

// message encodes a multipart message.
func message(frames ...string) []byte {
	var b []byte
	for i, f := range frames {
		var fl byte
		if i < len(frames)-1 {
			fl = flagMore
		}
		b = append(b, frame(fl, []byte(f))...)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// handshake is a valid DEALER greeting and READY.
func handshake(identity string) []byte {
	return cat(greeting(), command("READY", props("Socket-Type", "DEALER", "Identity", identity)))
}

func TestStream(t *testing.T) {
	badGreeting := func(i int, v byte) []byte { g := greeting(); g[i] = v; return g }
	for _, c := range []struct {
		name string
		in   []byte
		want error // nil: accepted
	}{
		{"handshake", handshake(""), nil},
		{"handshake and messages", cat(handshake("id"), message("a", "", string(make([]byte, 300))), message("b")), nil},
		{"version 3.1", cat(badGreeting(11, 1), command("READY", props("Socket-Type", "ROUTER"))), nil},
		{"commands after READY", cat(handshake(""), command("PING", []byte{0, 10}), command("PONG", nil)), nil},
		{"frame at limit", cat(handshake(""), frame(0, make([]byte, 1000))), nil},
		{"message at limit", cat(handshake(""), message(string(make([]byte, 1000)), string(make([]byte, 1000)))), nil},
		{"lower-case property name", cat(greeting(), command("READY", props("socket-type", "DEALER"))), nil},
		{"bad signature", badGreeting(0, 0xfe), errGreeting},
		{"bad signature footer", badGreeting(9, 0), errGreeting},
		{"ZMTP 2", badGreeting(10, 1), errGreeting},
		{"PLAIN", cat(greeting()[:12], []byte("PLAIN"), make([]byte, 47)), errMechanism},
		{"as-server", badGreeting(32, 1), errGreeting},
		{"message before READY", cat(greeting(), message("a")), errHandshake},
		{"PING before READY", cat(greeting(), command("PING", []byte{0, 0})), errHandshake},
		{"ERROR instead of READY", cat(greeting(), command("ERROR", []byte("\x03bad"))), errHandshake},
		{"second READY", cat(handshake(""), command("READY", props("Socket-Type", "DEALER"))), errHandshake},
		{"READY without Socket-Type", cat(greeting(), command("READY", props("Identity", "x"))), errCommand},
		{"READY property name length 0", cat(greeting(), command("READY", []byte{0, 0, 0, 0, 0})), errCommand},
		{"READY property name overruns", cat(greeting(), command("READY", []byte{200, 'a'})), errCommand},
		{"READY value length truncated", cat(greeting(), command("READY", []byte{1, 'a', 0, 0})), errCommand},
		{"READY value overruns", cat(greeting(), command("READY", cat(props("Socket-Type", "DEALER"), []byte{1, 'a', 0xff, 0xff, 0xff, 0xff}))), errCommand},
		{"READY Socket-Type in odd case", cat(greeting(), command("READY", props("SoCket-TYpe", "DEALER"))), errCommand},
		{"READY unknown Socket-Type", cat(greeting(), command("READY", props("Socket-Type", "STREAM"))), errCommand},
		{"READY empty Socket-Type", cat(greeting(), command("READY", props("Socket-Type", ""))), errCommand},
		{"empty command", cat(greeting(), frame(flagCommand, nil)), errCommand},
		{"command name length 0", cat(greeting(), frame(flagCommand, []byte{0})), errCommand},
		{"command name overruns", cat(greeting(), frame(flagCommand, []byte{9, 'R'})), errCommand},
		{"command with MORE", cat(handshake(""), frame(flagCommand|flagMore, []byte("\x04PING\x00\x00"))), errFlags},
		{"command inside a message", cat(handshake(""), frame(flagMore, []byte("a")), command("PING", []byte{0, 0})), errFlags},
		{"reserved flag", cat(handshake(""), []byte{0x08, 0}), errFlags},
		{"frame 2^50", cat(handshake(""), longHeader(0, 1<<50)), errFrameSize},
		{"frame 2^63", cat(handshake(""), longHeader(0, 1<<63)), errFrameSize},
		{"frame over limit", cat(handshake(""), frame(0, make([]byte, 1001))), errFrameSize},
		{"message over limit", cat(handshake(""), message(string(make([]byte, 1000)), string(make([]byte, 1000)), "x")), errMsgSize},
		{"frames at limit", cat(handshake(""), bytes.Repeat([]byte{flagMore, 0}, maxFrames-1), []byte{0, 0}), nil},
		{"too many frames", cat(handshake(""), bytes.Repeat([]byte{flagMore, 0}, maxFrames), []byte{0, 0}), errMsgSize},
		{"command over limit", cat(greeting(), longHeader(flagCommand, maxCommand+1)), errFrameSize},
	} {
		t.Run(c.name, func(t *testing.T) {
			whole := newStream(1000, 2000)
			err := whole.feed(c.in)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("feed: got %v, want %v", err, c.want)
			}
			bytewise := newStream(1000, 2000)
			var err2 error
			for i := range c.in {
				if err2 = bytewise.feed(c.in[i : i+1]); err2 != nil {
					break
				}
			}
			if (err == nil) != (err2 == nil) || whole.boundary() != bytewise.boundary() {
				t.Fatalf("byte by byte: got %v (boundary %v), whole: %v (boundary %v)",
					err2, bytewise.boundary(), err, whole.boundary())
			}
		})
	}
}

func TestStreamBoundary(t *testing.T) {
	s := newStream(0, 0)
	for _, c := range []struct {
		in   []byte
		want bool
	}{
		{greeting()[:10], false},
		{greeting()[10:], true},
		{command("READY", props("Socket-Type", "ROUTER")), true},
		{frame(flagMore, []byte("id")), false},
		{frame(flagMore, nil), false},
		{[]byte{0, 5}, false},
		{[]byte("abcd"), false},
		{[]byte("e"), true},
	} {
		if err := s.feed(c.in); err != nil {
			t.Fatal(err)
		}
		if got := s.boundary(); got != c.want {
			t.Fatalf("after %q: boundary %v, want %v", c.in, got, c.want)
		}
	}
	if s.sockType != "ROUTER" {
		t.Fatalf("Socket-Type %q, want ROUTER", s.sockType)
	}
}
