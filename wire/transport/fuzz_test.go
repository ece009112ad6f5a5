package transport

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"
)

// FuzzStream feeds a peer's byte stream to the parser, whole and split at
// a point, and then to a real zmq4 connection through conn. Accept and
// reject must not depend on how the bytes arrive, and whatever the parser
// lets through must never panic zmq4.
func FuzzStream(f *testing.F) {
	f.Add(uint16(0), handshake("id"))
	f.Add(uint16(70), cat(handshake(""), message("a", "", "bc"), command("PING", []byte{0, 1})))
	f.Add(uint16(64), cat(greeting(), command("READY", props("Socket-Type", "ROUTER", "Identity", ""))))
	f.Add(uint16(3), cat(handshake(""), frame(0, make([]byte, 300))))
	f.Add(uint16(80), cat(handshake(""), longHeader(0, 1<<50)))
	f.Add(uint16(65), cat(greeting(), command("READY", []byte{11, 'S', 'o', 'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e', 0, 0})))
	f.Add(uint16(66), cat(greeting(), command("READY", []byte{200, 'a'})))
	f.Add(uint16(10), cat(greeting()[:11], []byte{1}, greeting()[12:]))
	f.Fuzz(func(t *testing.T, split uint16, in []byte) {
		const maxFrame, maxMsg = 1 << 12, 1 << 14
		whole := newStream(maxFrame, maxMsg)
		err := whole.feed(in)

		at := min(int(split), len(in))
		parts := newStream(maxFrame, maxMsg)
		err2 := parts.feed(in[:at])
		if err2 == nil {
			err2 = parts.feed(in[at:])
		}
		if (err == nil) != (err2 == nil) || whole.boundary() != parts.boundary() ||
			whole.ready != parts.ready || whole.sockType != parts.sockType {
			t.Fatalf("split at %d: %v, whole: %v", at, err2, err)
		}

		c := newConn(&inputConn{r: bytes.NewReader(in)}, &Options{
			MaxFrameSize: maxFrame, MaxMessageSize: maxMsg, HandshakeTimeout: time.Minute,
			WriteTimeout: time.Minute, MaxSendQueue: 1 << 20, Logger: discardLogger,
		}, false)
		defer c.Close()
		zc, err3 := zmq4.Open(c, null.Security(), zmq4.Dealer, zmq4.SocketIdentity("fuzz"), false, nil)
		if err == nil && whole.ready && (whole.sockType == "ROUTER" || whole.sockType == "DEALER") && err3 != nil {
			t.Fatalf("zmq4 rejects a handshake the parser accepts: %v", err3)
		}
		if err3 != nil {
			return
		}
		for range 1 << 10 {
			if _, err := zc.RecvMsg(); err != nil {
				return
			}
		}
	})
}

// inputConn is a net.Conn that reads from r and discards writes.
type inputConn struct{ r io.Reader }

func (c *inputConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *inputConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *inputConn) Close() error                     { return nil }
func (c *inputConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *inputConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *inputConn) SetDeadline(time.Time) error      { return nil }
func (c *inputConn) SetReadDeadline(time.Time) error  { return nil }
func (c *inputConn) SetWriteDeadline(time.Time) error { return nil }
