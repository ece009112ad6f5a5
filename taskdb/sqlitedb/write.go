package sqlitedb

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/internal/codec"
	"github.com/taskhub/taskhub/taskdb/query"
)

type opKind int

const (
	opAdd opKind = iota
	opUpdate
	opDrop
	opFlush // commit now; done reports when everything before it is committed
	opGet   // read row into rec on the writer's connection, which sees the open batch
)

// op is one write queued for the writer goroutine.
type op struct {
	kind  opKind
	seq   uint64 // position in the queue; 0 for opFlush
	id    string
	row   int64      // opUpdate, opGet: the row's seq
	rows  []int64    // opDrop: the rows' seqs
	left  int        // opDrop, after an error: rows[left:] are still stored
	cols  uint64     // opUpdate: bit i set when column i is set (colDoc: by patch)
	args  []any      // opAdd: seq and every column; opUpdate: the set typed columns, in order
	patch []field    // opUpdate: the doc keys set, in Doc order
	done  chan error // SyncFull writes and flushes; nil otherwise
	err   error      // set when the writer dropped this op
	rec   taskdb.Doc // opGet: the record read
	undo  func()     // opUpdate, opDrop: restores the catalog, under idsMu, if SQLite rejects the write
	size  int64      // bytes held against DB.queueBytes until committed
}

// opSize is the bytes of strings and blobs in args.
func opSize(args []any) int64 {
	var n int64
	for _, a := range args {
		switch x := a.(type) {
		case string:
			n += int64(len(x))
		case []byte:
			n += int64(len(x))
		}
	}
	return n
}

// row turns a record's values into column values: the typed columns,
// and the other keys encoded for the doc column.
type row struct {
	cols   [len(columns)]any
	set    uint64                       // bit i: cols[i] was set
	buf    []byte                       // the encoded values of the doc keys
	schema [len(taskdb.SchemaKeys)]span // where schema key i's value is in buf
	inDoc  uint32                       // bit i: schema[i] is set
	extras []span                       // the other keys
}

type span struct {
	key    string
	lo, hi int
}

// keyPlace says where a schema key goes: its typed column, or -1 and its
// rank in the doc.
type keyPlace struct{ col, rank int }

// keyPlaces maps every schema key to its place; other keys go in the
// doc with rank codec.ExtraRank.
var keyPlaces = func() map[string]keyPlace {
	m := make(map[string]keyPlace, len(taskdb.SchemaKeys))
	for _, k := range taskdb.SchemaKeys {
		c, ok := columnIndex[k]
		if !ok {
			c = -1
		}
		m[k] = keyPlace{c, codec.Rank(k)}
	}
	return m
}()

// bufPool holds the scratch buffers rows encode doc values into: a
// row's doc is copied out of its buffer once encoded.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooled is the largest scratch buffer kept for reuse.
const maxPooled = 64 << 10

// scratch gives r a pooled buffer; release returns it.
func (r *row) scratch() *[]byte {
	p := bufPool.Get().(*[]byte)
	r.buf = (*p)[:0]
	return p
}

// release returns the buffer scratch gave, once nothing refers to it.
func (r *row) release(p *[]byte) {
	if cap(r.buf) <= maxPooled {
		*p = r.buf[:0]
		bufPool.Put(p)
	}
	r.buf = nil
}

// put sets key k to v, normalizing v (taskdb.Normalize) if it is not
// canonical already.
func (r *row) put(k string, v any) error {
	place, ok := keyPlaces[k]
	if !ok {
		place = keyPlace{-1, codec.ExtraRank}
	}
	if i := place.col; i >= 0 {
		x, err := columnArg(k, columns[i], v)
		if err != nil {
			return err
		}
		r.cols[i] = x
		r.set |= 1 << i
		return nil
	}
	lo := len(r.buf)
	var err error
	if r.buf, err = codec.Append(r.buf, v); errors.Is(err, codec.ErrNotCanonical) {
		if v, err = taskdb.Normalize(k, v); err != nil {
			return err
		}
		r.buf, err = codec.Append(r.buf[:lo], v)
	}
	if err != nil {
		return fmt.Errorf("%w: key %q: %v", taskdb.ErrInvalidRecord, k, err)
	}
	s := span{k, lo, len(r.buf)}
	if i := place.rank; i < codec.ExtraRank {
		r.schema[i] = s
		r.inDoc |= 1 << i
	} else {
		r.extras = append(r.extras, s)
	}
	return nil
}

