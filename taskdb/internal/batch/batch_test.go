package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
)

var errDown = errors.New("connection refused")

// fakeDB is the database behind the queue in these tests: a set of
// msg_ids that rejects adding one twice and updating or dropping a
// missing one, like a table with a primary key.
type fakeDB struct {
	mu        sync.Mutex
	down      bool
	partial   bool          // report the ops applied before a rejection (else all or nothing)
	gate      chan struct{} // if set, every apply takes a token first
	slowAbove int           // if set, a call with more ops blocks until its context ends
	ids       map[string]bool
	log       []string // "kind id" of every applied op, in order
	batches   []int    // sizes of the calls, failed ones included
}

func newFake(ids ...string) *fakeDB {
	f := &fakeDB{ids: make(map[string]bool)}
	for _, id := range ids {
		f.ids[id] = true
	}
	return f
}

func (f *fakeDB) apply(ctx context.Context, ops []Op) (int, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if f.slowAbove > 0 && len(ops) > f.slowAbove {
		f.mu.Lock()
		f.batches = append(f.batches, len(ops))
		f.mu.Unlock()
		<-ctx.Done()
		return 0, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, len(ops))
	if f.down {
		return 0, errDown
	}
	ids := maps(f.ids)
	var log []string
	for i, op := range ops {
		var err error
		switch {
		case op.Kind == Add && ids[op.ID]:
			err = fmt.Errorf("duplicate key %s", op.ID)
		case op.Kind != Add && !ids[op.ID]:
			err = fmt.Errorf("no row %s", op.ID)
		}
		if err != nil {
			if !f.partial {
				return 0, err
			}
			f.ids, f.log = ids, append(f.log, log...)
			return i, err
		}
		ids[op.ID] = op.Kind != Drop
		if op.Kind == Drop {
			delete(ids, op.ID)
		}
		log = append(log, op.Kind.String()+" "+op.ID)
	}
	f.ids, f.log = ids, append(f.log, log...)
	return len(ops), nil
}

func maps(m map[string]bool) map[string]bool {
	c := make(map[string]bool, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (f *fakeDB) exists(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return false, errDown
	}
	return f.ids[id], nil
}

func (f *fakeDB) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *fakeDB) applied() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// clock hands the retry timers to the test, which fires them; flush
// timers never fire, so only BatchSize, Sync and Close flush.
type clock struct {
	retries chan retry
}

type retry struct {
	d    time.Duration
	fire chan time.Time
}

const never = time.Hour

func (c *clock) after(d time.Duration) <-chan time.Time {
	if d == never {
		return nil
	}
	r := retry{d, make(chan time.Time, 1)}
	c.retries <- r
	return r.fire
}

// syncBuffer is a log destination safe for the writer goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	q   *Queue
	db  *fakeDB
	clk *clock
	log *syncBuffer
}

// start runs a queue over db with a fake clock. Options default to
// batches of 4 and a flush interval that never elapses.
func start(t *testing.T, db *fakeDB, o Options) *harness {
	t.Helper()
	h := &harness{db: db, clk: &clock{retries: make(chan retry, 100)}, log: &syncBuffer{}}
	if o.BatchSize == 0 {
		o.BatchSize = 4
	}
	o.FlushInterval = never
	if o.RetryMin == 0 {
		o.RetryMin, o.RetryMax = time.Millisecond, 4*time.Millisecond
	}
	o.Exists = db.exists
	o.Unavailable = func(err error) bool { return errors.Is(err, errDown) }
	o.Logger = slog.New(slog.NewTextHandler(h.log, nil))
	h.q = newQueue(db.apply, o, h.clk.after)
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		h.q.Close(ctx)
	})
	return h
}

func (h *harness) enqueue(t *testing.T, kind Kind, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := h.q.Enqueue(t.Context(), Op{Kind: kind, ID: id, Record: taskdb.Record{"stdout": id}}); err != nil {
			t.Fatalf("Enqueue(%v %s): %v", kind, id, err)
		}
	}
}

