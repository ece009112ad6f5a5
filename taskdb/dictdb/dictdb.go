package dictdb

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// Options configures a DB. For the limits, 0 means unlimited; start from
// DefaultOptions for ipyparallel's defaults.
type Options struct {
	// RecordLimit is the number of records kept; beyond it a cull removes
	// max(1, CullFraction·RecordLimit) records.
	RecordLimit int
	// SizeLimit is the number of bytes of buffers and result_buffers
	// kept; beyond it a cull removes records until the total is at most
	// SizeLimit·(1−CullFraction).
	SizeLimit int64
	// CullFraction is the share of a limit one cull frees, in (0, 1].
	// 0 means DefaultCullFraction.
	CullFraction float64
	// Tombstones is how many culled msg_ids are remembered so that reads
	// of them report ErrCulled rather than ErrNotFound. 0 means
	// DefaultTombstones.
	Tombstones int
	// Logger receives cull reports; nil discards them.
	Logger *slog.Logger
}

// Defaults, as in ipyparallel.
const (
	DefaultRecordLimit  = 1024
	DefaultSizeLimit    = 1 << 30
	DefaultCullFraction = 0.1
	DefaultTombstones   = 1 << 16
)

// DefaultOptions returns ipyparallel's limits: 1024 records, 1 GiB of
// buffers, cull fraction 0.1.
func DefaultOptions() Options {
	return Options{RecordLimit: DefaultRecordLimit, SizeLimit: DefaultSizeLimit, CullFraction: DefaultCullFraction}
}

// DB is the in-memory task record database. It is safe for concurrent
// use; reads share a lock, writes take it alone.
type DB struct {
	opts Options
	log  *slog.Logger

	mu          sync.RWMutex // guards every field below
	closed      bool
	seq         uint64
	store       store   // the records
	recs        idIndex // by msg_id
	bySubmitted ordered // records with a submitted time, by it
	pending     ordered // records whose completed is null, by seq
	byClient    bucketIndex
	byEngine    bucketIndex
	extraKeys   map[string]*int // non-schema key → number of records carrying it
	bytes       int64           // buffers + result_buffers of every record
	culled      tombstones
}

var _ taskdb.DB = (*DB)(nil)

