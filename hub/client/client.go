package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/wire"
	"github.com/taskhub/taskhub/wire/transport"
)

// DefaultTimeout bounds each call when Options.Timeout is 0.
const DefaultTimeout = 5 * time.Second

// dialRetry is the pause between connection attempts while Dial waits for
// a hub that is not listening yet.
const dialRetry = 100 * time.Millisecond

// Options configures a Client. The zero value is ready to use.
type Options struct {
	// Timeout bounds Dial and every call, on top of the caller's context.
	// 0 means DefaultTimeout; negative means only the context bounds them.
	Timeout time.Duration
	// MaxMessageSize and MaxFrameSize bound what the hub may send, as in
	// transport.Options; 0 means the transport's defaults. A larger reply
	// drops the connection and fails its call with an error naming the
	// limit.
	MaxMessageSize int64
	MaxFrameSize   int64
}

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("client: closed")

// ErrConnectionLost is wrapped by the error of a call whose connection to
// the hub dropped, or was reset because the hub did not answer in time,
// before its reply came. The Client dials again for the next call.
var ErrConnectionLost = errors.New("connection to the hub lost")

// Client talks to one hub's query socket. It is safe for concurrent use.
type Client struct {
	addr     string // tcp://host:port, for messages
	endpoint string // addr with the hardened transport's scheme, for zmq4
	opts     Options
	sess     *wire.Session
	timeout  time.Duration
	sendq    chan sendReq
	resetq   chan uint64        // generations of sockets a timed-out call found silent
	stop     context.CancelFunc // ends the socket and the goroutines
	closed   chan struct{}      // closed by Close, before stop
	done     chan struct{}      // closed when the owner has returned
	closing  sync.Once

	waitersMu sync.Mutex // guards waiters
	waiters   map[string]*waiter
}

// waiter is a call waiting for its reply. gen is the generation of the
// socket its request went out on, 0 until sent: only the owner sets it.
type waiter struct {
	gen   uint64
	reply chan reply // buffered; receives once
}

type reply struct {
	m   *wire.Message
	err error
}

type sendReq struct {
	ctx    context.Context // bounds a redial
	id     string
	frames [][]byte
	errc   chan sendResult
}

type sendResult struct {
	gen uint64
	err error
}

// conn is one dialled DEALER and its receive pump.
type conn struct {
	sock zmq4.Socket
	stop context.CancelFunc
	gen  uint64
	dead chan struct{} // closed when the pump has returned; err is then set
	err  error
}

// Dial connects to the query socket named by cf. It retries while the hub
// is not listening, until ctx or Options.Timeout ends, and fails at once for
// a connection file it cannot use (unknown packer or signature scheme). A
// peer that accepts the connection but never completes the ZMTP handshake
// holds Dial for Options.Timeout (DefaultTimeout when negative), even when
// ctx ends sooner.
// Dial does not exchange any message: a wrong key shows up as calls that
// time out, since the hub drops messages it cannot verify.
//
// When the connection drops (the hub stopped or restarted) or a call times
// out, the Client closes its socket and dials the same address again for
// the next call, so a Client outlives hub restarts.
func Dial(ctx context.Context, cf connfile.Client, opts Options) (*Client, error) {
	packer, err := cf.Packer()
	if err != nil {
		return nil, err
	}
	sess, err := wire.NewSession(wire.Config{Key: []byte(cf.Key), SignatureScheme: cf.SignatureScheme, Packer: packer})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	// The hardened transport bounds the ZMTP handshake, which zmq4 alone
	// would wait for forever, and what the hub may send. Its handshake
	// timeout is the configured one, not the time left: each distinct
	// value registers one more transport in zmq4's global registry.
	hs := transport.DefaultHandshakeTimeout
	if timeout > 0 {
		hs = timeout
	}
	scheme, err := transport.Register(transport.Options{HandshakeTimeout: hs, MaxMessageSize: opts.MaxMessageSize, MaxFrameSize: opts.MaxFrameSize})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	addr := cf.Endpoint(cf.Registration)
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	c := &Client{
		addr: addr, endpoint: strings.Replace(addr, "tcp://", scheme+"://", 1), opts: opts, sess: sess, timeout: timeout,
		sendq: make(chan sendReq), resetq: make(chan uint64, 1), stop: stop,
		closed: make(chan struct{}), done: make(chan struct{}),
		waiters: map[string]*waiter{},
	}
	dialCtx, cancelDial := withTimeout(ctx, timeout)
	defer cancelDial()
	first, err := c.connect(life, dialCtx, 1)
	if err != nil {
		stop()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: dial %s: %w", addr, ctx.Err())
		}
		return nil, fmt.Errorf("client: %w", err)
	}
	go func() { defer close(c.done); c.own(life, first) }()
	return c, nil
}

