package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/taskhub/taskhub/taskdb"
)

// Kind is what a write does.
type Kind uint8

// Kinds of writes.
const (
	// Add inserts Op.Record, a complete record, under Op.ID.
	Add Kind = iota + 1
	// Update merges Op.Record's keys into the record Op.ID.
	Update
	// Drop deletes the record Op.ID.
	Drop
)

func (k Kind) String() string {
	switch k {
	case Add:
		return "add"
	case Update:
		return "update"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Op is one write. Record must be normalized (taskdb.Normalize) and is
// owned by the queue once enqueued. A backend removing records by query
// resolves their msg_ids and enqueues one Drop each.
type Op struct {
	Kind   Kind
	ID     string
	Record taskdb.Record

	known uint64 // for an Add, the number of the knownIDs add it made
}

// Apply applies ops, in order, to the database. It returns how many
// leading ops it applied before err (0 for a backend applying a batch in
// one transaction); those are not passed again.
type Apply func(ctx context.Context, ops []Op) (applied int, err error)

// Defaults for a zero Options field.
const (
	DefaultBatchSize       = 1000
	DefaultFlushInterval   = 20 * time.Millisecond
	DefaultMaxPending      = 1_000_000
	DefaultMaxPendingBytes = 256 << 20
	DefaultRetryMin        = 100 * time.Millisecond
	DefaultRetryMax        = 5 * time.Second
	DefaultApplyTimeout    = 10 * time.Second
	DefaultSummaryInterval = 30 * time.Second
	DefaultKnownIDs        = 1 << 18
)

// Options configure a Queue. The zero value of each field means its
// default.
type Options struct {
	// BatchSize is the most writes one Apply call gets.
	BatchSize int
	// FlushInterval is the longest a write waits before its batch is
	// applied while no reader waits.
	FlushInterval time.Duration
	// MaxPending and MaxPendingBytes bound the writes queued and not yet
	// applied, and the bytes of their strings and buffers.
	MaxPending      int
	MaxPendingBytes int64
	// Backlog is how many writes may wait while the database is
	// reachable: beyond it Enqueue waits for the writer, so the queue
	// grows to MaxPending only during an outage and Close has little to
	// flush. Default 4×BatchSize.
	Backlog int
	// RetryMin and RetryMax bound the backoff between retries of a batch
	// during an outage.
	RetryMin, RetryMax time.Duration
	// ApplyTimeout bounds one Apply call; exceeding it counts as an
	// outage.
	ApplyTimeout time.Duration
	// SummaryInterval is how often an outage is logged while it lasts.
	SummaryInterval time.Duration
	// KnownIDs bounds the msg_ids the queue remembers as existing (about
	// 100 bytes each): beyond it the oldest is forgotten, and an Update or
	// Drop of it asks Exists again.
	KnownIDs int
	// Exists reports whether the database holds msgID; Enqueue calls it
	// for an Update or Drop of a msg_id the queue does not know. Nil: such
	// writes fail with ErrNotFound.
	Exists func(ctx context.Context, msgID string) (bool, error)
	// Unavailable reports whether an error of Apply or Exists means the
	// database cannot be reached (retry later) rather than that it
	// rejected the write. Nil: every error is a rejection.
	Unavailable func(error) bool
	// Logger receives outages and rejected writes. Default: none.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.KnownIDs <= 0 {
		o.KnownIDs = DefaultKnownIDs
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Backlog <= 0 {
		o.Backlog = 4 * o.BatchSize
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = DefaultMaxPendingBytes
	}
	def(&o.FlushInterval, DefaultFlushInterval)
	def(&o.RetryMin, DefaultRetryMin)
	def(&o.RetryMax, max(DefaultRetryMax, o.RetryMin))
	def(&o.ApplyTimeout, DefaultApplyTimeout)
	def(&o.SummaryInterval, DefaultSummaryInterval)
	if o.Unavailable == nil {
		o.Unavailable = func(error) bool { return false }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats are a Queue's counters.
type Stats struct {
	Pending      int   // writes queued or being applied
	PendingBytes int64 // their size, as bounded by MaxPendingBytes
	Applied      uint64
	Rejected     uint64 // writes the database rejected, dropped and logged
	Retries      uint64 // failed Apply calls retried during outages
	Down         bool   // an outage is under way
}

// Queue is the write-behind queue. It is safe for concurrent use.
type Queue struct {
	apply Apply
	opts  Options
	log   *slog.Logger
	after func(time.Duration) <-chan time.Time // time.After; tests replace it

	// ctx is the writer's; canceled when Close gives up.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	known    *knownIDs // recent msg_ids that exist once the queue is applied
	pending  []Op      // queued, not yet taken by the writer
	sizes    []int64   // pending's sizes
	enqueued uint64    // writes ever enqueued
	done     uint64    // writes applied or rejected, a prefix of enqueued
	bytes    int64     // size of the writes enqueued and not done
	syncers  int       // readers waiting in Sync: flush at once
	closed   bool
	down     error         // the last outage error, nil when none
	downAt   time.Time     // when the outage began
	loggedAt time.Time     // when it was last logged
	changed  chan struct{} // closed and replaced when done, down or closed change
	wake     chan struct{} // wakes the writer; capacity 1
	stats    Stats
	exited   chan struct{} // closed when the writer returns

	most int // the writer's: writes per Apply call, cut after a timeout
}

// New starts a queue applying writes with apply.
func New(apply Apply, o Options) *Queue {
	return newQueue(apply, o, time.After)
}

func newQueue(apply Apply, o Options, after func(time.Duration) <-chan time.Time) *Queue {
	o.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{
		apply:   apply,
		opts:    o,
		log:     o.Logger,
		after:   after,
		ctx:     ctx,
		cancel:  cancel,
		known:   newKnownIDs(o.KnownIDs),
		changed: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		exited:  make(chan struct{}),
		most:    o.BatchSize,
	}
	go q.run()
	return q
}

// Unavailable wraps cause as taskdb.ErrUnavailable.
func Unavailable(cause error) error {
	return fmt.Errorf("%w: %w", taskdb.ErrUnavailable, cause)
}

// Enqueue queues op and returns once it is acknowledged: it will be
// applied unless the database rejects it. Add fails with taskdb.ErrExists
// for a msg_id the queue knows; Update and Drop fail with
// taskdb.ErrNotFound for one that neither the queue nor Options.Exists
// knows. While the database is reachable, Enqueue waits for room beyond
// Backlog writes or MaxPendingBytes; during an outage, beyond MaxPending
// writes or MaxPendingBytes it fails with taskdb.ErrUnavailable.
func (q *Queue) Enqueue(ctx context.Context, op Op) error {
	size := sizeOf(op.ID) + sizeOf(op.Record)
	q.mu.Lock()
	defer q.mu.Unlock()
	checked := false
	for {
		if q.closed {
			return taskdb.ErrClosed
		}
		ok := q.known.has(op.ID)
		switch {
		case op.Kind == Add && ok:
			return fmt.Errorf("%s: %w", op.ID, taskdb.ErrExists)
		case op.Kind != Add && !ok && !checked:
			// Not known here: look in the database, once the writes
			// queued before this one are applied.
			q.mu.Unlock()
			found, err := q.exists(ctx, op.ID)
			q.mu.Lock()
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("%s: %w", op.ID, taskdb.ErrNotFound)
			}
			q.known.add(op.ID)
			checked = true
			continue // the queue may have changed meanwhile
		}
		limit := q.opts.MaxPending
		if q.down == nil {
			limit = min(limit, q.opts.Backlog)
		}
		// A write larger than MaxPendingBytes goes alone.
		if q.enqueued-q.done < uint64(limit) && (q.bytes+size <= q.opts.MaxPendingBytes || q.bytes == 0) {
			break
		}
		if q.down != nil {
			return Unavailable(fmt.Errorf("write queue full (%d writes, %d bytes): %w", q.enqueued-q.done, q.bytes, q.down))
		}
		if err := q.waitLocked(ctx); err != nil {
			return err
		}
	}
	switch op.Kind {
	case Add:
		op.known = q.known.add(op.ID)
	case Update:
		if !q.known.has(op.ID) {
			q.known.add(op.ID)
		}
	case Drop:
		q.known.remove(op.ID)
	}
	q.pending = append(q.pending, op)
	q.sizes = append(q.sizes, size)
	q.enqueued++
	q.bytes += size
	if len(q.pending) == 1 || len(q.pending) >= q.opts.BatchSize {
		q.signal()
	}
	return nil
}

// exists syncs, then asks the database about msgID.
func (q *Queue) exists(ctx context.Context, msgID string) (bool, error) {
	if q.opts.Exists == nil {
		return false, nil
	}
	if err := q.Sync(ctx); err != nil {
		return false, err
	}
	found, err := q.opts.Exists(ctx, msgID)
	if err != nil && q.opts.Unavailable(err) {
		return false, Unavailable(err)
	}
	return found, err
}

// Sync returns once every write enqueued before the call is applied or
// rejected. During an outage it fails at once with taskdb.ErrUnavailable;
// after Close, with taskdb.ErrClosed.
func (q *Queue) Sync(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	target := q.enqueued
	q.syncers++
	defer func() { q.syncers-- }()
	for q.done < target {
		if q.closed {
			return taskdb.ErrClosed
		}
		if q.down != nil {
			return Unavailable(q.down)
		}
		q.signal()
		if err := q.waitLocked(ctx); err != nil {
			return err
		}
	}
	if q.closed {
		return taskdb.ErrClosed
	}
	return nil
}

// waitLocked waits, with q.mu unlocked, until the queue's state changes.
func (q *Queue) waitLocked(ctx context.Context) error {
	ch := q.changed
	q.mu.Unlock()
	defer q.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// broadcast wakes the goroutines in waitLocked. Called with q.mu held.
func (q *Queue) broadcast() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// signal wakes the writer.
func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.stats
	s.Pending, s.PendingBytes, s.Down = int(q.enqueued-q.done), q.bytes, q.down != nil
	return s
}

// Close stops accepting writes, applies the queued ones and stops the
// writer. If ctx ends first, it gives up on the writes not applied yet
// and reports how many; during an outage only ctx ends it, so bound it. Calls after the first return taskdb.ErrClosed.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return taskdb.ErrClosed
	}
	q.closed = true
	q.broadcast()
	q.signal()
	q.mu.Unlock()

	var cause error
	select {
	case <-q.exited:
	case <-ctx.Done():
		cause = ctx.Err()
		q.cancel()
		<-q.exited
	}
	q.cancel()
	q.mu.Lock()
	defer q.mu.Unlock()
	lost := q.enqueued - q.done
	if lost == 0 {
		return nil
	}
	if q.down != nil {
		cause = q.down
	}
	err := fmt.Errorf("taskdb: close: %d queued writes not written: %w", lost, cause)
	q.log.Error("closing with unwritten writes", "lost", lost, "err", cause)
	return err
}

// run is the writer: it takes batches and applies them until Close.
func (q *Queue) run() {
	defer close(q.exited)
	for {
		ops, sizes, ok := q.next()
		if !ok {
			return
		}
		if !q.flush(ops, sizes) {
			return
		}
	}
}

// next waits for a batch to be due and takes it, with its ops' sizes. It
// returns false once the queue is closed and empty, or Close gave up.
func (q *Queue) next() ([]Op, []int64, bool) {
	var timer <-chan time.Time
	for {
		q.mu.Lock()
		n := len(q.pending)
		due := n >= q.opts.BatchSize || n > 0 && (q.syncers > 0 || q.closed)
		if n == 0 && q.closed {
			q.mu.Unlock()
			return nil, nil, false
		}
		if due {
			ops, sizes := q.take()
			q.mu.Unlock()
			return ops, sizes, true
		}
		if n > 0 && timer == nil {
			timer = q.after(q.opts.FlushInterval)
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-timer:
			q.mu.Lock()
			ops, sizes := q.take()
			q.mu.Unlock()
			return ops, sizes, true
		case <-q.ctx.Done():
			return nil, nil, false
		}
	}
}

// take removes up to BatchSize ops from the queue. Called with q.mu held.
func (q *Queue) take() ([]Op, []int64) {
	n := min(len(q.pending), q.opts.BatchSize)
	ops, sizes := q.pending[:n:n], q.sizes[:n:n]
	q.pending, q.sizes = q.pending[n:], q.sizes[n:]
	return ops, sizes
}

// flush applies ops, retrying through outages and setting rejected
// writes aside. It returns false if Close gave up.
func (q *Queue) flush(ops []Op, sizes []int64) bool {
	backoff := q.opts.RetryMin
	single := false // isolating a rejected write: one op per call
	for len(ops) > 0 {
		n := min(len(ops), q.most)
		if single {
			n = 1
		}
		ctx, cancel := context.WithTimeout(q.ctx, q.opts.ApplyTimeout)
		applied, err := q.apply(ctx, ops[:n])
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			applied = n
		}
		applied = max(0, min(applied, n))
		q.finish(ops[:applied], sizes[:applied], nil)
		ops, sizes = ops[applied:], sizes[applied:]
		switch {
		case err == nil:
			q.up()
			backoff = q.opts.RetryMin
			q.most = min(q.most+max(1, q.most/4), q.opts.BatchSize)
		case q.ctx.Err() != nil:
			return false
		case timedOut || q.opts.Unavailable(err):
			if timedOut {
				// Too slow, or down: a smaller call may fit in the
				// timeout where the same batch never would.
				q.most = max(1, (n-applied)/2)
			}
			q.failed(err)
			select {
			case <-q.after(backoff):
			case <-q.ctx.Done():
				return false
			}
			backoff = min(2*backoff, q.opts.RetryMax)
		case n-applied > 1:
			q.up()
			single = true
		default:
			q.up()
			q.log.Error("database rejected a write; dropped it", "op", ops[0].Kind.String(), "msg_id", ops[0].ID, "err", err)
			q.finish(ops[:1], sizes[:1], err)
			ops, sizes = ops[1:], sizes[1:]
		}
	}
	return true
}

