package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// recordConn is a net.Conn whose writes go to a channel, one per call;
// reads block until Close.
type recordConn struct {
	inputConn
	writes chan []byte
	closed chan struct{}
	once   sync.Once
}

func newRecordConn() *recordConn {
	return &recordConn{writes: make(chan []byte, 16), closed: make(chan struct{})}
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.writes <- bytes.Clone(p)
	return len(p), nil
}

func (c *recordConn) Read([]byte) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}

func (c *recordConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *recordConn) next(tb testing.TB) []byte {
	tb.Helper()
	select {
	case p := <-c.writes:
		return p
	case <-time.After(bound):
		tb.Fatalf("no write within %v", bound)
		return nil
	}
}

// writeFrames writes frames the way zmq4 does: each frame's header, then
// its body, in separate calls.
func writeFrames(tb testing.TB, c *conn, frames []byte) {
	tb.Helper()
	for len(frames) > 0 {
		hdr, size := 2, int(frames[1])
		if frames[0]&flagLong != 0 {
			hdr, size = 9, int(binary.BigEndian.Uint64(frames[1:9]))
		}
		for _, p := range [][]byte{frames[:hdr], frames[hdr : hdr+size]} {
			if _, err := c.Write(p); err != nil {
				tb.Fatal(err)
			}
		}
		frames = frames[hdr+size:]
	}
}

// TestWriteCoalescing checks that a message goes out in one write once
// its last frame is queued, and that Close flushes what is queued.
func TestWriteCoalescing(t *testing.T) {
	nc := newRecordConn()
	c := newConn(nc, &Options{WriteTimeout: bound, MaxSendQueue: 1 << 20, Logger: discardLogger}, false)
	hs := command("READY", props("Socket-Type", "ROUTER"))
	if _, err := c.Write(greeting()); err != nil {
		t.Fatal(err)
	}
	if got := nc.next(t); !bytes.Equal(got, greeting()) {
		t.Fatalf("greeting written as %q", got)
	}
	writeFrames(t, c, hs)
	if got := nc.next(t); !bytes.Equal(got, hs) {
		t.Fatalf("READY written as %q, want %q", got, hs)
	}
	for i, m := range [][]byte{
		message("<IDS|MSG>", "sig", "{}", "{}", "{}", "{}"),
		message("", string(make([]byte, 1000)), ""),
		message("single"),
	} {
		writeFrames(t, c, m)
		if got := nc.next(t); !bytes.Equal(got, m) {
			t.Fatalf("message %d written as %d bytes %.40q, want one write of %d bytes", i, len(got), got, len(m))
		}
	}

	last := message("queued", "before", "close")
	writeFrames(t, c, last)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := nc.next(t); !bytes.Equal(got, last) {
		t.Fatalf("after Close: written %q, want %q", got, last)
	}
	select {
	case <-nc.closed:
	case <-time.After(bound):
		t.Fatal("connection not closed after the flush")
	}
	if _, err := c.Write(message("late")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// TestDropError checks the error zmq4 gets for a dropped connection: a
// permanent net.Error that wraps ErrDropped and the cause.
func TestDropError(t *testing.T) {
	err := error(&dropError{fmt.Errorf("%w: 2^50 bytes", errFrameSize)})
	var ne net.Error
	if !errors.As(err, &ne) || ne.Timeout() {
		t.Fatalf("%v: want a net.Error that is not a timeout", err)
	}
	if !errors.Is(err, ErrDropped) || !errors.Is(err, errFrameSize) {
		t.Fatalf("%v: want ErrDropped and the cause", err)
	}
}

func TestRegister(t *testing.T) {
	a, err := Register(Options{MaxFrameSize: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	schemes := make(chan string, 8)
	var wg sync.WaitGroup
	for i := range cap(schemes) {
		wg.Go(func() {
			s, err := Register(Options{MaxFrameSize: 1 << 10, MaxMessageSize: int64(1<<20 + i%2)})
			if err != nil {
				t.Error(err)
			}
			schemes <- s
		})
	}
	wg.Wait()
	close(schemes)
	seen := map[string]bool{}
	for s := range schemes {
		seen[s] = true
	}
	if len(seen) != 2 || seen[a] {
		t.Fatalf("schemes %v for two new option sets, %q for the first", seen, a)
	}
	if b, err := Register(Options{MaxFrameSize: 1 << 10}); err != nil || b != a {
		t.Fatalf("same options again: %q, %v; want %q", b, err, a)
	}
	if _, err := Register(Options{WriteTimeout: -1}); err == nil {
		t.Fatal("negative WriteTimeout accepted")
	}
}
