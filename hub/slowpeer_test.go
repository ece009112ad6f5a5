package hub

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/wire/transport"
)

// rawPeer is a ZMTP 3.0 peer on a bare TCP connection that reads only
// when told to: a client that stops reading. (A tiny SO_RCVBUF would fill
// sooner, but on loopback it stalls TCP itself once reading resumes.)
type rawPeer struct {
	tb testing.TB
	c  net.Conn
}

// dialRawPeer connects a raw peer of sockType (DEALER, SUB) to port.
func dialRawPeer(tb testing.TB, port int, sockType string) *rawPeer {
	tb.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	var greeting [64]byte
	greeting[0], greeting[9], greeting[10] = 0xff, 0x7f, 3
	copy(greeting[12:], "NULL")
	ready := []byte("\x05READY\x0bSocket-Type")
	ready = binary.BigEndian.AppendUint32(ready, uint32(len(sockType)))
	ready = append(ready, sockType...)
	p := &rawPeer{tb: tb, c: c}
	p.write(greeting[:], []byte{0x04, byte(len(ready))}, ready)
	return p
}

// send writes one message.
func (p *rawPeer) send(frames [][]byte) {
	p.tb.Helper()
	var b []byte
	for i, f := range frames {
		flags := byte(0)
		if i < len(frames)-1 {
			flags = 0x01 // more
		}
		if len(f) > 255 {
			b = binary.BigEndian.AppendUint64(append(b, flags|0x02), uint64(len(f)))
		} else {
			b = append(b, flags, byte(len(f)))
		}
		b = append(b, f...)
	}
	p.write(b)
}

func (p *rawPeer) write(parts ...[]byte) {
	p.tb.Helper()
	_ = p.c.SetWriteDeadline(time.Now().Add(waitFor))
	if _, err := p.c.Write(bytes.Join(parts, nil)); err != nil {
		p.tb.Fatal(err)
	}
}

// resume starts reading: the returned channel gets, once each, the
// space-delimited words of the stream that isMarker accepts (at most 255),
// then an error string when the connection ends; it never blocks.
func (p *rawPeer) resume(isMarker func(string) bool) <-chan string {
	seen := make(chan string, 256)
	go func() {
		defer close(seen)
		buf := make([]byte, 64<<10)
		var tail []byte
		reported := map[string]bool{}
		for {
			n, err := p.c.Read(buf)
			tail = append(tail, buf[:n]...)
			for _, m := range strings.Fields(string(bytes.ToValidUTF8(tail, []byte(" ")))) {
				if isMarker(m) && !reported[m] && len(reported) < cap(seen)-1 {
					reported[m] = true
					seen <- m
				}
			}
			if err != nil {
				seen <- "read: " + err.Error()
				return
			}
			tail = tail[max(0, len(tail)-64):] // markers are shorter
		}
	}()
	return seen
}

// goroutines counts the live goroutines, less those zmq4 v0.17.0 leaks:
// a PUB socket's writer goroutine outlives Close (nothing stops it).
func goroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	all := bytes.Split(buf, []byte("\n\n"))
	n := len(all)
	for _, g := range all {
		if bytes.Contains(g, []byte("zmq4.(*pubMWriter).run")) {
			n--
		}
	}
	return n
}

// served bounds a well-behaved client's round trip while a peer is stuck:
// a stalled hub would take Transport.WriteTimeout (30 s here). A third of
// that leaves room for -race on a loaded 2-core machine.
const served = 10 * time.Second