// New returns an empty DB.
func New(opts Options) *DB {
	if opts.CullFraction <= 0 || opts.CullFraction > 1 {
		opts.CullFraction = DefaultCullFraction
	}
	if opts.Tombstones <= 0 {
		opts.Tombstones = DefaultTombstones
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db := &DB{
		opts:      opts,
		log:       log,
		extraKeys: make(map[string]*int),
		culled:    newTombstones(opts.Tombstones),
	}
	s := &db.store
	db.recs = newIDIndex(s)
	db.bySubmitted, db.pending = ordered{recs: s, byTime: true}, ordered{recs: s}
	db.byClient = bucketIndex{recs: s, by: make(map[string]*ordered), odd: ordered{recs: s}}
	db.byEngine = bucketIndex{recs: s, by: make(map[string]*ordered), odd: ordered{recs: s}}
	return db
}

// AddRecord implements taskdb.DB.
func (db *DB) AddRecord(ctx context.Context, msgID string, rec taskdb.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e := getEncoder()
	defer e.put()
	built, buf, ext, err := e.newRec(msgID, rec)
	if err != nil {
		return fmt.Errorf("dictdb: add %s: %w", msgID, err)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return taskdb.ErrClosed
	}
	existing, h := db.recs.find(msgID)
	if existing != nil {
		return fmt.Errorf("dictdb: add %s: %w", msgID, taskdb.ErrExists)
	}
	db.seq++
	built.seq = db.seq
	r := db.store.alloc(db.seq)
	*r = built
	db.store.put(r, buf)
	db.store.setExt(r.seq, ext)
	db.insert(r, h, e.indexed)
	db.culled.forget(msgID)
	db.cullCount()
	db.cullSize()
	return nil
}

// GetRecord implements taskdb.DB.
func (db *DB) GetRecord(ctx context.Context, msgID string) (taskdb.Doc, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	r, err := db.lookup(msgID)
	if err != nil {
		return nil, fmt.Errorf("dictdb: get %s: %w", msgID, err)
	}
	d := reader{s: &db.store, r: r, t: new(thawer)}
	return d.thawAll(), nil
}

// UpdateRecord implements taskdb.DB. An update that grows the buffers
// re-checks the size limit, which may cull records, this one included.
func (db *DB) UpdateRecord(ctx context.Context, msgID string, fields taskdb.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e := getEncoder()
	defer e.put()
	if err := e.prepareAll(msgID, fields); err != nil {
		return fmt.Errorf("dictdb: update %s: %w", msgID, err)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	r, err := db.lookup(msgID)
	if err != nil {
		return fmt.Errorf("dictdb: update %s: %w", msgID, err)
	}
	if db.apply(r, e) {
		db.cullSize()
	}
	return nil
}

// DropRecord implements taskdb.DB.
func (db *DB) DropRecord(ctx context.Context, msgID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	r, err := db.lookup(msgID)
	if err != nil {
		return fmt.Errorf("dictdb: drop %s: %w", msgID, err)
	}
	db.delete(r)
	return nil
}

// DropMatchingRecords implements taskdb.DB.
func (db *DB) DropMatchingRecords(ctx context.Context, q *query.Filter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return taskdb.ErrClosed
	}
	for _, r := range db.find(q) {
		db.delete(r)
	}
	return nil
}

// FindRecords implements taskdb.DB.
func (db *DB) FindRecords(ctx context.Context, q *query.Filter, keys []string) ([]taskdb.Doc, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return nil, taskdb.ErrClosed
	}
	for _, k := range keys {
		if !taskdb.IsSchemaKey(k) && db.extraKeys[k] == nil {
			return nil, fmt.Errorf("dictdb: find: %w", taskdb.UnknownKeyError(k))
		}
	}
	hits := db.find(q)
	out := make([]taskdb.Doc, len(hits))
	thaw := func(lo, hi int) {
		d := reader{s: &db.store, t: new(thawer)}
		var sink byte
		for i := lo; i < hi; i++ {
			if (i-lo)%touchBatch == 0 {
				sink ^= db.store.touch(hits[i:min(i+touchBatch, hi)])
			}
			d.r = hits[i]
			if len(keys) == 0 {
				out[i] = d.thawAll()
			} else {
				out[i] = d.project(keys)
			}
			if i == lo {
				d.t.Plan(1, hi-lo-1)
			}
		}
		d.t.sink = sink
	}
	// Copying records out is most of a large read, and the records are
	// only read: spread it over the CPUs, a share each, while the read
	// lock is held.
	workers := max(1, min(runtime.GOMAXPROCS(0), len(hits)/minShare))
	share := (len(hits) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := share; lo < len(hits); lo += share {
		wg.Go(func() { thaw(lo, min(lo+share, len(hits))) })
	}
	thaw(0, min(share, len(hits)))
	wg.Wait()
	return out, nil
}

// minShare is the fewest records a reader copies on a CPU of its own.
const minShare = 512

// History implements taskdb.DB.
func (db *DB) History(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return nil, taskdb.ErrClosed
	}
	ids := make([]string, 0, db.bySubmitted.size())
	for i := range db.bySubmitted.s {
		if r := db.bySubmitted.at(i); r != nil {
			ids = append(ids, db.store.id(r))
		}
	}
	return ids, nil
}

// Close implements taskdb.DB. It frees every record.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return taskdb.ErrClosed
	}
	db.closed = true
	db.store, db.recs, db.extraKeys = store{}, idIndex{}, nil
	db.bySubmitted, db.pending = ordered{}, ordered{}
	db.byClient, db.byEngine = bucketIndex{}, bucketIndex{}
	db.culled = tombstones{}
	return nil
}

// lookup returns the record msgID, or why there is none.
func (db *DB) lookup(msgID string) (*rec, error) {
	if db.closed {
		return nil, taskdb.ErrClosed
	}
	if r := db.recs.get(msgID); r != nil {
		return r, nil
	}
	if db.culled.has(msgID) {
		return nil, taskdb.ErrCulled
	}
	return nil, taskdb.ErrNotFound
}

// insert adds a new record, whose msg_id hashes to h and whose
// client_uuid and engine_uuid are x, to the map and every index.
func (db *DB) insert(r *rec, h uint64, x [2]indexed) {
	db.recs.put(r, h)
	if t := r.times[timeSubmitted]; t != noTime {
		db.bySubmitted.insert(t, r)
	}
	if r.pending() {
		db.pending.insert(int64(r.seq), r)
	}
	db.byClient.add(x[0].v, r, &r.clientKey)
	db.byEngine.add(x[1].v, r, &r.engineKey)
	db.countExtras(db.store.data(r), 1)
	db.bytes += r.size
}

