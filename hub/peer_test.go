package hub

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/taskhub/taskhub/wire"
	"github.com/taskhub/taskhub/wire/transport"
)

// waitFor bounds every wait in these tests: a hub that works answers in
// milliseconds, so hitting it means a bug, not a slow machine.
const waitFor = 10 * time.Second

// peer is one test socket speaking the protocol to the hub. A pump
// goroutine receives and decodes; the test goroutine sends.
type peer struct {
	tb   testing.TB
	sess *wire.Session
	zs   zmq4.Socket
	in   chan *wire.Message
	raw  chan [][]byte // undecodable frames (heartbeat pings)
}

func newSession(tb testing.TB, h *Hub) *wire.Session {
	tb.Helper()
	s, err := wire.NewSession(wire.Config{Key: []byte(h.key), Packer: h.cfg.Packer, SignatureScheme: h.cfg.SignatureScheme})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// dialPeer connects a socket of type typ (with identity id, if not empty)
// to the hub ports.
func dialPeer(tb testing.TB, sess *wire.Session, typ zmq4.SocketType, id string, ports ...int) *peer {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var opts []zmq4.Option
	if id != "" {
		opts = append(opts, zmq4.WithID(zmq4.SocketIdentity(id)))
	}
	var zs zmq4.Socket
	switch typ {
	case zmq4.Dealer:
		zs = zmq4.NewDealer(ctx, opts...)
	case zmq4.Router:
		zs = zmq4.NewRouter(ctx, opts...)
	case zmq4.Sub:
		zs = zmq4.NewSub(ctx, opts...)
	case zmq4.Pub:
		zs = zmq4.NewPub(ctx, opts...)
	}
	scheme, err := transport.Register(transport.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	for _, port := range ports {
		if err := zs.Dial(fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)); err != nil {
			tb.Fatal(err)
		}
	}
	if typ == zmq4.Sub {
		if err := zs.SetOption(zmq4.OptionSubscribe, ""); err != nil {
			tb.Fatal(err)
		}
	}
	p := &peer{tb: tb, sess: sess, zs: zs, in: make(chan *wire.Message, 1024), raw: make(chan [][]byte, 1024)}
	var wg sync.WaitGroup
	if typ != zmq4.Pub {
		wg.Go(func() {
			for {
				m, err := zs.Recv()
				if err != nil {
					return
				}
				if m.Type == zmq4.CmdMsg {
					continue
				}
				d, err := sess.Decode(m.Frames)
				if err != nil {
					select {
					case p.raw <- m.Frames:
					default:
					}
					continue
				}
				p.in <- d
			}
		})
	}
	tb.Cleanup(func() {
		zs.Close()
		cancel()
		wg.Wait()
	})
	return p
}

// send sends a new message and returns it.
func (p *peer) send(msgType string, content, md map[string]any, idents ...[]byte) *wire.Message {
	p.tb.Helper()
	m := p.sess.NewMessage(msgType, content, nil)
	if md != nil {
		m.Metadata = md
	}
	m.Identities = idents
	p.sendMsg(m)
	return m
}

func (p *peer) sendMsg(m *wire.Message) {
	p.tb.Helper()
	frames, err := p.sess.Encode(m)
	if err != nil {
		p.tb.Fatal(err)
	}
	p.sendFrames(frames)
}

func (p *peer) sendFrames(frames [][]byte) {
	p.tb.Helper()
	if err := p.zs.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		p.tb.Fatal(err)
	}
}

// recv returns the next message, failing the test after waitFor.
func (p *peer) recv() *wire.Message {
	p.tb.Helper()
	select {
	case m := <-p.in:
		return m
	case <-time.After(waitFor):
		p.tb.Fatalf("no message within %v", waitFor)
		return nil
	}
}

// recvReply returns the next message answering parent, skipping others.
func (p *peer) recvReply(parent *wire.Message) *wire.Message {
	p.tb.Helper()
	for {
		m := p.recv()
		if m.Parent.MsgID == parent.Header.MsgID {
			return m
		}
	}
}

// request sends a query and returns the reply.
func (p *peer) request(msgType string, content map[string]any) *wire.Message {
	p.tb.Helper()
	return p.recvReply(p.send(msgType, content, nil))
}

// quiet fails if a message arrives within d.
func (p *peer) quiet(d time.Duration) {
	p.tb.Helper()
	select {
	case m := <-p.in:
		p.tb.Fatalf("unexpected %s %v", m.Header.MsgType, m.Content)
	case <-time.After(d):
	}
}

// client is a Go client of the hub: one socket per channel.
type client struct {
	sess                             *wire.Session
	query, task, mux, control, bcast *peer
	iopub, notif                     *peer
}

func newClient(tb testing.TB, h *Hub) *client {
	tb.Helper()
	ci := h.ClientInfo()
	s := newSession(tb, h)
	c := &client{
		sess:    s,
		query:   dialPeer(tb, s, zmq4.Dealer, "", ci.Registration),
		task:    dialPeer(tb, s, zmq4.Dealer, "", ci.Task),
		mux:     dialPeer(tb, s, zmq4.Dealer, "", ci.Mux),
		control: dialPeer(tb, s, zmq4.Dealer, "", ci.Control),
		bcast:   dialPeer(tb, s, zmq4.Dealer, "", ci.Broadcast),
		iopub:   dialPeer(tb, s, zmq4.Sub, "", ci.IOPub),
		notif:   dialPeer(tb, s, zmq4.Sub, "", ci.Notification),
	}
	return c
}