// TestSlowPeer: a client that stops reading (its TCP window closed) costs
// the hub nothing but the bytes queued to it. Messages beyond
// Transport.MaxSendQueue are dropped and counted, everybody else is
// served within `served`, the stuck peer is not disconnected (it gets
// messages again once it reads), and every goroutine ends.
func TestSlowPeer(t *testing.T) {
	base := goroutines()
	t.Cleanup(func() { // registered first, so it runs after the hub stopped
		for end := time.Now().Add(waitFor); goroutines() > base; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(end) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines left, %d before:\n%s", goroutines(), base, buf[:runtime.Stack(buf, true)])
				return
			}
		}
	})
	cfg := testConfig(t)
	cfg.HWM = -1
	cfg.Transport = transport.Options{MaxSendQueue: 1 << 20, WriteTimeout: 30 * time.Second}
	h := startHub(t, cfg, nil)
	c := newClient(t, h)
	e := startEngine(t, h, c, true)
	pad := strings.Repeat("x", 64<<10)

	// roundTrip checks that c is served: a task and a query.
	roundTrip := func() {
		t.Helper()
		start := time.Now()
		c.task.recvReply(c.apply("ok", nil))
		c.ok(t, "queue_request", map[string]any{"targets": nil, "verbose": false})
		if d := time.Since(start); d > served {
			t.Errorf("a task and a query took %v while a peer is stuck, want < %v", d, served)
		}
	}
	// flood calls send until the hub drops messages, checking that c is
	// served meanwhile.
	flood := func(send func()) {
		t.Helper()
		before := h.Stats().Dropped
		for n := 0; h.Stats().Dropped == before; n++ {
			if n == 1000 { // 64 MiB
				t.Fatalf("nothing dropped after %d messages: %+v", n, h.Stats())
			}
			send()
			if n%16 == 0 {
				roundTrip()
			}
		}
		roundTrip()
	}
	// recoverPeer makes the stuck peer read again, and sends (mark) until
	// it gets a marked message: it was never disconnected.
	recoverPeer := func(p *rawPeer, mark func(marker string)) {
		t.Helper()
		seen := p.resume(func(s string) bool { return strings.HasPrefix(s, "marker-") })
		end := time.After(waitFor)
		for i := 0; ; i++ {
			want := fmt.Sprintf("marker-%d", i)
			mark(want)
			retry := time.After(100 * time.Millisecond) // dropped: still full
		wait:
			for {
				select {
				case got := <-seen:
					if !strings.HasPrefix(got, "marker-") {
						t.Fatalf("stuck peer, reading again: %q (disconnected?)", got)
					}
					if got == want {
						return
					}
				case <-retry:
					break wait
				case <-end:
					t.Fatalf("stuck peer got no message within %v of reading again", waitFor)
				}
			}
		}
	}
	check := func() {
		t.Helper()
		if s := h.Stats(); s.Dropped == 0 || s.SlowPeers != 0 || s.SendErrors != 0 {
			t.Errorf("stats %+v: want Dropped > 0, no slow peer disconnected, no send error", s)
		}
	}

	// A client stops reading its task results.
	stuck := dialRawPeer(t, h.ClientInfo().Task, "DEALER")
	apply := func(buf string) {
		m := c.sess.NewMessage("apply_request", map[string]any{"op": "ok"}, nil)
		m.Buffers = [][]byte{[]byte(buf)} // echoed in the result
		frames, err := c.sess.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		stuck.send(frames)
	}
	flood(func() { apply(pad) })
	check()
	recoverPeer(stuck, func(marker string) { apply(" " + marker + " ") })

	// An IOPub subscriber stops reading.
	stuck = dialRawPeer(t, h.ClientInfo().IOPub, "SUB")
	stuck.send([][]byte{{1}}) // subscribe to everything
	publish := func(text string) {
		m := e.sess.NewMessage("status", map[string]any{"execution_state": "busy", "pad": text}, nil)
		m.Identities = [][]byte{[]byte("engine." + e.uuid + ".status")}
		e.pub.sendMsg(m)
	}
	// The subscriber that reads gets every message: publishing at its
	// pace, only the stuck one falls behind.
	flood(func() {
		publish(pad)
		if m := c.iopub.recv(); m.Content["pad"] != pad {
			t.Fatalf("iopub: %s %v", m.Header.MsgType, m.Content)
		}
	})
	check()
	recoverPeer(stuck, func(marker string) { publish(" " + marker + " ") })
}

// TestSendWithoutPeer: a send on a ROUTER that never had a peer returns at
// once. zmq4 would wait for a first peer, up to 5 minutes, stalling the
// socket's owner and, once its queue filled, the hub.
func TestSendWithoutPeer(t *testing.T) {
	h, err := New(testConfig(t), dictdb.New(dictdb.Options{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	for _, id := range []sockID{sockEngineMux, sockQuery} { // request and reply sockets
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			h.sendNow(h.socks[id], [][]byte{[]byte("nobody"), []byte("hello")})
		}()
		select {
		case <-sent:
		case <-time.After(waitFor):
			t.Fatalf("%s: send to a socket without peers blocked for %v", id, waitFor)
		}
	}
	if s := h.Stats(); s.SendErrors != 0 {
		t.Errorf("stats %+v", s)
	}
}