func adds(ids ...string) []string {
	var s []string
	for _, id := range ids {
		s = append(s, "add "+id)
	}
	return s
}

func TestBatches(t *testing.T) {
	h := start(t, newFake(), Options{})
	ids := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}
	h.enqueue(t, Add, ids...)
	if err := h.q.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Full batches go at once; Sync flushes the rest.
	if got, want := h.db.batches, []int{4, 4, 1}; !slices.Equal(got, want) {
		t.Errorf("batches %v, want %v", got, want)
	}
	if got, want := h.db.applied(), adds(ids...); !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	if s := h.q.Stats(); s.Applied != 9 || s.Pending != 0 || s.PendingBytes != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestFlushInterval(t *testing.T) {
	db := newFake()
	clk := &clock{retries: make(chan retry, 1)}
	q := newQueue(db.apply, Options{BatchSize: 4, FlushInterval: 7 * time.Millisecond}, clk.after)
	t.Cleanup(func() { q.Close(context.Background()) })
	if err := q.Enqueue(t.Context(), Op{Kind: Add, ID: "a"}); err != nil {
		t.Fatal(err)
	}
	r := <-clk.retries
	if r.d != 7*time.Millisecond {
		t.Fatalf("timer for %v, want the flush interval", r.d)
	}
	if got := db.applied(); len(got) != 0 {
		t.Fatalf("applied %v before the interval elapsed", got)
	}
	r.fire <- time.Time{}
	if err := q.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := db.batches; !slices.Equal(got, []int{1}) {
		t.Errorf("batches %v, want [1]", got)
	}
}

func TestKnownIDs(t *testing.T) {
	h := start(t, newFake("old"), Options{})
	ctx := t.Context()
	h.enqueue(t, Add, "a")
	for _, c := range []struct {
		kind Kind
		id   string
		want error
	}{
		{Add, "a", taskdb.ErrExists},
		{Update, "missing", taskdb.ErrNotFound},
		{Drop, "missing", taskdb.ErrNotFound},
		{Update, "old", nil}, // in the database, not yet known
		{Update, "a", nil},
		{Drop, "a", nil},
		{Update, "a", taskdb.ErrNotFound},
		{Add, "a", nil},
	} {
		err := h.q.Enqueue(ctx, Op{Kind: c.kind, ID: c.id})
		if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("%v %s: %v, want %v", c.kind, c.id, err, c.want)
		}
	}
	if err := h.q.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"add a", "update old", "update a", "drop a", "add a"}
	if got := h.db.applied(); !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
}

func TestRejected(t *testing.T) {
	for _, partial := range []bool{false, true} {
		t.Run(fmt.Sprintf("partial=%v", partial), func(t *testing.T) {
			db := newFake("dup") // added by another hub
			db.partial = partial
			h := start(t, db, Options{})
			h.enqueue(t, Add, "a", "dup", "b", "c", "d")
			h.enqueue(t, Update, "dup") // known here now, applied to the other hub's record
			if err := h.q.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			want := append(adds("a", "b", "c", "d"), "update dup")
			if got := db.applied(); !slices.Equal(got, want) {
				t.Errorf("applied %v, want %v", got, want)
			}
			if s := h.q.Stats(); s.Rejected != 1 || s.Applied != 5 || s.Pending != 0 {
				t.Errorf("stats %+v, want 1 rejected, 5 applied", s)
			}
			if log := h.log.String(); !strings.Contains(log, "msg_id=dup") || !strings.Contains(log, "duplicate key dup") {
				t.Errorf("log does not name the rejected write:\n%s", log)
			}
			// The rejected Add's msg_id is unknown again.
			if err := h.q.Enqueue(t.Context(), Op{Kind: Add, ID: "dup"}); err != nil {
				t.Errorf("re-adding the rejected msg_id: %v", err)
			}
		})
	}
}

