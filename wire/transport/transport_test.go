package transport

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/go-zeromq/zmq4"
)

// served is how fast a well-behaved DEALER must get its reply while a bad
// peer is connected; bound caps every wait so that a failing test stops.
const (
	served = 100 * time.Millisecond
	bound  = 5 * time.Second
)

// logBuffer collects a transport's log for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLog waits, at most bound, for s to appear in the log.
func (b *logBuffer) waitLog(tb testing.TB, s string) {
	tb.Helper()
	for end := time.Now().Add(bound); !strings.Contains(b.String(), s); {
		if time.Now().After(end) {
			tb.Fatalf("log lacks %q:\n%s", s, b)
		}
		time.Sleep(time.Millisecond)
	}
}

// echoRouter is a ROUTER listening through a transport with opts; its
// owner goroutine answers every message [id, f...] with [id, "re", f...].
type echoRouter struct {
	sock zmq4.Socket
	addr string // host:port
	log  *logBuffer
}

func startRouter(tb testing.TB, opts Options) *echoRouter {
	tb.Helper()
	r := &echoRouter{log: new(logBuffer)}
	opts.Logger = slog.New(slog.NewTextHandler(r.log, nil))
	scheme, err := Register(opts)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.sock = zmq4.NewRouter(ctx, zmq4.WithLogger(newDiscardLog()))
	if err := r.sock.Listen(scheme + "://127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	r.addr = r.sock.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := r.sock.Recv()
			if err != nil {
				return
			}
			reply := append([][]byte{m.Frames[0], []byte("re")}, m.Frames[1:]...)
			_ = r.sock.Send(zmq4.NewMsgFrom(reply...))
		}
	}()
	tb.Cleanup(func() {
		cancel()
		r.sock.Close()
		<-done
		if tb.Failed() {
			tb.Logf("transport log:\n%s", r.log)
		}
	})
	return r
}

// assertServed checks that a new zmq4 DEALER connects within bound and
// then gets a reply from the router within served.
func (r *echoRouter) assertServed(tb testing.TB) {
	tb.Helper()
	d := zmq4.NewDealer(context.Background())
	defer d.Close()
	dialed := make(chan error, 1)
	go func() { dialed <- d.Dial("tcp://" + r.addr) }()
	select {
	case err := <-dialed:
		if err != nil {
			tb.Fatalf("good DEALER: %v", err)
		}
	case <-time.After(bound):
		tb.Fatalf("good DEALER not connected within %v", bound)
	}
	start := time.Now()
	got := make(chan error, 1)
	go func() {
		if err := d.Send(zmq4.NewMsgFrom([]byte("hello"), []byte("world"))); err != nil {
			got <- err
			return
		}
		m, err := d.Recv()
		if err == nil && (len(m.Frames) != 3 || string(m.Frames[0]) != "re" || string(m.Frames[2]) != "world") {
			err = errors.New("bad reply")
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			tb.Fatalf("good DEALER: %v", err)
		}
		if d := time.Since(start); d > served {
			tb.Errorf("good DEALER got its reply in %v, want < %v", d, served)
		}
	case <-time.After(bound):
		tb.Fatalf("good DEALER got no reply within %v", bound)
	}
}

// dialRaw opens a raw TCP connection to the router and writes in.
func (r *echoRouter) dialRaw(tb testing.TB, in []byte) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if _, err := c.Write(in); err != nil {
		tb.Fatal(err)
	}
	return c
}

// assertDropped checks that the server closes c within bound.
func assertDropped(tb testing.TB, c net.Conn) {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(bound))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		tb.Fatalf("bad peer not dropped within %v", bound)
	}
}

func newDiscardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// TestBadPeer reproduces each peer-triggered zmq4 defect against a ROUTER:
// zmq4 alone panics (oversize frame, malformed READY, unknown socket type)
// or stops accepting (silent peer). Through the transport the bad peer is
// dropped and logged, and a good DEALER is served before and after.
func TestBadPeer(t *testing.T) {
	big := string(make([]byte, 60_000))
	for _, c := range []struct {
		name   string
		in     []byte
		reason string
	}{
		{"frame header 2^50", cat(handshake(""), longHeader(0, 1<<50)), "frame too large"},
		{"frame over MaxFrameSize", cat(handshake(""), frame(0, make([]byte, 70_000))), "frame too large"},
		{"message over MaxMessageSize", cat(handshake(""), message(big, big, big)), "message too large"},
		{"READY property name overruns", cat(greeting(), command("READY", []byte{2, 'a', 'b'})), "truncated READY property"},
		{"READY value length truncated", cat(greeting(), command("READY", []byte{1, 'a', 0})), "truncated READY property"},
		{"READY value overruns", cat(greeting(), command("READY", props("Socket-Type", "DEALER")[:20])), "overruns"},
		{"READY unknown Socket-Type", cat(greeting(), command("READY", props("Socket-Type", "STREAM"))), "unsupported Socket-Type"},
		{"incompatible Socket-Type", cat(greeting(), command("READY", props("Socket-Type", "PUB"))), "incompatible"},
		{"ZMTP 2 greeting", cat(greeting()[:10], []byte{1}, greeting()[11:]), "ZMTP version 1"},
		{"HTTP request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat(" ", 64)), "bad signature"},
		{"idle, never greets", nil, "handshake timeout"},
		{"greeting, no READY", greeting(), "handshake timeout"},
		{"partial greeting", greeting()[:20], "handshake timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := startRouter(t, Options{
				MaxFrameSize:     64 << 10,
				MaxMessageSize:   128 << 10,
				HandshakeTimeout: 300 * time.Millisecond,
			})
			bad := r.dialRaw(t, c.in)
			r.assertServed(t)
			assertDropped(t, bad)
			r.log.waitLog(t, c.reason)
			r.assertServed(t)
		})
	}
}

// TestPlainZMQ4Panics shows that TestBadPeer's inputs are real: each one
// kills a process whose ROUTER listens on zmq4's own "tcp://" transport.
func TestPlainZMQ4Panics(t *testing.T) {
	const env = "TRANSPORT_PLAIN_ZMQ4_INPUT"
	if in := os.Getenv(env); in != "" { // the child: expected to die
		raw, err := hex.DecodeString(in)
		if err != nil {
			t.Fatal(err)
		}
		r := zmq4.NewRouter(t.Context(), zmq4.WithLogger(newDiscardLog()))
		defer r.Close()
		if err := r.Listen("tcp://127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		bad, err := net.Dial("tcp", r.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer bad.Close()
		if _, err := bad.Write(raw); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // long enough to die
		return
	}
	for _, c := range []struct {
		name  string
		in    []byte
		panic string
	}{
		{"frame header 2^50", cat(handshake(""), longHeader(0, 1<<50)), "makeslice: len out of range"},
		{"READY property name overruns", cat(greeting(), command("READY", []byte{2, 'a', 'b'})), "slice bounds out of range"},
		{"READY value length truncated", cat(greeting(), command("READY", []byte{1, 'a', 0})), "slice bounds out of range"},
		{"READY unknown Socket-Type", cat(greeting(), command("READY", props("Socket-Type", "STREAM"))), "unknown socket-type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), bound+5*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPlainZMQ4Panics$")
			cmd.Env = append(os.Environ(), env+"="+hex.EncodeToString(c.in))
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), c.panic) {
				t.Fatalf("zmq4 alone survived (%v), want panic %q:\n%s", err, c.panic, out)
			}
		})
	}
}

// TestPlainZMQ4Stalls shows the stalls of zmq4's own "tcp://" transport
// that TestSilentPeersDoNotBlockAccept and TestNonReadingPeer rule out: a
// good DEALER is not served while the bad peer is connected, and is once
// the bad peer leaves.
func TestPlainZMQ4Stalls(t *testing.T) {
	const stalled = 300 * time.Millisecond
	for _, c := range []struct {
		name  string
		in    []byte
		flood bool
	}{
		{"silent peer blocks accept", nil, false},
		{"non-reading peer blocks sends", cat(handshake("slow"), message("hello")), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			r := &echoRouter{sock: zmq4.NewRouter(ctx, zmq4.WithLogger(newDiscardLog()))}
			defer r.sock.Close()
			if err := r.sock.Listen("tcp://127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			r.addr = r.sock.Addr().String()
			bad := r.dialRaw(t, c.in)
			if c.flood {
				if _, err := r.sock.Recv(); err != nil { // the hello
					t.Fatal(err)
				}
				progress := make(chan struct{}, 1)
				go func() { // blocks for good once the peer's buffers are full
					payload := make([]byte, 64<<10)
					for i := 0; i < 1024 && ctx.Err() == nil; i++ {
						_ = r.sock.Send(zmq4.NewMsgFrom([]byte("slow"), payload))
						select {
						case progress <- struct{}{}:
						default:
						}
					}
				}()
				for blocked := false; !blocked; { // wait until a send is stuck
					select {
					case <-progress:
					case <-time.After(stalled):
						blocked = true
					}
				}
			}
			go func() {
				for {
					m, err := r.sock.Recv()
					if err != nil {
						return
					}
					_ = r.sock.Send(zmq4.NewMsgFrom(m.Frames[0], []byte("re"), m.Frames[1]))
				}
			}()
			d := zmq4.NewDealer(ctx)
			defer d.Close()
			got := make(chan error, 1)
			go func() {
				if err := d.Dial("tcp://" + r.addr); err != nil {
					got <- err
					return
				}
				if err := d.Send(zmq4.NewMsgFrom([]byte("hello"))); err != nil {
					got <- err
					return
				}
				_, err := d.Recv()
				got <- err
			}()
			select {
			case err := <-got:
				t.Fatalf("zmq4 alone served the good DEALER (%v) while the bad peer was connected", err)
			case <-time.After(stalled):
			}
			bad.Close()
			select {
			case err := <-got:
				if err != nil {
					t.Fatalf("good DEALER after the bad peer left: %v", err)
				}
			case <-time.After(bound):
				t.Fatalf("good DEALER not served within %v after the bad peer left", bound)
			}
		})
	}
}

