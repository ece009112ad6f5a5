package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
	zt "github.com/go-zeromq/zmq4/transport"
)

// Options configures a Transport. The zero value of a field means its
// default; negative values are invalid.
type Options struct {
	MaxFrameSize     int64         // 0 → 64 MiB: bytes of one received frame
	MaxMessageSize   int64         // 0 → 256 MiB: bytes of all frames of one received message
	HandshakeTimeout time.Duration // 0 → 5 s: to receive the peer's greeting and READY
	WriteTimeout     time.Duration // 0 → 10 s: each write to a peer (up to 1 MiB) must complete within it, or the peer is disconnected
	MaxSendQueue     int64         // 0 → 64 MiB: bytes queued to one peer at which messages to it are dropped
	Logger           *slog.Logger  // nil → discard
	Counters         *Counters     // nil → not counted; else updated by every connection
}

// Counters count what the transport did to slow peers. Fields are
// updated atomically and may be read at any time.
type Counters struct {
	// Dropped counts messages not sent because the peer's send queue held
	// MaxSendQueue bytes (see ErrQueueFull).
	Dropped atomic.Int64
	// SlowPeers counts connections closed because a write to the peer
	// did not complete within WriteTimeout.
	SlowPeers atomic.Int64
}

// Defaults for the zero fields of Options.
const (
	DefaultMaxFrameSize     = 64 << 20
	DefaultMaxMessageSize   = 256 << 20
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultMaxSendQueue     = 64 << 20
)

var discardLogger = slog.New(slog.DiscardHandler)

func (o Options) withDefaults() (Options, error) {
	if o.MaxFrameSize < 0 || o.MaxMessageSize < 0 || o.HandshakeTimeout < 0 ||
		o.WriteTimeout < 0 || o.MaxSendQueue < 0 {
		return o, fmt.Errorf("transport: negative option in %+v", o)
	}
	set := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	set(&o.MaxFrameSize, DefaultMaxFrameSize)
	set(&o.MaxMessageSize, DefaultMaxMessageSize)
	set(&o.MaxSendQueue, DefaultMaxSendQueue)
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Logger == nil {
		o.Logger = discardLogger
	}
	return o, nil
}

// Transport is a zmq4 transport.Transport for TCP that validates and
// bounds what peers send. It is safe for concurrent use.
type Transport struct {
	opts Options
}

var _ zt.Transport = (*Transport)(nil)

// New returns a Transport with opts. It fails on negative options.
func New(opts Options) (*Transport, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Transport{opts: o}, nil
}

// registry maps the options already registered to their scheme, since
// zmq4's registry is global and refuses a name twice.
var registry struct {
	sync.Mutex
	schemes map[Options]string
}

// Register registers a Transport with opts in zmq4 and returns its scheme:
// sockets then listen on or dial scheme+"://host:port". Equal options
// share one scheme; others get a new one ("zmtp1", "zmtp2", ...). Peers
// see plain ZMTP over TCP, so libzmq peers and zmq4 "tcp://" dialers
// connect as usual. Register is safe for concurrent use.
func Register(opts Options) (scheme string, err error) {
	t, err := New(opts)
	if err != nil {
		return "", err
	}
	registry.Lock()
	defer registry.Unlock()
	if s, ok := registry.schemes[t.opts]; ok {
		return s, nil
	}
	if registry.schemes == nil {
		registry.schemes = make(map[Options]string)
	}
	scheme = fmt.Sprintf("zmtp%d", len(registry.schemes)+1)
	if err := zmq4.RegisterTransport(scheme, t); err != nil {
		return "", fmt.Errorf("transport: register %s: %w", scheme, err)
	}
	registry.schemes[t.opts] = scheme
	return scheme, nil
}

// Dial connects to addr. The handshake that zmq4 then runs must complete
// within HandshakeTimeout.
func (t *Transport) Dial(ctx context.Context, d zt.Dialer, addr string) (net.Conn, error) {
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return newConn(nc, &t.opts, false), nil
}

// Listen listens on addr. Its Accept returns only connections whose peer
// completed its half of the handshake within HandshakeTimeout.
func (t *Transport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	nl, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return listen(nl, &t.opts), nil
}

// Addr resolves a zmq4 endpoint address: "*" means all interfaces and
// port "*" or "0" an ephemeral one.
func (t *Transport) Addr(ep string) (string, error) {
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return "", err
	}
	switch port {
	case "*", "":
		port = "0"
	}
	switch host {
	case "*", "":
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, port), nil
}

// maxHandshakes bounds the handshakes a listener runs at once; beyond it,
// new connections are closed at once.
const maxHandshakes = 1024

// listener hands zmq4 the connections whose handshakes, run concurrently,
// succeeded, so a silent peer cannot stall the accept loop.
type listener struct {
	net.Listener
	opts   *Options
	ready  chan *conn
	slots  chan struct{}
	ctx    context.Context // done once the listener is closed
	cancel context.CancelFunc
}

func listen(nl net.Listener, o *Options) *listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{
		Listener: nl,
		opts:     o,
		ready:    make(chan *conn),
		slots:    make(chan struct{}, maxHandshakes),
		ctx:      ctx,
		cancel:   cancel,
	}
	go l.accept()
	return l
}

// Accept returns the next connection ready for zmq4, or net.ErrClosed
// once the listener is closed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
	}
}

// Close stops accepting and closes the connections still in handshake.
func (l *listener) Close() error {
	l.cancel()
	return l.Listener.Close()
}

func (l *listener) accept() {
	var backoff time.Duration
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, or the like: retry, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.opts.Logger.Warn("accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-l.ctx.Done():
				return
			}
		}
		backoff = 0
		select {
		case l.slots <- struct{}{}:
			go l.handshake(nc)
		default:
			l.opts.Logger.Warn("too many handshakes in progress, connection refused",
				"remote", nc.RemoteAddr().String(), "limit", maxHandshakes)
			nc.Close()
		}
	}
}

// handshake sends the greeting zmq4 would send, then reads until the
// peer's greeting and READY have arrived and passed validation, and hands
// the connection to Accept.
func (l *listener) handshake(nc net.Conn) {
	defer func() { <-l.slots }()
	c := newConn(nc, l.opts, true)
	stop := context.AfterFunc(l.ctx, func() { c.Close() })
	ok := peerReady(c)
	// stop always runs: a registration left behind would keep c alive
	// until the listener closes.
	if !stop() || !ok {
		c.Close()
		return
	}
	select {
	case l.ready <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

// peerReady sends the greeting and reads until the peer's READY arrived.
func peerReady(c *conn) bool {
	_ = c.Conn.SetWriteDeadline(c.handshk)
	if _, err := c.Conn.Write(nullGreeting[:]); err != nil {
		return false
	}
	for !c.in.ready {
		if c.fill() != nil {
			return false
		}
	}
	return true
}