// TestRejectedReAdded checks that a rejected Add leaves known a later Add
// of the same msg_id queued after a Drop: adding it a third time is
// ErrExists, not a write the database would reject.
func TestRejectedReAdded(t *testing.T) {
	h := start(t, newFake("dup"), Options{})
	h.enqueue(t, Add, "dup") // rejected: another hub added it
	h.enqueue(t, Drop, "dup")
	h.enqueue(t, Add, "dup")
	if err := h.q.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := h.db.applied(), []string{"drop dup", "add dup"}; !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	if err := h.q.Enqueue(t.Context(), Op{Kind: Add, ID: "dup"}); !errors.Is(err, taskdb.ErrExists) {
		t.Errorf("adding the re-added msg_id again: %v, want ErrExists", err)
	}
}

func TestOutage(t *testing.T) {
	db := newFake()
	db.setDown(true)
	// Beyond the backlog, writes wait until the outage is known, then
	// are buffered up to MaxPending.
	h := start(t, db, Options{BatchSize: 2, MaxPending: 5, Backlog: 2})
	ctx := t.Context()
	h.enqueue(t, Add, "a", "b", "c", "d", "e")

	err := h.q.Sync(ctx)
	if !errors.Is(err, taskdb.ErrUnavailable) || !errors.Is(err, errDown) {
		t.Fatalf("Sync during the outage: %v, want ErrUnavailable wrapping the cause", err)
	}
	err = h.q.Enqueue(ctx, Op{Kind: Add, ID: "f"})
	if !errors.Is(err, taskdb.ErrUnavailable) || !strings.Contains(err.Error(), "write queue full (5 writes") {
		t.Fatalf("Enqueue past the bound: %v, want ErrUnavailable: write queue full", err)
	}
	err = h.q.Enqueue(ctx, Op{Kind: Update, ID: "old"})
	if !errors.Is(err, taskdb.ErrUnavailable) {
		t.Fatalf("Update of an unknown msg_id during the outage: %v, want ErrUnavailable", err)
	}
	// Backoff doubles up to RetryMax; the database is back for the last retry.
	backoffs := []time.Duration{1, 2, 4, 4}
	for i, want := range backoffs {
		r := <-h.clk.retries
		if r.d != want*time.Millisecond {
			t.Errorf("retry after %v, want %v", r.d, want*time.Millisecond)
		}
		if i == len(backoffs)-1 {
			db.setDown(false)
		}
		r.fire <- time.Time{}
	}
	if err := h.q.Close(ctx); err != nil {
		t.Fatalf("Close after recovery: %v", err)
	}
	if got, want := db.applied(), adds("a", "b", "c", "d", "e"); !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	log := h.log.String()
	for _, want := range []string{"database unavailable; buffering writes", "database reachable again"} {
		if strings.Count(log, want) != 1 {
			t.Errorf("log has %q %d times, want once:\n%s", want, strings.Count(log, want), log)
		}
	}
	if s := h.q.Stats(); s.Retries != 4 || s.Down {
		t.Errorf("stats %+v, want 4 retries, up", s)
	}
}

func TestBoundBytes(t *testing.T) {
	db := newFake()
	db.setDown(true)
	h := start(t, db, Options{MaxPendingBytes: 1000})
	ctx := t.Context()
	big := taskdb.Record{"buffers": []any{make([]byte, 600)}}
	if err := h.q.Enqueue(ctx, Op{Kind: Add, ID: "a", Record: big}); err != nil {
		t.Fatal(err)
	}
	if err := h.q.Sync(ctx); !errors.Is(err, taskdb.ErrUnavailable) {
		t.Fatalf("Sync: %v, want ErrUnavailable", err)
	}
	if err := h.q.Enqueue(ctx, Op{Kind: Add, ID: "b", Record: big}); !errors.Is(err, taskdb.ErrUnavailable) {
		t.Fatalf("Enqueue past MaxPendingBytes: %v, want ErrUnavailable", err)
	}
	h.enqueue(t, Add, "c") // small writes still fit
}