// TestSilentPeersDoNotBlockAccept holds many connections that never greet
// while good DEALERs connect (upstream #131).
func TestSilentPeersDoNotBlockAccept(t *testing.T) {
	r := startRouter(t, Options{HandshakeTimeout: bound})
	for range 50 {
		r.dialRaw(t, greeting()[:5])
	}
	for range 5 {
		r.assertServed(t)
	}
}

// TestCloseEndsHandshakes closes a socket while a peer is in handshake:
// the peer is disconnected at once, not after HandshakeTimeout.
func TestCloseEndsHandshakes(t *testing.T) {
	r := startRouter(t, Options{HandshakeTimeout: time.Minute})
	silent := r.dialRaw(t, greeting()[:5])
	if _, err := io.ReadFull(silent, make([]byte, greetingLen)); err != nil { // handshake begun
		t.Fatal(err)
	}
	r.sock.Close()
	assertDropped(t, silent)
}

// TestNonReadingPeer floods a peer that never reads with 64 KiB messages
// while a good DEALER keeps being served and no Send blocks.
func TestNonReadingPeer(t *testing.T) {
	payload := make([]byte, 64<<10)
	flood := func(t *testing.T, r *echoRouter) (dropped int64) {
		for i := range 512 { // up to 32 MiB
			err := r.sock.Send(zmq4.NewMsgFrom([]byte("slow"), payload))
			switch {
			case errors.Is(err, ErrQueueFull):
				dropped++
			case errors.Is(err, ErrDropped): // the write timeout struck
				return dropped
			case err != nil:
				t.Fatalf("send %d: %v", i, err)
			}
			if i%64 == 0 {
				r.assertServed(t)
			}
		}
		return dropped
	}

	// A peer that does not take a write within WriteTimeout is disconnected.
	t.Run("write timeout", func(t *testing.T) {
		var ct Counters
		r := startRouter(t, Options{WriteTimeout: 300 * time.Millisecond, MaxSendQueue: 1 << 30, Counters: &ct})
		slow := r.dialRaw(t, cat(handshake("slow"), message("hello")))
		r.assertServed(t) // the slow peer's hello is in before this reply
		if n := flood(t, r); n != 0 {
			t.Errorf("%d messages dropped under a 1 GiB queue bound", n)
		}
		r.log.waitLog(t, "peer does not drain")
		r.assertServed(t)
		assertDropped(t, slow)
		if n := ct.SlowPeers.Load(); n != 1 {
			t.Errorf("SlowPeers = %d, want 1", n)
		}
	})

	// At MaxSendQueue bytes, messages to the peer are dropped and counted,
	// as libzmq does at a high-water mark; the peer stays connected and is
	// sent to again once it has drained.
	t.Run("send queue limit", func(t *testing.T) {
		var ct Counters
		r := startRouter(t, Options{WriteTimeout: time.Minute, MaxSendQueue: 4 << 20, Counters: &ct})
		slow := r.dialRaw(t, cat(handshake("slow"), message("hello")))
		r.assertServed(t)
		dropped := flood(t, r)
		if dropped == 0 || dropped != ct.Dropped.Load() {
			t.Fatalf("dropped %d messages, Counters.Dropped = %d", dropped, ct.Dropped.Load())
		}
		r.log.waitLog(t, "send queue full")
		r.assertServed(t)

		const marker = "sent-after-draining"
		seen := make(chan error, 1)
		go func() { seen <- readUntil(slow, []byte(marker)) }()
		for end := time.Now().Add(bound); ; time.Sleep(5 * time.Millisecond) {
			err := r.sock.Send(zmq4.NewMsgFrom([]byte("slow"), []byte(marker)))
			if err == nil {
				break
			}
			if !errors.Is(err, ErrQueueFull) || time.Now().After(end) {
				t.Fatalf("send after draining: %v", err)
			}
		}
		select {
		case err := <-seen:
			if err != nil {
				t.Fatalf("slow peer, reading again: %v", err)
			}
		case <-time.After(bound):
			t.Fatalf("slow peer did not get the message sent after it drained")
		}
		r.log.waitLog(t, "send queue drained")
		if n := ct.SlowPeers.Load(); n != 0 {
			t.Errorf("SlowPeers = %d, want 0", n)
		}
	})
}

