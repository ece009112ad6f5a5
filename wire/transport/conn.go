package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
)

const (
	readBufSize = 16 << 10  // per connection; holds a whole handshake: 64 + 9 + maxCommand
	writeChunk  = 1 << 20   // bytes per write syscall, each with its own deadline
	maxIdleBuf  = 256 << 10 // larger write buffers are released after use
)

// ErrDropped is wrapped by the error every Read and Write returns once the
// transport has dropped a connection (protocol violation, oversize frame,
// handshake timeout, peer not draining). It is not a timeout, so zmq4 closes
// the connection and forgets the peer.
var ErrDropped = errors.New("transport: connection dropped")

// dropError is a permanent net.Error: zmq4's checkIO ignores timeouts.
type dropError struct{ cause error }

func (e *dropError) Error() string   { return ErrDropped.Error() + ": " + e.cause.Error() }
func (e *dropError) Unwrap() []error { return []error{ErrDropped, e.cause} }
func (e *dropError) Timeout() bool   { return false }
func (e *dropError) Temporary() bool { return false }

var _ net.Error = (*dropError)(nil)

// ErrQueueFull is wrapped by the error Write returns for a message it
// drops because the peer's send queue is full, and so by the error of a
// zmq4 ROUTER Send to that peer (a PUB socket ignores it). The connection
// stays up.
var ErrQueueFull = errors.New("transport: send queue full, message dropped")

// fullError reports a dropped message. It is a timeout, so zmq4's checkIO
// keeps the connection.
type fullError struct{}

func (fullError) Error() string   { return ErrQueueFull.Error() }
func (fullError) Unwrap() error   { return ErrQueueFull }
func (fullError) Timeout() bool   { return true }
func (fullError) Temporary() bool { return true }

var _ net.Error = fullError{}

// conn is the net.Conn zmq4 gets. Reads come from a buffer that only holds
// bytes the inbound stream has validated. Writes are queued and written by
// a goroutine of the conn, one syscall per batch of complete messages, so
// a peer that stops reading never blocks zmq4's socket-wide send lock.
//
// zmq4 reads from one goroutine; Write and Close may be called from any.
type conn struct {
	net.Conn              // the TCP connection
	opts     *Options     // defaults applied
	log      *slog.Logger // with the peer address
	skip     int          // greeting bytes already sent on zmq4's behalf
	handshk  time.Time    // handshake deadline, zero once READY arrived
	in       *stream      // owned by the reader
	rbuf     []byte       // validated, unread bytes are rbuf[r:w]
	r, w     int          // read and write positions in rbuf
	rerr     error        // sticky read error
	wmu      sync.Mutex   // guards the fields below
	wcond    *sync.Cond   // signals the writer: data, close or error
	out      *stream      // outbound stream, for message boundaries
	wq       []byte       // queued bytes; wq[:mark] are complete messages
	spare    []byte       // the writer's other buffer
	mark     int          // end of the last complete message in wq
	inflight int          // bytes the writer is writing
	closing  bool         // Close was called
	werr     error        // set once the connection is dropped
	peerType string       // Socket-Type of the peer, when known
	full     bool         // dropping messages until the queue is half empty
	dropped  int64        // messages dropped since full was set
}

// newConn wraps nc. When accepted, the caller has sent nullGreeting and
// zmq4's own greeting is discarded.
func newConn(nc net.Conn, o *Options, accepted bool) *conn {
	c := &conn{
		Conn:    nc,
		opts:    o,
		log:     o.Logger.With("remote", nc.RemoteAddr().String()),
		in:      newStream(o.MaxFrameSize, o.MaxMessageSize),
		out:     newStream(0, 0),
		rbuf:    make([]byte, readBufSize),
		handshk: time.Now().Add(o.HandshakeTimeout),
	}
	if accepted {
		c.skip = greetingLen
	}
	c.wcond = sync.NewCond(&c.wmu)
	_ = nc.SetReadDeadline(c.handshk)
	go c.writer()
	return c
}

// Read implements io.Reader over validated bytes.
func (c *conn) Read(p []byte) (int, error) {
	if c.r == c.w {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if len(p) >= len(c.rbuf) { // large body: no copy
			return c.readNet(p)
		}
		c.r, c.w = 0, 0
		n, err := c.readNet(c.rbuf)
		c.w = n
		if n == 0 {
			return 0, err
		}
		c.rerr = err
	}
	n := copy(p, c.rbuf[c.r:c.w])
	c.r += n
	return n, nil
}

// fill reads once into the free end of rbuf; the listener calls it until
// the peer's READY has arrived.
func (c *conn) fill() error {
	n, err := c.readNet(c.rbuf[c.w:])
	c.w += n
	return err
}