// fields appends to dst the doc keys with their encoded values, in Doc
// order. The values are slices of vals: r.buf or a copy of it.
func (r *row) fields(dst []field, vals []byte) []field {
	fs := slices.Grow(dst, bits.OnesCount32(r.inDoc)+len(r.extras))
	for i, s := range r.schema {
		if r.inDoc&(1<<i) != 0 {
			fs = append(fs, field{s.key, i, vals[s.lo:s.hi]})
		}
	}
	slices.SortFunc(r.extras, func(a, b span) int { return strings.Compare(a.key, b.key) })
	for _, s := range r.extras {
		fs = append(fs, field{s.key, codec.ExtraRank, vals[s.lo:s.hi]})
	}
	return fs
}

// patch returns the doc keys as a patch for mergeDoc, their values in a
// copy of r.buf, or nil if there are none.
func (r *row) patch() []field {
	if r.inDoc == 0 && len(r.extras) == 0 {
		return nil
	}
	return r.fields(nil, bytes.Clone(r.buf))
}

// putRecord puts every key of rec, checking that a msg_id key matches
// msgID.
func (r *row) putRecord(msgID string, rec taskdb.Record) error {
	for k, v := range rec {
		if k == taskdb.KeyMsgID {
			v, err := taskdb.Normalize(k, v)
			if err != nil {
				return err
			}
			if v != msgID {
				return fmt.Errorf("%w: msg_id %v differs from the record's id", taskdb.ErrInvalidRecord, v)
			}
			continue
		}
		if err := r.put(k, v); err != nil {
			return err
		}
	}
	return nil
}

// insertArgs returns the values of a new row's columns, with args[0]
// left for its seq: typed columns not set are null (the default of every
// typed key).
func (r *row) insertArgs(msgID string) []any {
	args := make([]any, colDoc+2)
	copy(args[1:], r.cols[:])
	args[1] = msgID
	var buf [mergeFields]field
	fs := r.fields(buf[:0], r.buf)
	args[1+colDoc] = appendDoc(make([]byte, 0, docSize(len(r.buf), fs)), fs)
	return args
}

// docSize bounds the size of a doc of fs, whose values take n bytes.
func docSize(n int, fs []field) int {
	n += 5
	for _, f := range fs {
		n += len(f.key) + 5
	}
	return n
}

// AddRecord stores a copy of rec. It returns ErrExists, ErrInvalidRecord,
// ErrClosed or ctx's error. While commits are failing (disk full), writes
// are refused with an error. With SyncFull it returns once the record is
// on disk, or with an error if that commit failed: the write then stays
// queued and is retried until it commits or Close gives up.
func (db *DB) AddRecord(ctx context.Context, msgID string, rec taskdb.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var r row
	defer r.release(r.scratch())
	if err := r.putRecord(msgID, rec); err != nil {
		return fmt.Errorf("sqlitedb: add %s: %w", msgID, err)
	}
	args := r.insertArgs(msgID)
	e := entry{
		id:      msgID,
		sub:     noTime,
		client:  identOf(r.cols[colClient]),
		engine:  identOf(r.cols[colEngine]),
		pending: r.cols[colCompleted] == nil,
	}
	if t, ok := r.cols[colSubmitted].(int64); ok {
		e.sub = t
	}
	o := &op{kind: opAdd, id: msgID, size: opSize(args)}
	return db.enqueue(ctx, o,
		func() error {
			if db.cat.has(msgID) {
				return fmt.Errorf("sqlitedb: add %s: %w", msgID, taskdb.ErrExists)
			}
			args[0] = db.cat.nextSeq
			o.args = args
			return nil
		},
		func() {
			e.last = o.seq
			db.cat.add(e)
		})
}