// A write larger than MaxPendingBytes is accepted into an empty queue.
func TestOversizedWrite(t *testing.T) {
	h := start(t, newFake(), Options{MaxPendingBytes: 100})
	big := taskdb.Record{"buffers": []any{make([]byte, 600)}}
	if err := h.q.Enqueue(t.Context(), Op{Kind: Add, ID: "a", Record: big}); err != nil {
		t.Fatal(err)
	}
	if err := h.q.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := h.q.Stats(); s.Applied != 1 || s.PendingBytes != 0 {
		t.Errorf("stats %+v", s)
	}
}

// While the database is reachable, a queue holding Backlog writes waits
// for room.
func TestBacklogWaits(t *testing.T) {
	db := newFake()
	db.gate = make(chan struct{})
	h := start(t, db, Options{BatchSize: 1, Backlog: 2})
	h.enqueue(t, Add, "a", "b") // a is being applied, b queued
	errc := make(chan error)
	go func() { errc <- h.q.Enqueue(context.Background(), Op{Kind: Add, ID: "c"}) }()
	close(db.gate)
	if err := <-errc; err != nil {
		t.Fatalf("Enqueue beyond the backlog: %v, want it to wait", err)
	}
	if err := h.q.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := db.applied(), adds("a", "b", "c"); !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
}

func TestApplyTimeout(t *testing.T) {
	db := newFake()
	db.gate = make(chan struct{}) // apply blocks until its context ends
	h := start(t, db, Options{ApplyTimeout: time.Millisecond})
	h.enqueue(t, Add, "a")
	err := h.q.Sync(t.Context())
	if !errors.Is(err, taskdb.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync: %v, want ErrUnavailable wrapping the deadline", err)
	}
}