// readUntil reads from c until want has arrived.
func readUntil(c net.Conn, want []byte) error {
	_ = c.SetReadDeadline(time.Now().Add(bound))
	var tail []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		tail = append(tail, buf[:n]...)
		if bytes.Contains(tail, want) {
			return nil
		}
		if err != nil {
			return err
		}
		tail = tail[max(0, len(tail)-len(want)):]
	}
}

// TestDialBadServer dials through the transport to raw servers: zmq4's
// Dial must fail within bound instead of hanging on a silent server, and a
// server breaking the protocol later is dropped, its error reaching Recv.
func TestDialBadServer(t *testing.T) {
	ready := cat(greeting(), command("READY", props("Socket-Type", "ROUTER")))
	for _, c := range []struct {
		name   string
		serve  []byte
		reason string
	}{
		{"silent", nil, "handshake timeout"},
		{"bad greeting", cat(greeting()[:10], []byte{2}, greeting()[11:]), "ZMTP version 2"},
		{"incompatible", cat(greeting(), command("READY", props("Socket-Type", "PUB"))), "incompatible"},
		{"frame header 2^50", cat(ready, longHeader(0, 1<<50)), "frame too large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs := new(logBuffer)
			scheme, err := Register(Options{
				HandshakeTimeout: 300 * time.Millisecond,
				Logger:           slog.New(slog.NewTextHandler(logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c2, err := ln.Accept()
				if err != nil {
					return
				}
				defer c2.Close()
				_, _ = c2.Write(c.serve)
				_, _ = io.Copy(io.Discard, c2) // until the dialer hangs up
			}()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			d := zmq4.NewDealer(ctx, zmq4.WithDialerMaxRetries(0))
			defer d.Close()
			done := make(chan error, 1)
			go func() {
				if err := d.Dial(scheme + "://" + ln.Addr().String()); err != nil {
					done <- err
					return
				}
				_, err := d.Recv()
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrDropped) {
					t.Fatalf("got %v, want ErrDropped", err)
				}
			case <-time.After(bound):
				t.Fatalf("dialer still waiting after %v", bound)
			}
			logs.waitLog(t, c.reason)
		})
	}
}

// TestPingReachesRecv pins a zmq4 defect the transport leaves (doc.go): a
// peer's ZMTP PING comes out of a ROUTER's Recv as a command message.
func TestPingReachesRecv(t *testing.T) {
	scheme, err := Register(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := zmq4.NewRouter(ctx)
	defer r.Close()
	if err := r.Listen(scheme + "://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ping := command("PING", []byte{0, 0})
	peer, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.Write(cat(handshake("p"), ping, message("after"))); err != nil {
		t.Fatal(err)
	}
	m, err := r.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != zmq4.CmdMsg || len(m.Frames) != 2 || !bytes.Equal(m.Frames[1], ping[2:]) {
		t.Fatalf("got type %v frames %q, want the raw PING as a command message", m.Type, m.Frames)
	}
	if m, err = r.Recv(); err != nil || m.Type != zmq4.UsrMsg || string(m.Frames[1]) != "after" {
		t.Fatalf("next message: %v %q", err, m.Frames)
	}
}

// TestFailedHandshakeIsReleased fails a handshake on a listener that stays
// open: nothing may keep the connection alive until the listener closes,
// or every bad or scanning peer would cost a read buffer for as long as
// the hub runs.
func TestFailedHandshakeIsReleased(t *testing.T) {
	opts, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := listen(nl, &opts)
	defer l.Close()

	nc := &inputConn{r: strings.NewReader(strings.Repeat("x", greetingLen))} // bad greeting
	released := weak.Make(nc)
	l.slots <- struct{}{} // as accept does
	l.handshake(nc)
	nc = nil
	for end := time.Now().Add(bound); released.Value() != nil; {
		if time.Now().After(end) {
			t.Fatal("the connection of a failed handshake is still referenced")
		}
		runtime.GC()
		time.Sleep(time.Millisecond) // the conn's writer goroutine may still be ending
	}
}