// readNet reads from the network into p and validates what came. A
// handshake timeout or a violation drops the connection.
func (c *conn) readNet(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if verr := c.in.feed(p[:n]); verr != nil {
		return 0, c.drop(verr)
	}
	if !c.handshk.IsZero() && c.in.ready {
		c.handshk = time.Time{}
		_ = c.Conn.SetReadDeadline(time.Time{})
		c.wmu.Lock()
		c.peerType = c.in.sockType
		cerr := c.compatLocked()
		c.wmu.Unlock()
		if cerr != nil {
			return 0, cerr
		}
	}
	if err == nil {
		return n, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !c.handshk.IsZero() {
		return n, c.drop(errHandshakeTimeout)
	}
	c.wmu.Lock()
	if c.werr != nil { // the writer dropped the connection: say why
		err = c.werr
	}
	c.wmu.Unlock()
	return n, err
}

var errHandshakeTimeout = errors.New("handshake timeout")

// compatLocked drops the connection once both READYs show socket types
// that cannot talk: zmq4 rejects such a peer without closing it.
func (c *conn) compatLocked() error {
	ours, peer := c.out.sockType, c.peerType
	if ours == "" || peer == "" || zmq4.SocketType(ours).IsCompatible(zmq4.SocketType(peer)) {
		return nil
	}
	return c.dropLocked(fmt.Errorf("%w: socket types %s and %s are incompatible", errHandshake, ours, peer))
}

// Write queues p. It returns an error only once the connection is
// dropped; a message is handed to the writer as soon as its last frame
// is queued.
func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.closing {
		return 0, &net.OpError{Op: "write", Net: "tcp", Addr: c.RemoteAddr(), Err: net.ErrClosed}
	}
	n := len(p)
	if c.skip > 0 { // zmq4's greeting, already sent by the listener
		k := min(c.skip, len(p))
		off := greetingLen - c.skip
		if !bytes.Equal(p[:k], nullGreeting[off:off+k]) {
			return 0, c.dropLocked(errMechanism)
		}
		c.skip -= k
		p = p[k:]
		if err := c.out.feed(nullGreeting[off : off+k]); err != nil {
			return 0, c.dropLocked(err)
		}
	}
	if len(p) == 0 {
		return n, nil
	}
	if c.out.ready && c.out.boundary() && c.queueFullLocked() {
		return 0, fullError{}
	}
	wasReady := c.out.ready
	if err := c.out.feed(p); err != nil {
		return 0, c.dropLocked(err)
	}
	c.wq = append(c.wq, p...)
	if !wasReady && c.out.ready {
		if err := c.compatLocked(); err != nil {
			return 0, err
		}
	}
	if c.out.boundary() {
		c.mark = len(c.wq)
		c.wcond.Signal()
	}
	return n, nil
}

var errNotDraining = errors.New("peer does not drain its messages")

// queueFullLocked decides, as a new message starts, whether to drop it: as
// libzmq does at a peer's high-water mark, but with a bound in bytes.
// Once the queue holds MaxSendQueue bytes, messages are dropped until it
// is down to half of that, so a peer hovering at the bound does not flip
// (and log) on every message.
func (c *conn) queueFullLocked() bool {
	queued := int64(len(c.wq) + c.inflight)
	switch {
	case !c.full && queued >= c.opts.MaxSendQueue:
		c.full = true
		c.log.Warn("send queue full: dropping messages to peer", "queued_bytes", queued)
	case c.full && queued <= c.opts.MaxSendQueue/2:
		c.full = false
		c.log.Warn("send queue drained: sending to peer again", "dropped", c.dropped)
		c.dropped = 0
	}
	if c.full {
		c.dropped++
		if ct := c.opts.Counters; ct != nil {
			ct.Dropped.Add(1)
		}
	}
	return c.full
}

// writer writes complete messages in batches until the connection is
// dropped, or closed with nothing left to write.
func (c *conn) writer() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for {
		for c.mark == 0 && !c.closing && c.werr == nil {
			c.wcond.Wait()
		}
		if c.werr != nil {
			return
		}
		if c.mark == 0 { // closing, all written
			c.Conn.Close()
			return
		}
		batch := c.wq[:c.mark]
		c.spare = append(c.spare[:0], c.wq[c.mark:]...)
		c.wq, c.spare = c.spare, batch
		c.mark, c.inflight = 0, len(batch)
		err := c.writeAll(batch)
		c.inflight = 0
		if cap(c.spare) > maxIdleBuf { // do not keep a huge message's buffer
			c.spare = nil
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = errNotDraining
				if ct := c.opts.Counters; ct != nil {
					ct.SlowPeers.Add(1)
				}
			}
			c.dropLocked(err)
			return
		}
	}
}

// writeAll writes b, a chunk at a time with c.wmu released, each chunk
// within WriteTimeout; inflight counts what is left.
func (c *conn) writeAll(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), writeChunk)
		c.wmu.Unlock()
		err := c.Conn.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
		if err == nil {
			_, err = c.Conn.Write(b[:n])
		}
		c.wmu.Lock()
		if err != nil {
			return err
		}
		b = b[n:]
		c.inflight = len(b)
	}
	return nil
}

// drop closes the connection for cause, logs it once, and returns the
// error every later Read and Write returns.
func (c *conn) drop(cause error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := c.dropLocked(cause)
	c.rerr = err
	return err
}

func (c *conn) dropLocked(cause error) error {
	if c.werr != nil {
		return c.werr
	}
	c.werr = &dropError{cause}
	level := slog.LevelWarn // the peer broke a rule or a limit
	if oe := (*net.OpError)(nil); c.closing || errors.As(cause, &oe) {
		level = slog.LevelDebug // an I/O error: the peer left
	}
	c.log.Log(context.Background(), level, "peer dropped", "reason", cause.Error())
	c.wcond.Signal()
	c.Conn.Close()
	return c.werr
}

// Close stops reading at once and lets the writer flush what is queued,
// within the write timeout, before the connection closes.
func (c *conn) Close() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing || c.werr != nil {
		return nil
	}
	c.closing = true
	c.wcond.Signal()
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok && c.mark+c.inflight > 0 {
		return cr.CloseRead()
	}
	return nil
}