// UpdateRecord replaces the top-level keys of fields in the record. It
// returns ErrNotFound, ErrInvalidRecord, ErrClosed or ctx's error, and
// failing commits as AddRecord does.
func (db *DB) UpdateRecord(ctx context.Context, msgID string, fields taskdb.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var r row
	defer r.release(r.scratch())
	if err := r.putRecord(msgID, fields); err != nil {
		return fmt.Errorf("sqlitedb: update %s: %w", msgID, err)
	}
	o := &op{kind: opUpdate, id: msgID, cols: r.set, patch: r.patch()}
	o.args = make([]any, 0, bits.OnesCount64(r.set))
	for i := range colDoc {
		if r.set&(1<<i) != 0 {
			o.args = append(o.args, r.cols[i])
		}
	}
	o.size = opSize(o.args)
	if o.patch != nil { // merged into the stored doc by the writer's UPDATE
		o.cols |= 1 << colDoc
		o.size += int64(len(r.buf))
	}
	exists := func() error {
		e := db.cat.ids[msgID]
		if e == nil {
			return fmt.Errorf("sqlitedb: update %s: %w", msgID, taskdb.ErrNotFound)
		}
		o.row = e.seq
		return nil
	}
	if o.cols == 0 {
		return db.locked(exists)
	}
	sub := noTime
	if t, ok := r.cols[colSubmitted].(int64); ok {
		sub = t
	}
	return db.enqueue(ctx, o, exists, func() {
		e := db.cat.ids[msgID]
		prev := *e
		o.undo = func() {
			// Only if no later write to the record changed the entry
			// since: that one may have set the same keys. The entry then
			// keeps this write's values for the keys only it set, until
			// a reopen reloads the catalog.
			if db.cat.ids[msgID] == e && e.last == o.seq {
				e.client, e.engine, e.pending = prev.client, prev.engine, prev.pending
				db.cat.setSubmitted(msgID, prev.sub)
			}
		}
		e.last = o.seq
		if r.set&(1<<colClient) != 0 {
			e.client = identOf(r.cols[colClient])
		}
		if r.set&(1<<colEngine) != 0 {
			e.engine = identOf(r.cols[colEngine])
		}
		if r.set&(1<<colCompleted) != 0 {
			e.pending = r.cols[colCompleted] == nil
		}
		if r.set&(1<<colSubmitted) != 0 {
			db.cat.setSubmitted(msgID, sub)
		}
	})
}

// DropRecord removes the record. It returns ErrNotFound, ErrClosed or
// ctx's error, and failing commits as AddRecord does.
func (db *DB) DropRecord(ctx context.Context, msgID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{kind: opDrop, id: msgID}
	return db.enqueue(ctx, o,
		func() error {
			e := db.cat.ids[msgID]
			if e == nil {
				return fmt.Errorf("sqlitedb: drop %s: %w", msgID, taskdb.ErrNotFound)
			}
			o.rows = []int64{e.seq}
			return nil
		},
		func() {
			e := db.cat.drop(msgID)
			o.undo = func() { db.cat.undrop(e) }
		})
}

// DropMatchingRecords removes every record q matches. Records written
// concurrently with the call may or may not be removed.
func (db *DB) DropMatchingRecords(ctx context.Context, q *query.Filter) error {
	rs, err := db.find(ctx, q, []string{taskdb.KeyMsgID})
	if err != nil {
		return fmt.Errorf("sqlitedb: drop matching: %w", err)
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r[0].Value.(string) // msg_id comes first
	}
	_, err = db.dropIDs(ctx, ids, nil)
	return err
}

// dropIDs removes those of ids that still exist, and that still accepts
// if it is not nil, and returns their number.
func (db *DB) dropIDs(ctx context.Context, ids []string, still func(*entry) bool) (int, error) {
	o := &op{kind: opDrop}
	var live []string
	err := db.enqueue(ctx, o,
		func() error {
			for _, id := range ids {
				if e := db.cat.ids[id]; e != nil && (still == nil || still(e)) {
					live = append(live, id)
					o.rows = append(o.rows, e.seq)
				}
			}
			return nil
		},
		func() {
			es := make([]*entry, len(live))
			for i, id := range live {
				es[i] = db.cat.drop(id)
			}
			o.undo = func() {
				for _, e := range es[o.left:] {
					db.cat.undrop(e)
				}
			}
		})
	if err != nil {
		return 0, err
	}
	return len(live), nil
}