// delete removes a record from the map and every index.
func (db *DB) delete(r *rec) {
	db.recs.del(r)
	if r.pending() {
		db.pending.remove(int64(r.seq), r)
	}
	if t := r.times[timeSubmitted]; t != noTime {
		r.times[timeSubmitted] = noTime // the record is gone: its time entry dies
		db.bySubmitted.remove(t, r)
	}
	d := reader{s: &db.store, r: r}
	at, _, _ := d.layout()
	db.byClient.remove(d.field(slotClientUUID, at[slotClientUUID]), r, r.clientKey)
	db.byEngine.remove(d.field(slotEngineUUID, at[slotEngineUUID]), r, r.engineKey)
	db.countExtras(db.store.data(r), -1)
	db.bytes -= r.size
	db.store.free(r)
}

// apply writes the changes e prepared to a stored record, keeping the
// indexes, and reports whether the record's buffers grew.
func (db *DB) apply(r *rec, e *encoder) (grew bool) {
	for _, c := range e.cs {
		if kindOf(c.slot) == kindTime {
			db.setTime(r, slotTime[c.slot], c.t)
		}
	}
	if len(e.order) == 0 {
		return false
	}
	old := db.store.data(r)
	buf, ext, delta := e.merge(old, db.store.ext[r.seq], func(k string) { db.countExtra(k, 1) })
	d := reader{s: &db.store, r: r}
	d.reindex(&db.byClient, old, e, 0, &r.clientKey)
	d.reindex(&db.byEngine, old, e, 1, &r.engineKey)
	db.store.write(r, buf)
	db.store.setExt(r.seq, ext)
	r.size += delta
	db.bytes += delta
	return delta > 0
}

// reindex moves the record in b, the index of e.indexed[x], to the value
// e gives it, if that changes the value; old is the record's data before
// e, and key that of its entry.
func (d *reader) reindex(b *bucketIndex, old string, e *encoder, x int, key *int64) {
	if !e.indexed[x].set {
		return
	}
	cur := slotDefault[slotClientUUID+x]
	if at := e.replaced[x]; at >= 0 {
		cur, _ = d.value(old, at)
	}
	if v := e.indexed[x].v; !sameIndexed(cur, v) {
		b.remove(cur, d.r, *key)
		b.add(v, d.r, key)
	}
}

// sameIndexed reports whether a client_uuid or engine_uuid write leaves
// the value as it was (the hub sets engine_uuid again with the result),
// so the index entry can stay.
func sameIndexed(cur, v any) bool {
	switch x := v.(type) {
	case nil:
		return cur == nil
	case string:
		s, ok := cur.(string)
		return ok && s == x
	}
	return false
}

// setTime sets time i of a stored record, keeping the indexes.
func (db *DB) setTime(r *rec, i int, t int64) {
	old := r.times[i]
	if old == t {
		return
	}
	switch i {
	case timeSubmitted:
		r.times[i] = t
		if old != noTime {
			db.bySubmitted.remove(old, r)
		}
		if t != noTime {
			db.bySubmitted.insert(t, r)
		}
		return
	case timeCompleted:
		if old == noTime {
			db.pending.remove(int64(r.seq), r)
		} else if t == noTime {
			db.pending.insert(int64(r.seq), r)
		}
	}
	r.times[i] = t
}

// countExtras adds delta to the count of each extra key of data.
func (db *DB) countExtras(data string, delta int) {
	for i := 0; i < len(data); {
		slot, k, v := dataEntry(data, i)
		i = skip(data, v)
		if slot == extraSlot {
			db.countExtra(k, delta)
		}
	}
}

// countExtra adds delta to the count of extra key k. The map holds a
// copy of k and counts behind pointers: assigning to a string key
// replaces the stored key, and a key that is a substring of a record's
// data would keep that data alive after the record is dropped or
// updated.
func (db *DB) countExtra(k string, delta int) {
	n := db.extraKeys[k]
	if n == nil {
		n = new(int)
		db.extraKeys[strings.Clone(k)] = n
	}
	if *n += delta; *n == 0 {
		delete(db.extraKeys, k)
	}
}
