// Package clienttest provides a fake hub for testing programs that use
// package client: a ZeroMQ ROUTER on 127.0.0.1 speaking the query protocol
// and answering each request as the test says.
package clienttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"

	"github.com/go-zeromq/zmq4"

	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/wire"
)

// Reply is an answer to one request.
type Reply struct {
	MsgType string
	Content map[string]any
	Buffers [][]byte
}

// OK returns a reply with status "ok" added to content.
func OK(msgType string, content map[string]any, buffers ...[]byte) *Reply {
	if content == nil {
		content = map[string]any{}
	}
	content["status"] = "ok"
	return &Reply{msgType, content, buffers}
}

// Error returns an error reply carrying e, as the hub sends it.
func Error(msgType string, e *wire.Error) *Reply {
	return &Reply{MsgType: msgType, Content: e.Content()}
}

// Hub is a fake hub. Its goroutine is the only user of its socket: the
// serve function it runs may call Reply and SendFrames, nothing else may.
type Hub struct {
	File     connfile.Client    // the client connection file: every port is the query socket's
	Session  *wire.Session      // signs with File's key
	Requests chan *wire.Message // every request received, in order (buffered)
	tb       testing.TB
	sock     zmq4.Socket
	serve    func(h *Hub, req *wire.Message)
	stop     func() // closes the socket and waits for the goroutine; idempotent
}

// Start starts a fake hub with packer "msgpack" or "json" that answers each
// request with handle's reply, or not at all when handle returns nil. It
// stops when the test ends.
func Start(tb testing.TB, packer string, handle func(req *wire.Message) *Reply) *Hub {
	tb.Helper()
	return StartRaw(tb, packer, func(h *Hub, req *wire.Message) {
		if r := handle(req); r != nil {
			h.Reply(req, r)
		}
	})
}

// StartRaw is Start with full control: serve may answer late, out of order,
// several times, or with forged frames.
func StartRaw(tb testing.TB, packer string, serve func(h *Hub, req *wire.Message)) *Hub {
	tb.Helper()
	pack, unpack, err := connfile.PackNames(packer)
	if err != nil {
		tb.Fatal(err)
	}
	cf := connfile.Client{Interface: "tcp://127.0.0.1", TaskScheme: "leastload", Key: "clienttest-key",
		SignatureScheme: "hmac-sha256", Pack: pack, Unpack: unpack, Location: "localhost"}
	sess, err := wire.NewSession(wire.Config{Key: []byte(cf.Key), SignatureScheme: cf.SignatureScheme, Packer: packer})
	if err != nil {
		tb.Fatal(err)
	}
	h := &Hub{File: cf, Session: sess, Requests: make(chan *wire.Message, 1024), tb: tb, serve: serve}
	h.listen("tcp://127.0.0.1:0")
	// Only queries are served; the other ports name the same socket so
	// that the file is complete and passes connfile.ReadClient.
	port := h.sock.Addr().(*net.TCPAddr).Port
	h.File.Registration, h.File.Control, h.File.Mux, h.File.Task, h.File.IOPub, h.File.Notification, h.File.Broadcast = port, port, port, port, port, port, port
	return h
}

// Restart stops h, dropping its connections as a hub that exits does, and
// starts a fake hub on the same port with the same file, serve function
// and Requests channel. Its zmq4 listener sets SO_REUSEADDR, so the port
// is free again at once.
func (h *Hub) Restart() *Hub {
	h.tb.Helper()
	h.Stop()
	n := &Hub{File: h.File, Session: h.Session, Requests: h.Requests, tb: h.tb, serve: h.serve}
	n.listen(fmt.Sprintf("tcp://127.0.0.1:%d", h.File.Registration))
	return n
}

// Stop closes the hub's socket, dropping every connection. It is also
// done when the test ends.
func (h *Hub) Stop() { h.stop() }

func (h *Hub) listen(addr string) {
	ctx, cancel := context.WithCancel(context.Background())
	h.sock = zmq4.NewRouter(ctx)
	if err := h.sock.Listen(addr); err != nil {
		cancel()
		h.tb.Fatal(err)
	}
	sock, tb := h.sock, h.tb
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
			req, err := h.Session.Decode(msg.Frames)
			if err != nil {
				tb.Errorf("clienttest: bad request: %v", err)
				continue
			}
			select {
			case h.Requests <- req:
			default:
				tb.Errorf("clienttest: more than %d requests unread", cap(h.Requests))
			}
			h.serve(h, req)
		}
	})
	var once sync.Once
	h.stop = func() { once.Do(func() { cancel(); sock.Close(); wg.Wait() }) }
	tb.Cleanup(h.stop)
}

// Reply answers req as the hub does: same routing identity, req's header
// as parent.
func (h *Hub) Reply(req *wire.Message, r *Reply) {
	m := h.Session.NewMessage(r.MsgType, r.Content, &req.Header)
	m.Identities = req.Identities
	m.Buffers = r.Buffers
	frames, err := h.Session.Encode(m)
	if err != nil {
		h.tb.Errorf("clienttest: encode %s: %v", r.MsgType, err)
		return
	}
	h.SendFrames(frames)
}

// SendFrames sends raw frames, starting with the routing identity. Like a
// hub's ROUTER, it drops a message to a client that went away meanwhile.
func (h *Hub) SendFrames(frames [][]byte) {
	err := h.sock.Send(zmq4.NewMsgFrom(frames...))
	if errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return
	}
	if err != nil {
		h.tb.Errorf("clienttest: send: %v", err)
	}
}