// finish marks ops done. A rejected Add's msg_id is unknown again,
// unless a later Add of it is queued.
func (q *Queue) finish(ops []Op, sizes []int64, rejected error) {
	if len(ops) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, op := range ops {
		q.bytes -= sizes[i]
		if rejected != nil && op.Kind == Add {
			q.known.undo(op.ID, op.known)
		}
	}
	q.done += uint64(len(ops))
	if rejected != nil {
		q.stats.Rejected += uint64(len(ops))
	} else {
		q.stats.Applied += uint64(len(ops))
	}
	q.broadcast()
}

// failed records a failed Apply during an outage.
func (q *Queue) failed(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	q.stats.Retries++
	pending := q.enqueued - q.done
	switch {
	case q.down == nil:
		q.downAt, q.loggedAt = now, now
		q.log.Warn("database unavailable; buffering writes and retrying",
			"err", err, "pending", pending, "max_pending", q.opts.MaxPending)
	case now.Sub(q.loggedAt) >= q.opts.SummaryInterval:
		q.loggedAt = now
		q.log.Warn("database still unavailable",
			"err", err, "for", now.Sub(q.downAt).Round(time.Second), "pending", pending,
			"pending_bytes", q.bytes, "retries", q.stats.Retries)
	}
	q.down = err
	q.broadcast()
}

// up ends an outage.
func (q *Queue) up() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.down == nil {
		return
	}
	q.log.Info("database reachable again; flushing buffered writes",
		"outage", time.Since(q.downAt).Round(time.Millisecond), "pending", q.enqueued-q.done)
	q.down = nil
	q.broadcast()
}

// sizeOf approximates the memory v holds: its strings and bytes plus a
// word per value.
func sizeOf(v any) int64 {
	const word = 8
	switch v := v.(type) {
	case string:
		return word + int64(len(v))
	case []byte:
		return word + int64(len(v))
	case taskdb.Record:
		return sizeOf(map[string]any(v))
	case map[string]any:
		n := int64(word)
		for k, x := range v {
			n += word + int64(len(k)) + sizeOf(x)
		}
		return n
	case []any:
		n := int64(word)
		for _, x := range v {
			n += sizeOf(x)
		}
		return n
	default:
		return word
	}
}