// locked runs f under idsMu unless the DB is closed.
func (db *DB) locked(f func() error) error {
	db.idsMu.Lock()
	defer db.idsMu.Unlock()
	if db.closed.Load() {
		return taskdb.ErrClosed
	}
	return f()
}

// enqueue runs check (which reads cat and may fill in o), queues o and
// then runs commit (which updates cat), all under idsMu so that ops reach
// the writer in the order cat changed. It waits for room in the queue
// before taking idsMu, never while holding it. With SyncFull it waits for
// the commit.
func (db *DB) enqueue(ctx context.Context, o *op, check func() error, commit func()) error {
	var done chan error // o.done belongs to the writer once o is queued
	if db.opts.Sync == SyncFull {
		done = make(chan error, 1)
		o.done = done
	}
	o.size = min(o.size, db.maxBytes)
	if err := db.reserve(ctx, o.size); err != nil {
		return err
	}
	queued := false
	defer func() {
		if !queued {
			db.queueBytes.Release(o.size)
		}
	}()
	err := db.send(ctx, o, func() error {
		if e := db.failing.Load(); e != nil {
			return fmt.Errorf("sqlitedb: write not stored, commits are failing: %w", *e)
		}
		if err := check(); err != nil {
			return err
		}
		o.seq = db.queued.Load() + 1
		db.queued.Store(o.seq)
		commit()
		queued = true
		return nil
	})
	if err != nil || done == nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done(): // the write stays queued and will be committed
		return ctx.Err()
	}
}

// send queues o once prepare, run under idsMu, succeeds. It first takes
// a slot of the queue (waiting while it is full), so that the send under
// idsMu never blocks: the writer, which may need idsMu, keeps draining.
func (db *DB) send(ctx context.Context, o *op, prepare func() error) error {
	select {
	case db.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-db.stop:
		return taskdb.ErrClosed
	}
	err := db.locked(func() error {
		if err := prepare(); err != nil {
			return err
		}
		db.ops <- o // a slot is held: there is room
		return nil
	})
	if err != nil {
		<-db.slots
	}
	return err
}