// TestApplyTimeoutShrinks: a batch that takes longer than ApplyTimeout
// on a live database is retried in halves until calls fit, and nothing
// is lost or reordered.
func TestApplyTimeoutShrinks(t *testing.T) {
	db := newFake()
	db.slowAbove = 2
	h := start(t, db, Options{BatchSize: 8, ApplyTimeout: 5 * time.Millisecond})
	h.enqueue(t, Add, "a", "b", "c", "d", "e", "f", "g", "h") // the 8th write starts a batch
	want := adds("a", "b", "c", "d", "e", "f", "g", "h")
	for deadline := time.Now().Add(5 * time.Second); !slices.Equal(db.applied(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("applied %v after 5 s, want %v", db.applied(), want)
		}
		select {
		case r := <-h.clk.retries:
			r.fire <- time.Time{}
		case <-time.After(time.Millisecond):
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if !slices.Equal(db.batches[:3], []int{8, 4, 2}) {
		t.Errorf("call sizes %v, want 8, 4, 2 first", db.batches)
	}
}

func TestClose(t *testing.T) {
	t.Run("flushes", func(t *testing.T) {
		h := start(t, newFake(), Options{})
		h.enqueue(t, Add, "a", "b", "c")
		if err := h.q.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := h.db.applied(); !slices.Equal(got, adds("a", "b", "c")) {
			t.Errorf("applied %v", got)
		}
		ctx := t.Context()
		for name, err := range map[string]error{
			"Enqueue": h.q.Enqueue(ctx, Op{Kind: Add, ID: "d"}),
			"Sync":    h.q.Sync(ctx),
			"Close":   h.q.Close(ctx),
		} {
			if !errors.Is(err, taskdb.ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", name, err)
			}
		}
	})
	t.Run("gives up", func(t *testing.T) {
		db := newFake()
		db.setDown(true)
		h := start(t, db, Options{})
		h.enqueue(t, Add, "a", "b")
		if err := h.q.Sync(t.Context()); !errors.Is(err, taskdb.ErrUnavailable) {
			t.Fatalf("Sync: %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := h.q.Close(ctx)
		if err == nil || !strings.Contains(err.Error(), "2 queued writes not written") || !errors.Is(err, errDown) {
			t.Errorf("Close: %v, want 2 writes not written, caused by the outage", err)
		}
	})
}

// Concurrent writers and readers, through an outage: every acknowledged
// write is applied once, in each writer's order.
func TestConcurrent(t *testing.T) {
	db := newFake()
	h := start(t, db, Options{BatchSize: 16, RetryMin: time.Millisecond})
	ctx := t.Context()
	const writers, each = 8, 100
	go func() {
		// One outage, retried with real timers.
		db.setDown(true)
		for r := range h.clk.retries {
			db.setDown(false)
			r.fire <- time.Time{}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				for _, k := range []Kind{Add, Update} {
					if err := h.q.Enqueue(ctx, Op{Kind: k, ID: id}); err != nil {
						t.Errorf("%v %s: %v", k, id, err)
					}
				}
				if i%10 == 0 {
					if err := h.q.Sync(ctx); err != nil && !errors.Is(err, taskdb.ErrUnavailable) {
						t.Errorf("Sync: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := h.q.Close(ctx); err != nil {
		t.Fatal(err)
	}
	close(h.clk.retries)
	got := db.applied()
	if len(got) != 2*writers*each {
		t.Fatalf("%d writes applied, want %d", len(got), 2*writers*each)
	}
	pos := make(map[string]int)
	for i, s := range got {
		pos[s] = i
	}
	for w := range writers {
		for i := range each {
			id := fmt.Sprintf("w%d-%d", w, i)
			if pos["add "+id] >= pos["update "+id] {
				t.Fatalf("%s updated before added", id)
			}
		}
	}
}

func TestSizeOf(t *testing.T) {
	for _, c := range []struct {
		v    any
		want int64
	}{
		{nil, 8},
		{"abc", 11},
		{[]byte{1, 2}, 10},
		{taskdb.Record{"k": "v"}, 8 + 8 + 1 + 9},
		{[]any{int64(1), "xy"}, 8 + 8 + 10},
	} {
		if got := sizeOf(c.v); got != c.want {
			t.Errorf("sizeOf(%v) = %d, want %d", c.v, got, c.want)
		}
	}
}

// TestKnownIDsBounded: the queue remembers the last KnownIDs msg_ids; an
// update of an older one asks the database, and memory stays bounded.
func TestKnownIDsBounded(t *testing.T) {
	h := start(t, newFake(), Options{KnownIDs: 3})
	h.enqueue(t, Add, "a", "b", "c", "d", "e")
	if h.q.known.has("a") || h.q.known.has("b") || !h.q.known.has("e") || len(h.q.known.ids) != 3 {
		t.Fatalf("known %v, want the last 3", h.q.known.ids)
	}
	h.enqueue(t, Update, "a") // forgotten: found through Exists, once applied
	if !h.q.known.has("a") {
		t.Error("a found in the database is not remembered again")
	}
	if err := h.q.Enqueue(t.Context(), Op{Kind: Update, ID: "zz"}); !errors.Is(err, taskdb.ErrNotFound) {
		t.Errorf("update of an id nowhere: %v, want ErrNotFound", err)
	}
	for i := range 1000 {
		id := fmt.Sprintf("x%d", i)
		h.enqueue(t, Add, id)
		h.enqueue(t, Drop, id)
		h.enqueue(t, Add, id)
	}
	if n, r := len(h.q.known.ids), len(h.q.known.ring)-h.q.known.head; n != 3 || r > 2*3+64 {
		t.Errorf("after 3000 writes: %d ids, %d ring entries; want 3 and a bounded ring", n, r)
	}
}

func TestKnownIDsSet(t *testing.T) {
	k := newKnownIDs(2)
	k.add("a")
	k.add("b")
	k.remove("a")
	k.add("c")
	k.add("a") // re-added: the stale entry of its first add must not evict it
	if !k.has("a") || !k.has("c") || k.has("b") || len(k.ids) != 2 {
		t.Errorf("ids %v, want a and c", k.ids)
	}
}
