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
}

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("client: closed")

// Client talks to one hub's query socket. It is safe for concurrent use.
type Client struct {
	addr    string // tcp://host:port, for messages
	sess    *wire.Session
	timeout time.Duration
	sock    zmq4.Socket
	sendq   chan sendReq
	stop    context.CancelFunc // ends the socket and both goroutines
	closed  chan struct{}      // closed by Close, before stop
	done    chan struct{}      // closed when both goroutines have returned
	closing sync.Once

	waitersMu sync.Mutex // guards waiters and recvErr
	waiters   map[string]chan *wire.Message
	recvErr   error // set when the receive pump stopped
}

type sendReq struct {
	frames [][]byte
	errc   chan error
}

// Dial connects to the query socket named by cf. It retries while the hub
// is not listening, until ctx or Options.Timeout ends, and fails at once for
// a connection file it cannot use (unknown packer or signature scheme). A
// peer that accepts the connection but never completes the ZMTP handshake
// holds Dial for Options.Timeout (DefaultTimeout when negative), even when
// ctx ends sooner.
// Dial does not exchange any message: a wrong key shows up as calls that
// time out, since the hub drops messages it cannot verify.
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
	addr := cf.Endpoint(cf.Registration)
	dialCtx, cancelDial := withTimeout(ctx, timeout)
	defer cancelDial()
	budget := waitBudget(dialCtx)
	// The hardened transport bounds the ZMTP handshake, which zmq4 alone
	// would wait for forever, and what the hub may send. Its handshake
	// timeout is the configured one, not the time left: each distinct
	// value registers one more transport in zmq4's global registry.
	hs := transport.DefaultHandshakeTimeout
	if timeout > 0 {
		hs = timeout
	}
	scheme, err := transport.Register(transport.Options{HandshakeTimeout: hs})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	retries := -1
	if budget > 0 {
		retries = int(budget / dialRetry)
	}
	sockCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
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
	err = sock.Dial(strings.Replace(addr, "tcp://", scheme+"://", 1))
	close(dialed)
	<-watched // after this, only a dial that ran out of time has stopped the socket
	if err == nil && dialCtx.Err() != nil {
		err = dialCtx.Err()
	}
	if err != nil {
		stop()
		sock.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: dial %s: %w", addr, ctx.Err())
		}
		return nil, fmt.Errorf("client: hub at %s is not reachable (is it running?): %w", addr, err)
	}
	c := &Client{
		addr: addr, sess: sess, timeout: timeout, sock: sock,
		sendq: make(chan sendReq), stop: stop, closed: make(chan struct{}), done: make(chan struct{}),
		waiters: map[string]chan *wire.Message{},
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.own(sockCtx) })
	wg.Go(c.pump)
	go func() { wg.Wait(); close(c.done) }()
	return c, nil
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

// own is the socket's owner goroutine: the only caller of Send and Close.
func (c *Client) own(ctx context.Context) {
	defer c.sock.Close()
	for {
		select {
		case r := <-c.sendq:
			r.errc <- c.sock.Send(zmq4.NewMsgFrom(r.frames...))
		case <-ctx.Done():
			return
		}
	}
}

// pump is the only caller of Recv. It hands each reply to the call whose
// request is its parent, and drops anything else.
func (c *Client) pump() {
	for {
		msg, err := c.sock.Recv()
		if err != nil {
			c.waitersMu.Lock()
			c.recvErr = err
			for id, ch := range c.waiters {
				close(ch)
				delete(c.waiters, id)
			}
			c.waitersMu.Unlock()
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
		ch := c.waiters[m.Parent.MsgID]
		delete(c.waiters, m.Parent.MsgID)
		c.waitersMu.Unlock()
		if ch != nil {
			ch <- m // buffered, and each waiter receives once
		}
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
	reply := make(chan *wire.Message, 1)
	c.waitersMu.Lock()
	if c.recvErr != nil {
		c.waitersMu.Unlock()
		return nil, ErrClosed
	}
	c.waiters[id] = reply
	c.waitersMu.Unlock()
	defer func() {
		c.waitersMu.Lock()
		delete(c.waiters, id)
		c.waitersMu.Unlock()
	}()

	errc := make(chan error, 1)
	select {
	case c.sendq <- sendReq{frames, errc}:
	case <-c.closed:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, c.ctxErr(ctx, msgType, budget)
	}
	select {
	case err := <-errc:
		select {
		case <-c.closed: // the send failed because Close stopped the socket
			return nil, ErrClosed
		default:
		}
		if err != nil {
			return nil, fmt.Errorf("client: %s to %s: %w", msgType, c.addr, err)
		}
	case <-ctx.Done(): // the send itself may block while the hub is away
		return nil, c.ctxErr(ctx, msgType, budget)
	}
	select {
	case m, ok := <-reply:
		if !ok {
			return nil, ErrClosed
		}
		return m, replyError(m)
	case <-ctx.Done():
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