// reserve takes n bytes of the queue's budget, waiting for commits to
// free them. It fails at once while commits are failing (they free
// nothing) and when the DB closes.
func (db *DB) reserve(ctx context.Context, n int64) error {
	if n == 0 || db.queueBytes.TryAcquire(n) {
		return nil
	}
	if e := db.failing.Load(); e != nil {
		return fmt.Errorf("sqlitedb: write not stored, commits are failing: %w", *e)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-db.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := db.queueBytes.Acquire(ctx, n); err != nil {
		if db.closing.Load() {
			return taskdb.ErrClosed
		}
		return err
	}
	return nil
}

// sync waits until every write queued before the call is committed, so a
// caller reads its own writes.
func (db *DB) sync(ctx context.Context) error {
	if db.committed.Load() >= db.queued.Load() {
		return nil
	}
	if e := db.failing.Load(); e != nil { // the writer is retrying: do not queue behind it
		return fmt.Errorf("sqlitedb: queued writes cannot be committed: %w", *e)
	}
	return db.ask(ctx, &op{kind: opFlush, done: make(chan error, 1)})
}

// ask queues o, which changes nothing (a flush or a read), and waits for
// the writer's answer on o.done.
func (db *DB) ask(ctx context.Context, o *op) error {
	done := o.done // o.done belongs to the writer once o is queued
	if err := db.send(ctx, o, func() error { return nil }); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// getQueued reads a record that has queued writes: the writer reads it
// in queue order on its connection, which sees them before they commit,
// so a read does not force a commit (and its fsync).
func (db *DB) getQueued(ctx context.Context, msgID string, row int64) (taskdb.Doc, error) {
	if e := db.failing.Load(); e != nil {
		return nil, fmt.Errorf("sqlitedb: get %s: queued writes cannot be committed: %w", msgID, *e)
	}
	o := &op{kind: opGet, id: msgID, row: row, done: make(chan error, 1)}
	if err := db.ask(ctx, o); err != nil {
		return nil, err
	}
	return o.rec, nil
}

// columnArg normalizes v, the value of key k, and converts it to column
// c's SQL value. Strings and times, the usual values, take a shortcut that
// boxes nothing but the result.
func columnArg(k string, c column, v any) (any, error) {
	switch x := v.(type) {
	case string:
		if c.kind != kindTime {
			return v, nil
		}
	case time.Time:
		if c.kind == kindTime {
			t, err := query.CanonicalTime(x)
			if err != nil {
				return nil, fmt.Errorf("%w: key %q: %v", taskdb.ErrInvalidRecord, k, err)
			}
			return t.UnixMicro(), nil
		}
	}
	v, err := taskdb.Normalize(k, v)
	if err != nil {
		return nil, err
	}
	x, err := encodeColumn(c, v)
	if err != nil {
		return nil, fmt.Errorf("%w: key %q: %v", taskdb.ErrInvalidRecord, k, err)
	}
	return x, nil
}

// encodeColumn converts a canonical value to column c's SQL value:
// microseconds for times, text for strings, msgpack for other values.
func encodeColumn(c column, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case time.Time:
		if c.kind == kindTime {
			return x.UnixMicro(), nil
		}
	case string:
		return x, nil
	}
	return codec.Encode(v)
}

// mergeFunc is the SQL function the writer's UPDATE applies mergeDoc
// with, so that a partial update reads the stored doc in the same
// statement. Its arguments are the stored doc, a view of SQLite's memory
// (VolatileArgs) that mergeDoc does not retain, and the token of a patch
// lent by patches: the writer neither encodes nor binds the patch, and
// the function does not parse it again.
const mergeFunc = "taskhub_merge_doc"

func init() {
	sqlite.MustRegisterFunction(mergeFunc, &sqlite.FunctionImpl{
		NArgs:         2,
		Deterministic: true,
		VolatileArgs:  true,
		Scalar: func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			old, ok1 := args[0].([]byte)
			token, ok2 := args[1].(int64)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%s(%T, %T): want a blob and a patch token", mergeFunc, args[0], args[1])
			}
			l, ok := patches.get(token)
			if !ok {
				return nil, fmt.Errorf("%s: no patch %d", mergeFunc, token)
			}
			doc, err := mergeDoc((*l.out)[:0], old, l.patch)
			*l.out = doc // the driver copies doc before the writer's next UPDATE
			return doc, err
		},
	})
}

// patches lends the patches of running UPDATEs to mergeFunc. Each DB's
// writer lends one at a time; the table is shared by every DB in the
// process, as the SQL function is.
var patches = patchTable{m: make(map[int64]loan)}

type patchTable struct {
	mu   sync.Mutex
	m    map[int64]loan
	last int64
}

// loan is a patch and the writer's buffer mergeFunc builds the new doc
// in: the driver copies the doc into SQLite before the UPDATE returns.
type loan struct {
	patch []field
	out   *[]byte
}

// lend makes l available to mergeFunc under the returned token until
// give is called.
func (t *patchTable) lend(l loan) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last++
	t.m[t.last] = l
	return t.last
}

func (t *patchTable) get(token int64) (loan, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.m[token]
	return p, ok
}

// give ends the loan of token.
func (t *patchTable) give(token int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, token)
}

// writer owns the connection that writes: it applies ops in queue order
// and commits them in groups. It runs its statements on the driver's
// connection, inside conn.Raw: database/sql's work per statement
// (converting arguments, locking, building results) was a tenth of the
// writer's time per row.
type writer struct {
	db      *DB
	conn    *sql.Conn
	dc      rawConn // conn's driver connection, used only inside conn.Raw
	insert  rawStmt
	del     rawStmt
	read    rawStmt // a whole row by seq
	begin   rawStmt
	commit  rawStmt
	abort   rawStmt // ROLLBACK
	updates map[uint64]rawStmt
	nv      []driver.NamedValue // arguments, reused
	merged  []byte              // mergeFunc's output, reused
	batch   []*op
	bytes   int64 // sum of the batch's op sizes
	inTx    bool
	broken  error // first retryable failure of the open transaction
}

