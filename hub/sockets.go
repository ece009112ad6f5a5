package hub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"

	"github.com/go-zeromq/zmq4"

	"github.com/taskhub/taskhub/wire"
	"github.com/taskhub/taskhub/wire/transport"
)

// sockID names one of the hub's sockets.
type sockID int

const (
	sockQuery           sockID = iota // ROUTER: registration and client queries
	sockClientMux                     // ROUTER: clients' direct requests
	sockEngineMux                     // ROUTER: engines' shells
	sockClientControl                 // ROUTER
	sockEngineControl                 // ROUTER
	sockClientTask                    // ROUTER: load-balanced requests
	sockEngineTask                    // ROUTER
	sockEngineIOPub                   // SUB: engines' output
	sockClientIOPub                   // PUB
	sockNotification                  // PUB: (un)registration notifications
	sockHBPing                        // PUB
	sockHBPong                        // ROUTER
	sockClientBroadcast               // ROUTER: answered with an error
	sockEngineBroadcast               // ROUTER: bound for engines, unused
	numSockets
)

var sockNames = [numSockets]string{
	"query", "client_mux", "engine_mux", "client_control", "engine_control",
	"client_task", "engine_task", "engine_iopub", "client_iopub",
	"notification", "hb_ping", "hb_pong", "client_broadcast", "engine_broadcast",
}

func (id sockID) String() string { return sockNames[id] }

func (id sockID) kind() zmq4.SocketType {
	switch id {
	case sockEngineIOPub:
		return zmq4.Sub
	case sockClientIOPub, sockNotification, sockHBPing:
		return zmq4.Pub
	}
	return zmq4.Router
}

func (id sockID) port(p Ports) int {
	return [numSockets]int{
		p.Registration, p.ClientMux, p.EngineMux, p.ClientControl, p.EngineControl,
		p.ClientTask, p.EngineTask, p.EngineIOPub, p.ClientIOPub,
		p.Notification, p.HBPing, p.HBPong, p.ClientBroadcast, p.EngineBroadcast,
	}[id]
}

// carriesRequests reports whether the hub sends engines their requests on
// the socket. Messages there are never dropped for a full send queue: a
// dropped request would be a task lost, its client waiting forever.
func (id sockID) carriesRequests() bool {
	switch id {
	case sockEngineMux, sockEngineControl, sockEngineTask:
		return true
	}
	return false
}

// inbound is a message received on one of the hub's sockets.
type inbound struct {
	sock   sockID
	frames [][]byte
	msg    *wire.Message // decoded by the pump; nil when only frames matter
}

// hubSocket is one bound socket. Exactly two goroutines touch it:
//   - its owner (serveSocket), the only caller of Send and Close, which
//     sends what arrives on out;
//   - its receive pump (pump), the only caller of Recv, which feeds the
//     state goroutine's inbox. zmq4's Recv blocks without a poll, so it
//     cannot share the owner's select; Close (by the owner) unblocks it.
//
// PUB sockets have no pump; the SUB socket has no use for out.
type hubSocket struct {
	id   sockID
	zs   zmq4.Socket
	port int
	out  chan [][]byte
}

// outQueue is the buffer between the state goroutine and a socket owner.
const outQueue = 4096

// bind creates and binds every socket. The sockets live until closed by
// their owners, independently of any Run context: shutdown drains them
// first.
func bind(ctx context.Context, cfg Config) ([numSockets]*hubSocket, error) {
	var socks [numSockets]*hubSocket
	scheme, err := transport.Register(cfg.Transport)
	if err != nil {
		return socks, fmt.Errorf("hub: transport: %w", err)
	}
	// Requests to engines are queued without a bound; an engine that
	// does not read for WriteTimeout is still disconnected.
	unbounded := cfg.Transport
	unbounded.MaxSendQueue = math.MaxInt64
	requestScheme, err := transport.Register(unbounded)
	if err != nil {
		return socks, fmt.Errorf("hub: transport: %w", err)
	}
	for id := range numSockets {
		var zs zmq4.Socket
		switch id.kind() {
		case zmq4.Sub:
			zs = zmq4.NewSub(ctx)
		case zmq4.Pub:
			zs = zmq4.NewPub(ctx)
		default:
			// A zero timeout: Send never waits for the socket's first
			// peer (zmq4 would, for 5 minutes, and stall its owner).
			zs = zmq4.NewRouter(ctx, zmq4.WithID(zmq4.SocketIdentity(id.String())), zmq4.WithTimeout(0))
		}
		sch := scheme
		if id.carriesRequests() {
			sch = requestScheme
		}
		ep := fmt.Sprintf("%s://%s:%d", sch, cfg.IP, id.port(cfg.Ports))
		if err := zs.Listen(ep); err != nil {
			zs.Close()
			closeAll(socks)
			return socks, fmt.Errorf("hub: listen %s socket on %s: %w", id, ep, err)
		}
		if id.kind() == zmq4.Sub {
			if err := zs.SetOption(zmq4.OptionSubscribe, ""); err != nil {
				zs.Close()
				closeAll(socks)
				return socks, fmt.Errorf("hub: subscribe %s: %w", id, err)
			}
		}
		port := 0
		if a, ok := zs.Addr().(*net.TCPAddr); ok {
			port = a.Port
		}
		socks[id] = &hubSocket{id: id, zs: zs, port: port, out: make(chan [][]byte, outQueue)}
	}
	return socks, nil
}

func closeAll(socks [numSockets]*hubSocket) {
	for _, s := range socks {
		if s != nil {
			s.zs.Close()
		}
	}
}

// serveSocket is the socket's owner: it sends every message queued on out
// until the hub stops, then what is still queued, then closes the socket.
func (h *Hub) serveSocket(s *hubSocket) {
	defer s.zs.Close()
	for {
		select {
		case frames := <-s.out:
			h.sendNow(s, frames)
		case <-h.stop:
			for {
				select {
				case frames := <-s.out:
					h.sendNow(s, frames)
				default:
					return
				}
			}
		}
	}
}

// sendNow sends frames without waiting for the peer: the transport queues
// them, or drops them when the peer's send queue is full (it counts and
// logs that itself).
func (h *Hub) sendNow(s *hubSocket, frames [][]byte) {
	err := s.zs.Send(zmq4.NewMsgFrom(frames...))
	if err != nil && !errors.Is(err, transport.ErrQueueFull) {
		h.stats.sendErrors.Add(1)
		h.log.Warn("send failed", "socket", s.id.String(), "err", err)
	}
}

// pump receives from s for the state goroutine until the socket closes.
// ZMTP command messages (PING and the like) and messages that do not
// decode are dropped here.
func (h *Hub) pump(s *hubSocket) {
	for {
		m, err := s.zs.Recv()
		if err != nil {
			return // closed by the owner
		}
		if m.Type == zmq4.CmdMsg || len(m.Frames) == 0 {
			continue
		}
		in := inbound{sock: s.id, frames: m.Frames}
		if !h.decode(&in) {
			continue
		}
		select {
		case h.inbox <- in:
		case <-h.stop:
			return
		}
	}
}