// ok sends a query and fails unless the reply's status is ok.
func (c *client) ok(tb testing.TB, msgType string, content map[string]any) *wire.Message {
	tb.Helper()
	r := c.query.request(msgType, content)
	if r.Content["status"] != "ok" {
		tb.Fatalf("%s: %v", msgType, r.Content)
	}
	return r
}

// apply submits a load-balanced apply_request whose content tells the fake
// engine what to do.
func (c *client) apply(op string, md map[string]any, bufs ...[]byte) *wire.Message {
	m := c.sess.NewMessage("apply_request", map[string]any{"op": op}, nil)
	if md != nil {
		m.Metadata = md
	}
	m.Buffers = bufs
	c.task.sendMsg(m)
	return m
}

// fakeEngine speaks the engine side: registration, heart, a shell ROUTER
// on the mux, task and control ports, and IOPub. Requests carry an "op" in
// their content: "ok" (reply ok), "fail" (reply error), "unmet" (reply
// with dependencies_met false), "print" (status, stdout, execute_input and
// display_data on IOPub, then ok), "hold" (never reply), or "slow" (reply after
// 100 ms).
type fakeEngine struct {
	tb    testing.TB
	uuid  string
	id    int
	sess  *wire.Session
	reg   *peer
	shell *peer
	pub   *peer
	stop  chan struct{}
	wg    sync.WaitGroup

	mu   sync.Mutex
	seen []string // msg_ids received on the shell
}

// startEngine registers a fake engine and waits until the hub has
// announced it.
func startEngine(tb testing.TB, h *Hub, c *client, heartbeat bool) *fakeEngine {
	tb.Helper()
	ei := h.EngineInfo()
	s := newSession(tb, h)
	e := &fakeEngine{tb: tb, uuid: s.ID(), sess: s, stop: make(chan struct{})}
	e.reg = dialPeer(tb, s, zmq4.Dealer, e.uuid, ei.Registration)
	e.shell = dialPeer(tb, s, zmq4.Router, e.uuid, ei.Mux, ei.Task, ei.Control)
	e.pub = dialPeer(tb, s, zmq4.Pub, e.uuid, ei.IOPub)
	r := e.reg.request("registration_request", map[string]any{"uuid": e.uuid})
	if r.Content["status"] != "ok" {
		tb.Fatalf("registration: %v", r.Content)
	}
	e.id = int(r.Content["id"].(int64))
	if heartbeat {
		ping := dialPeer(tb, s, zmq4.Sub, "", ei.HBPing)
		pong := dialPeer(tb, s, zmq4.Dealer, e.uuid, ei.HBPong)
		e.wg.Go(func() {
			for {
				select {
				case f := <-ping.raw:
					pong.sendFrames(f)
				case <-e.stop:
					return
				}
			}
		})
	}
	e.wg.Go(e.serve)
	tb.Cleanup(e.kill)
	if heartbeat && c != nil {
		c.waitNotification(tb, "registration_notification", e.uuid)
	}
	return e
}

// kill stops the engine's heart and shell loop (the sockets stay open).
func (e *fakeEngine) kill() {
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	e.wg.Wait()
}

func (c *client) waitNotification(tb testing.TB, msgType, uuid string) *wire.Message {
	tb.Helper()
	for {
		m := c.notif.recv()
		if m.Header.MsgType == msgType && m.Content["uuid"] == uuid {
			return m
		}
	}
}

func (e *fakeEngine) serve() {
	var held []*wire.Message
	for {
		var m *wire.Message
		select {
		case m = <-e.shell.in:
		case <-e.stop:
			return
		}
		e.mu.Lock()
		e.seen = append(e.seen, m.Header.MsgID)
		e.mu.Unlock()
		op, _ := m.Content["op"].(string)
		status, md := "ok", map[string]any{"engine": e.uuid, "started": time.Now().UTC(), "dependencies_met": true}
		switch op {
		case "hold":
			held = append(held, m)
			continue
		case "fail":
			status = "error"
		case "unmet":
			md["dependencies_met"] = false
			status = "error"
		case "print":
			busy := e.sess.NewMessage("status", map[string]any{"execution_state": "busy"}, &m.Header)
			busy.Identities = [][]byte{[]byte("engine." + e.uuid + ".status")}
			e.pub.sendMsg(busy)
			out := e.sess.NewMessage("stream", map[string]any{"name": "stdout", "text": "hello\n"}, &m.Header)
			out.Identities = [][]byte{[]byte("engine." + e.uuid + ".stream")}
			e.pub.sendMsg(out)
			in := e.sess.NewMessage("execute_input", map[string]any{"code": "print('hello')"}, &m.Header)
			in.Identities = [][]byte{[]byte("engine." + e.uuid + ".execute_input")}
			e.pub.sendMsg(in)
			dd := e.sess.NewMessage("display_data", map[string]any{"data": map[string]any{"text/plain": "shown"}, "metadata": map[string]any{}}, &m.Header)
			dd.Identities = [][]byte{[]byte("engine." + e.uuid + ".display_data")}
			e.pub.sendMsg(dd)
		case "slow":
			time.Sleep(100 * time.Millisecond)
		}
		md["status"] = status
		content := map[string]any{"status": status}
		if status == "error" {
			content = (&wire.Error{Name: "ValueError", Value: "asked to fail"}).Content()
		}
		r := e.sess.NewMessage(replyType(m.Header.MsgType), content, &m.Header)
		r.Metadata = md
		r.Identities = m.Identities
		r.Buffers = m.Buffers
		e.shell.sendMsg(r)
	}
}

// got returns the msg_ids the engine received, in order.
func (e *fakeEngine) got() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.seen)
}