// rawConn and rawStmt are what the writer needs of the driver.
type rawConn interface {
	driver.Conn
	driver.ConnPrepareContext
}

type rawStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

func (db *DB) openWriter(ctx context.Context) (*writer, error) {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{db: db, conn: conn, updates: make(map[uint64]rawStmt)}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.close()
		return nil, err
	}
	if mode != "wal" {
		w.close()
		return nil, fmt.Errorf("journal mode is %q, want wal", mode)
	}
	if err := migrate(ctx, conn, db.table, db.log); err != nil {
		w.close()
		return nil, err
	}
	names := []string{colName(colSeq)}
	marks := []string{"?"}
	for i := range colDoc + 1 {
		names, marks = append(names, colName(i)), append(marks, "?")
	}
	// The statements belong to the driver connection conn pins for its
	// lifetime; they are used only inside conn.Raw, which holds it.
	err = conn.Raw(func(dc any) error {
		var ok bool
		if w.dc, ok = dc.(rawConn); !ok {
			return fmt.Errorf("driver connection %T cannot prepare statements", dc)
		}
		for _, s := range []struct {
			stmt *rawStmt
			sql  string
		}{
			{&w.insert, fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", db.table, strings.Join(names, ", "), strings.Join(marks, ", "))},
			{&w.del, fmt.Sprintf("DELETE FROM %s WHERE seq = ?", db.table)},
			{&w.read, fmt.Sprintf("SELECT %s FROM %s WHERE seq = ?", selectList(allColumns), db.table)},
			{&w.begin, "BEGIN IMMEDIATE"},
			{&w.commit, "COMMIT"},
			{&w.abort, "ROLLBACK"},
		} {
			if *s.stmt, err = w.prepare(s.sql); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// prepare prepares query on the driver connection.
func (w *writer) prepare(query string) (rawStmt, error) {
	s, err := w.dc.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	rs, ok := s.(rawStmt)
	if !ok {
		s.Close()
		return nil, fmt.Errorf("prepare %q: driver statement %T cannot execute with a context", query, s)
	}
	return rs, nil
}

// close closes the statements and the connection, outside run.
func (w *writer) close() error {
	w.conn.Raw(func(any) error { w.closeStmts(); return nil }) //nolint:errcheck // fails only if conn is closed
	return w.conn.Close()
}

func (w *writer) closeStmts() {
	for _, s := range []rawStmt{w.insert, w.del, w.read, w.begin, w.commit, w.abort} {
		if s != nil {
			s.Close()
		}
	}
	for _, s := range w.updates {
		s.Close()
	}
}

// execRaw runs s with args and then extra.
func (w *writer) execRaw(s rawStmt, args []any, extra ...any) error {
	nv := w.nv[:0]
	for _, a := range args {
		nv = append(nv, driver.NamedValue{Ordinal: len(nv) + 1, Value: a})
	}
	for _, a := range extra {
		nv = append(nv, driver.NamedValue{Ordinal: len(nv) + 1, Value: a})
	}
	_, err := s.ExecContext(context.Background(), nv)
	clear(nv) // keep no write's values alive
	w.nv = nv[:0]
	return err
}

// run applies ops (see loop) on the driver connection, then closes it.
func (w *writer) run() error {
	err := w.conn.Raw(func(any) error {
		defer w.closeStmts()
		return w.loop()
	})
	return errors.Join(err, w.conn.Close())
}

// loop applies ops until the queue is closed, then commits and returns the
// error of the last commit.
func (w *writer) loop() error {
	db := w.db
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var errs error // writes lost at close
	for {
		o, ok := <-db.ops
		if !ok {
			return errs
		}
		w.take(o)
		if len(w.batch) == 0 { // an opGet
			continue
		}
		flush := o.kind == opFlush
		if db.opts.Sync == SyncBatch && !flush {
			timer.Reset(db.opts.FlushInterval)
		}
		open := true
	gather:
		for !flush && len(w.batch) < db.opts.BatchSize && w.bytes < db.maxBytes/2 {
			if db.opts.Sync == SyncFull { // group commit: take what is queued, then commit
				select {
				case o, open = <-db.ops:
				default:
					break gather
				}
			} else {
				select {
				case o, open = <-db.ops:
				case <-timer.C:
					break gather
				}
			}
			if !open {
				break
			}
			w.take(o)
			flush = o.kind == opFlush
		}
		timer.Stop()
		errs = errors.Join(errs, w.commitBatch())
		if !open {
			return errs
		}
	}
}

// take adds o to the batch and applies it in the open transaction, or
// answers an opGet at once.
func (w *writer) take(o *op) {
	<-w.db.slots // o's sender took one
	if o.kind == opGet {
		o.done <- w.get(o)
		return
	}
	w.batch = append(w.batch, o)
	w.bytes += o.size
	w.exec(o)
}

// exec applies o in the open transaction, beginning one if needed, unless
// o is a flush or the transaction is broken. A disk or lock failure breaks
// the transaction (the batch is replayed); any other error drops o alone.
func (w *writer) exec(o *op) {
	if o.kind == opFlush || w.broken != nil {
		return
	}
	if !w.inTx {
		if err := w.beginTx(); err != nil {
			w.broken = err
			return
		}
	}
	if err := w.apply(o); err != nil {
		if retryable(err) {
			w.broken = err
			return
		}
		// Not a disk or lock problem: a bug, or a value SQLite rejects
		// (such as a blob over its size limit). Drop this write alone and
		// forget a rejected record, so that reads do not find it; the
		// batch goes on; a rejected update's or drop's catalog changes
		// are undone.
		w.db.stats.writeErrors.Add(1)
		w.db.stats.rejected.Add(1)
		w.db.log.Error("write rejected, not stored", "msg_id", o.id, "err", err)
		switch {
		case o.kind == opAdd:
			w.db.forget(o.id, o.args[0].(int64))
		case o.undo != nil: // the catalog must keep agreeing with the row
			w.db.idsMu.Lock()
			o.undo()
			w.db.idsMu.Unlock()
		}
		o.kind, o.err = opFlush, fmt.Errorf("sqlitedb: write of %s rejected, not stored: %w", o.id, err)
	}
}

// forget removes the record of row seq from the catalog, if it still is
// there, after SQLite rejected its insert.
func (db *DB) forget(id string, seq int64) {
	db.idsMu.Lock()
	defer db.idsMu.Unlock()
	if e := db.cat.ids[id]; e != nil && e.seq == seq {
		db.cat.drop(id)
	}
}

// get reads o's row on the writer's connection, which sees the writes
// applied in the open transaction.
func (w *writer) get(o *op) error {
	if w.broken != nil {
		return fmt.Errorf("sqlitedb: get %s: queued writes cannot be applied: %w", o.id, w.broken)
	}
	rows, err := w.read.QueryContext(context.Background(), []driver.NamedValue{{Ordinal: 1, Value: o.row}})
	if err != nil {
		return fmt.Errorf("sqlitedb: get %s: %w", o.id, err)
	}
	defer rows.Close()
	vals := make([]driver.Value, len(allColumns))
	switch err := rows.Next(vals); {
	case err == io.EOF:
		return fmt.Errorf("sqlitedb: get %s: %w", o.id, taskdb.ErrNotFound)
	case err != nil:
		return fmt.Errorf("sqlitedb: get %s: %w", o.id, err)
	}
	if o.rec, err = decodeRow(allColumns, vals, nil, &carver{}); err != nil {
		return fmt.Errorf("sqlitedb: get %s: %w", o.id, err)
	}
	return nil
}

func (w *writer) beginTx() error {
	if err := w.execRaw(w.begin, nil); err != nil {
		return err
	}
	w.inTx = true
	return nil
}

func (w *writer) apply(o *op) error {
	switch o.kind {
	case opAdd:
		return w.execRaw(w.insert, o.args)
	case opUpdate:
		s, err := w.update(o.cols)
		if err != nil {
			return err
		}
		if o.patch == nil {
			return w.execRaw(s, o.args, o.row)
		}
		token := patches.lend(loan{o.patch, &w.merged})
		err = w.execRaw(s, o.args, token, o.row)
		patches.give(token)
		if cap(w.merged) > maxPooled { // keep no huge record's buffer
			w.merged = nil
		}
		return err
	case opDrop:
		for i, row := range o.rows {
			if err := w.execRaw(w.del, nil, row); err != nil {
				o.left = i
				return err
			}
		}
	}
	return nil
}

// update returns the statement setting the columns of set.
func (w *writer) update(set uint64) (rawStmt, error) {
	if s, ok := w.updates[set]; ok {
		return s, nil
	}
	var cols []string
	for i := range colDoc {
		if set&(1<<i) != 0 {
			cols = append(cols, colName(i)+" = ?")
		}
	}
	if set&(1<<colDoc) != 0 {
		cols = append(cols, "doc = "+mergeFunc+"(doc, ?)")
	}
	s, err := w.prepare(fmt.Sprintf("UPDATE %s SET %s WHERE seq = ?", w.db.table, strings.Join(cols, ", ")))
	if err != nil {
		return nil, err
	}
	w.updates[set] = s
	return s, nil
}

// commitBatch commits the batch. On a disk or lock failure it rolls back,
// logs, rejects new writes, and replays the batch every flush interval
// until it commits, or gives up when the DB is closing.
func (w *writer) commitBatch() error {
	db := w.db
	err := w.finish()
	for attempt := 1; err != nil; attempt++ {
		db.stats.writeErrors.Add(1)
		failed := err // err changes on the next attempt
		db.failing.Store(&failed)
		db.log.Error("commit failed; retrying", "writes", w.writes(), "attempt", attempt, "err", err)
		for _, o := range w.batch { // waiters learn their write is not on disk (yet)
			if o.done != nil {
				o.done <- errors.Join(o.err, fmt.Errorf("sqlitedb: commit failed, the write stays queued and is retried: %w", err))
				o.done = nil
			}
		}
		select {
		case <-time.After(max(db.opts.FlushInterval, 100*time.Millisecond)):
		case <-db.stop:
			if attempt > 1 {
				lost := fmt.Errorf("sqlitedb: %d writes lost at close: %w", w.writes(), err)
				db.log.Error("writes lost at close", "writes", w.writes(), "err", err)
				w.reply(lost)
				return lost
			}
		}
		for _, o := range w.batch {
			w.exec(o)
		}
		err = w.finish()
	}
	db.failing.Store(nil)
	var last uint64
	for _, o := range w.batch {
		last = max(last, o.seq)
	}
	db.committed.Store(max(db.committed.Load(), last))
	db.stats.commits.Add(1)
	db.stats.writes.Add(uint64(w.writes()))
	w.reply(nil)
	return nil
}

// finish commits the open transaction, or rolls it back if it is broken.
func (w *writer) finish() error {
	if !w.inTx {
		err := w.broken
		w.broken = nil
		return err
	}
	w.inTx = false
	if err := w.broken; err != nil {
		w.broken = nil
		w.execRaw(w.abort, nil) //nolint:errcheck // SQLite may have rolled back already
		return err
	}
	if err := w.execRaw(w.commit, nil); err != nil {
		w.execRaw(w.abort, nil) //nolint:errcheck // as above
		return err
	}
	return nil
}

func (w *writer) writes() int {
	n := 0
	for _, o := range w.batch {
		if o.kind != opFlush {
			n++
		}
	}
	return n
}

// reply tells every waiter in the batch the outcome and empties it.
func (w *writer) reply(err error) {
	for _, o := range w.batch {
		if o.done != nil {
			if o.err != nil {
				o.done <- o.err
			} else {
				o.done <- err
			}
		}
	}
	w.db.queueBytes.Release(w.bytes)
	w.bytes = 0
	clear(w.batch)
	w.batch = w.batch[:0]
}

// retryable reports whether err is a condition of the disk or of locking
// that a later attempt may not meet.
func retryable(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
		sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL:
		return true
	}
	return false
}
