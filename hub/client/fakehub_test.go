package client

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/go-zeromq/zmq4"

	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/wire"
)

// reply is what a fake hub answers to one request; a nil *reply means no
// answer.
type reply struct {
	msgType string
	content map[string]any
	buffers [][]byte
}

// fakeHub is a ROUTER speaking the query protocol on 127.0.0.1, answering
// each request with handle's reply. Its goroutine is the socket's only
// user; it stops when the test ends.
type fakeHub struct {
	cf   connfile.Client
	sess *wire.Session
	sock zmq4.Socket
	reqs chan *wire.Message // every decoded request, for assertions
}

func startFakeHub(tb testing.TB, packer string, handle func(m *wire.Message) *reply) *fakeHub {
	tb.Helper()
	return startRawFakeHub(tb, packer, func(h *fakeHub, m *wire.Message) {
		if r := handle(m); r != nil {
			h.send(tb, m, r)
		}
	})
}

// startRawFakeHub gives serve the whole request, so it can answer out of
// order, several times, or with forged frames.
func startRawFakeHub(tb testing.TB, packer string, serve func(h *fakeHub, m *wire.Message)) *fakeHub {
	tb.Helper()
	pack, unpack, err := connfile.PackNames(packer)
	if err != nil {
		tb.Fatal(err)
	}
	cf := connfile.Client{Interface: "tcp://127.0.0.1", Key: "test-key", SignatureScheme: "hmac-sha256", Pack: pack, Unpack: unpack}
	sess, err := wire.NewSession(wire.Config{Key: []byte(cf.Key), SignatureScheme: cf.SignatureScheme, Packer: packer})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sock := zmq4.NewRouter(ctx)
	if err := sock.Listen("tcp://127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	cf.Registration = sock.Addr().(*net.TCPAddr).Port
	h := &fakeHub{cf: cf, sess: sess, sock: sock, reqs: make(chan *wire.Message, 1000)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			msg, err := sock.Recv()
			if err != nil {
				return
			}
			if msg.Type == zmq4.CmdMsg {
				continue
			}
			m, err := sess.Decode(msg.Frames)
			if err != nil {
				tb.Errorf("fake hub: %v", err)
				continue
			}
			h.reqs <- m
			serve(h, m)
		}
	})
	tb.Cleanup(func() { cancel(); sock.Close(); wg.Wait() })
	return h
}

// send answers req with r, as the hub does: parent = request header.
func (h *fakeHub) send(tb testing.TB, req *wire.Message, r *reply) {
	m := h.sess.NewMessage(r.msgType, r.content, &req.Header)
	m.Identities = req.Identities
	m.Buffers = r.buffers
	frames, err := h.sess.Encode(m)
	if err != nil {
		tb.Errorf("fake hub: encode: %v", err)
		return
	}
	h.sendFrames(tb, frames)
}

func (h *fakeHub) sendFrames(tb testing.TB, frames [][]byte) {
	if err := h.sock.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		tb.Errorf("fake hub: send: %v", err)
	}
}

func dial(tb testing.TB, cf connfile.Client, opts Options) *Client {
	tb.Helper()
	c, err := Dial(tb.Context(), cf, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func ok(msgType string, content map[string]any, bufs ...[]byte) *reply {
	content["status"] = "ok"
	return &reply{msgType, content, bufs}
}