// connect dials a DEALER to the hub, retrying until dialCtx ends, and
// starts its receive pump. The socket lives until life ends or it is shut.
func (c *Client) connect(life, dialCtx context.Context, gen uint64) (*conn, error) {
	retries := -1
	if budget := waitBudget(dialCtx); budget > 0 {
		retries = int(budget / dialRetry)
	}
	sockCtx, stop := context.WithCancel(life)
	sock := zmq4.NewDealer(sockCtx, zmq4.WithDialerRetry(dialRetry), zmq4.WithDialerMaxRetries(retries))
	dialed, watched := make(chan struct{}), make(chan struct{})
	go func() { // zmq4 retries until its socket's context ends
		defer close(watched)
		select {
		case <-dialCtx.Done():
			stop()
		case <-dialed:
		}
	}()
	err := sock.Dial(c.endpoint)
	close(dialed)
	<-watched // after this, only a dial that ran out of time has stopped the socket
	if err == nil && dialCtx.Err() != nil {
		err = dialCtx.Err()
	}
	if err != nil {
		stop()
		sock.Close()
		return nil, fmt.Errorf("hub at %s is not reachable (is it running?): %w", c.addr, err)
	}
	cn := &conn{sock: sock, stop: stop, gen: gen, dead: make(chan struct{})}
	go c.pump(cn)
	return cn, nil
}

// shut closes cn's socket and waits for its pump.
func (cn *conn) shut() {
	cn.stop()
	cn.sock.Close()
	<-cn.dead
}

// Addr returns the hub's query address, e.g. "tcp://127.0.0.1:5555".
func (c *Client) Addr() string { return c.addr }

// Close disconnects. Calls in progress fail with ErrClosed. Close is
// idempotent and safe for concurrent use.
func (c *Client) Close() error {
	c.closing.Do(func() {
		close(c.closed)
		c.stop()
	})
	<-c.done
	return nil
}

// own is the owner goroutine: the only one to dial, Send on and close the
// sockets. It replaces a socket whose connection dropped or that a timed
// out call found silent, dialling the next one when a request needs it.
func (c *Client) own(life context.Context, cn *conn) {
	gen := cn.gen
	for {
		var dead chan struct{} // nil, so never ready, while no socket is up
		if cn != nil {
			dead = cn.dead
		}
		select {
		case r := <-c.sendq:
			if cn == nil {
				var err error
				if cn, err = c.connect(life, r.ctx, gen+1); err != nil {
					r.errc <- sendResult{err: err}
					continue
				}
				gen = cn.gen
			}
			if err := cn.sock.Send(zmq4.NewMsgFrom(r.frames...)); err != nil {
				// zmq4 saw the connection drop before the pump did.
				err = c.lost(err)
				cn.shut()
				c.fail(gen, err)
				cn = nil
				r.errc <- sendResult{err: err}
				continue
			}
			c.waitersMu.Lock()
			if w := c.waiters[r.id]; w != nil {
				w.gen = gen
			}
			c.waitersMu.Unlock()
			r.errc <- sendResult{gen: gen}
		case <-dead:
			cn.shut()
			c.fail(gen, c.lost(cn.err))
			cn = nil
		case g := <-c.resetq:
			if cn == nil || g != gen {
				continue // that socket is gone already
			}
			cn.shut()
			c.fail(gen, fmt.Errorf("%w: reset after a call timed out", ErrConnectionLost))
			cn = nil
		case <-life.Done():
			if cn != nil {
				cn.shut()
			}
			c.fail(0, ErrClosed)
			return
		}
	}
}

// lost wraps the cause of a dropped connection in ErrConnectionLost,
// naming the receive limits when the transport dropped it, which it does
// for an oversize reply.
func (c *Client) lost(cause error) error {
	if !errors.Is(cause, transport.ErrDropped) {
		return fmt.Errorf("%w (hub stopped or network failed): %w", ErrConnectionLost, cause)
	}
	msg, frame := c.opts.MaxMessageSize, c.opts.MaxFrameSize
	if msg == 0 {
		msg = transport.DefaultMaxMessageSize
	}
	if frame == 0 {
		frame = transport.DefaultMaxFrameSize
	}
	return fmt.Errorf("%w (dropped by the transport: a reply over MaxMessageSize %d or MaxFrameSize %d bytes, or a protocol violation): %w",
		ErrConnectionLost, msg, frame, cause)
}

// fail ends the calls whose requests went out on socket generation gen
// with err; gen 0 ends them all.
func (c *Client) fail(gen uint64, err error) {
	c.waitersMu.Lock()
	defer c.waitersMu.Unlock()
	for id, w := range c.waiters {
		if gen == 0 || w.gen == gen {
			w.reply <- reply{err: err}
			delete(c.waiters, id)
		}
	}
}

// pump is the only caller of cn's Recv. It hands each reply to the call
// whose request is its parent, drops anything else, and returns when the
// socket fails.
func (c *Client) pump(cn *conn) {
	defer close(cn.dead)
	for {
		msg, err := cn.sock.Recv()
		if err != nil {
			cn.err = err
			return
		}
		if msg.Type == zmq4.CmdMsg {
			continue // ZMTP command (PING) surfaced by zmq4
		}
		m, err := c.sess.Decode(msg.Frames)
		if err != nil {
			continue // unsigned, forged or garbled: not an answer to us
		}
		c.waitersMu.Lock()
		if w := c.waiters[m.Parent.MsgID]; w != nil {
			w.reply <- reply{m: m}
			delete(c.waiters, m.Parent.MsgID)
		}
		c.waitersMu.Unlock()
	}
}

// call sends a request and waits for its reply. A reply with status
// "error" becomes a *wire.Error.
func (c *Client) call(ctx context.Context, msgType string, content map[string]any) (*wire.Message, error) {
	budget := c.timeout // the bound reported on timeout: ours, or the caller's if sooner
	if dl, ok := ctx.Deadline(); ok && (budget < 0 || time.Until(dl) < budget) {
		budget = max(time.Until(dl), time.Millisecond)
	}
	ctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	req := c.sess.NewMessage(msgType, content, nil)
	frames, err := c.sess.Encode(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", msgType, err)
	}
	id := req.Header.MsgID
	w := &waiter{reply: make(chan reply, 1)}
	c.waitersMu.Lock()
	select {
	case <-c.closed:
		c.waitersMu.Unlock()
		return nil, ErrClosed
	default:
	}
	c.waiters[id] = w
	c.waitersMu.Unlock()
	defer func() {
		c.waitersMu.Lock()
		delete(c.waiters, id)
		c.waitersMu.Unlock()
	}()

	errc := make(chan sendResult, 1)
	select {
	case c.sendq <- sendReq{ctx, id, frames, errc}:
	case <-c.closed:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, c.ctxErr(ctx, msgType, budget)
	}
	var sent sendResult
	select {
	case sent = <-errc:
		select {
		case <-c.closed: // the send failed because Close stopped the socket
			return nil, ErrClosed
		default:
		}
		if sent.err != nil && ctx.Err() != nil { // a redial ran out of time
			return nil, c.ctxErr(ctx, msgType, budget)
		}
		if sent.err != nil {
			return nil, fmt.Errorf("client: %s: %w", msgType, sent.err)
		}
	case <-ctx.Done(): // the send or a redial may block while the hub is away
		return nil, c.ctxErr(ctx, msgType, budget)
	}
	select {
	case r := <-w.reply:
		if errors.Is(r.err, ErrClosed) {
			return nil, ErrClosed
		}
		if r.err != nil {
			return nil, fmt.Errorf("client: %s to %s: %w", msgType, c.addr, r.err)
		}
		return r.m, replyError(r.m)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The hub may be gone without the connection saying so:
			// have the owner dial afresh for the next call.
			select {
			case c.resetq <- sent.gen:
			default:
			}
		}
		return nil, c.ctxErr(ctx, msgType, budget)
	}
}

func (c *Client) ctxErr(ctx context.Context, msgType string, budget time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && budget > 0 {
		return fmt.Errorf("client: hub at %s did not answer %s within %v: %w", c.addr, msgType, budget.Round(time.Millisecond), ctx.Err())
	}
	return fmt.Errorf("client: %s: %w", msgType, ctx.Err())
}

// replyError returns the *wire.Error of an error reply, nil for status ok.
func replyError(m *wire.Message) error {
	switch m.Content["status"] {
	case "ok":
		return nil
	case "error":
		e := &wire.Error{}
		e.Name, _ = m.Content["ename"].(string)
		e.Value, _ = m.Content["evalue"].(string)
		if tb, ok := m.Content["traceback"].([]any); ok {
			for _, line := range tb {
				if s, ok := line.(string); ok {
					e.Traceback = append(e.Traceback, s)
				}
			}
		}
		return e
	default:
		return fmt.Errorf("client: malformed %s: status %v", m.Header.MsgType, m.Content["status"])
	}
}

// withTimeout bounds ctx by d unless d is negative.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d < 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// waitBudget is the time left before ctx's deadline; 0 without one.
func waitBudget(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return 0
}
