package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/taskhub/taskhub/taskdb"
)

// Sync modes.
const (
	// SyncBatch acknowledges a write once it is queued; the writer commits
	// every BatchSize writes or FlushInterval. A crash loses at most the
	// writes of the last flush interval, never the database.
	SyncBatch = "batch"
	// SyncFull acknowledges a write once its commit is on disk.
	SyncFull = "full"
)

// Defaults for a zero Options field.
const (
	DefaultTable         = "tasks"
	DefaultBatchSize     = 4096
	DefaultFlushInterval = 50 * time.Millisecond
	DefaultPruneInterval = time.Minute
)

// maxQueuedBytes bounds the strings and blobs of the writes queued or in
// the open batch, so that large buffers cannot pile up in memory when the
// disk is slower than the hub: a write waits for room, and the writer
// commits once its batch holds half of it. A variable for tests.
var maxQueuedBytes int64 = 64 << 20

// Options configure a DB. The zero value of each field means its default.
type Options struct {
	// Path is the database file, created if missing (its directory must
	// exist). Required. A "file:" URI is passed to the driver as is, with
	// the DB's pragmas added (e.g. file:/x/tasks.db?_pragma=max_page_count(N)).
	Path string
	// Table is the task table's name (letters, digits, _). Default "tasks".
	Table string
	// Sync is SyncBatch (default) or SyncFull.
	Sync string
	// BatchSize is the most writes one commit holds. Default 4096.
	BatchSize int
	// FlushInterval is the longest a queued write waits for its commit.
	// Default 50ms.
	FlushInterval time.Duration
	// MaxAge, if positive, prunes completed records whose completed time
	// is older than this.
	MaxAge time.Duration
	// MaxRecords, if positive, prunes the oldest completed records (in
	// insertion order) beyond this many records in total.
	MaxRecords int
	// PruneInterval is how often retention runs. Default one minute.
	PruneInterval time.Duration
	// Logger receives write failures and pruning reports. Default: none.
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Path == "" {
		return errors.New("sqlitedb: Options.Path is empty")
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if !tableName.MatchString(o.Table) || strings.HasPrefix(strings.ToLower(o.Table), "sqlite_") {
		return fmt.Errorf("sqlitedb: table name %q: want letters, digits and _ (at most 64), not starting with a digit or sqlite_", o.Table)
	}
	switch o.Sync {
	case "":
		o.Sync = SyncBatch
	case SyncBatch, SyncFull:
	default:
		return fmt.Errorf("sqlitedb: sync %q: want %q or %q", o.Sync, SyncBatch, SyncFull)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = DefaultPruneInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// DB is a taskdb.DB in an SQLite file. It is safe for concurrent use. One
// process at a time may open a file: the DB keeps an in-memory catalog of
// the file's records.
type DB struct {
	opts  Options
	log   *slog.Logger
	table string
	db    *sql.DB // readers' pool; the writer pins one connection

	// idsMu guards cat and orders writes: a write checks cat, enqueues
	// its op and updates cat under idsMu, so the writer applies ops in the
	// order cat changed.
	idsMu   sync.Mutex
	cat     *catalog    // every stored or queued record
	closed  atomic.Bool // set under idsMu
	closing atomic.Bool // set by the first Close

	ops        chan *op
	slots      chan struct{}       // one per op queued or about to be: see send
	queueBytes *semaphore.Weighted // bytes of queued and uncommitted writes
	maxBytes   int64               // queueBytes' size: maxQueuedBytes at Open
	queued     atomic.Uint64       // sequence number of the last op enqueued
	committed  atomic.Uint64       // sequence number of the last op committed
	failing    atomic.Pointer[error]
	stats      stats

	stop      chan struct{} // closed by Close: stops the pruner and blocked writes
	done      chan struct{} // closed when the first Close returns
	writerErr chan error    // the writer's final error, sent when it exits
	pruneDone chan struct{}
}

var _ taskdb.DB = (*DB)(nil)

type stats struct {
	commits, writes, writeErrors, rejected, pruned atomic.Uint64
}

// Stats are counters since Open.
type Stats struct {
	Commits     uint64 // transactions committed
	Writes      uint64 // writes committed
	WriteErrors uint64 // failed commit attempts (logged, retried) and writes SQLite rejected (logged, dropped)
	Rejected    uint64 // writes SQLite rejected (such as a value over its size limit): logged, not stored
	Pruned      uint64 // records removed by retention
}

// Stats returns the DB's counters.
func (db *DB) Stats() Stats {
	return Stats{
		Commits:     db.stats.commits.Load(),
		Writes:      db.stats.writes.Load(),
		WriteErrors: db.stats.writeErrors.Load(),
		Rejected:    db.stats.rejected.Load(),
		Pruned:      db.stats.pruned.Load(),
	}
}

// dataSource returns the driver's data source name for opts: the path as
// a file: URI (or opts.Path itself if it is one, so that tests and experts
// can add driver parameters) with the pragmas every connection runs.
func dataSource(opts Options) (string, error) {
	q := url.Values{}
	// Every commit is fsynced in both modes: they differ in whether a
	// write waits for its commit. One fsync per group is cheap, and it
	// bounds what an OS crash loses to the uncommitted writes.
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "cache_size(-65536)", "wal_autocheckpoint(10000)"} {
		q.Add("_pragma", p)
	}
	if strings.HasPrefix(opts.Path, "file:") {
		sep := "?"
		if strings.Contains(opts.Path, "?") {
			sep = "&"
		}
		return opts.Path + sep + q.Encode(), nil
	}
	dir := filepath.Dir(opts.Path)
	if st, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("sqlitedb: open %s: %w", opts.Path, err)
	} else if !st.IsDir() {
		return "", fmt.Errorf("sqlitedb: open %s: %s is not a directory", opts.Path, dir)
	}
	if st, err := os.Stat(opts.Path); err == nil && st.IsDir() {
		return "", fmt.Errorf("sqlitedb: open %s: is a directory", opts.Path)
	}
	u := url.URL{Scheme: "file", Opaque: opts.Path, RawQuery: q.Encode()}
	return u.String(), nil
}

// Open opens or creates the database at opts.Path. It fails if the file
// cannot be opened for writing, is not an SQLite database, or holds a
// table or schema version this build did not create (ErrIncompatible).
func Open(ctx context.Context, opts Options) (*DB, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	dsn, err := dataSource(opts)
	if err != nil {
		return nil, err
	}
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: open %s: %w", opts.Path, err)
	}
	sdb.SetMaxOpenConns(5) // the writer plus four readers
	sdb.SetMaxIdleConns(5)
	sdb.SetConnMaxIdleTime(0)
	db := &DB{
		opts:       opts,
		log:        opts.Logger,
		table:      opts.Table,
		db:         sdb,
		cat:        newCatalog(),
		ops:        make(chan *op, 2*opts.BatchSize),
		slots:      make(chan struct{}, 2*opts.BatchSize),
		queueBytes: semaphore.NewWeighted(maxQueuedBytes),
		maxBytes:   maxQueuedBytes,
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		writerErr:  make(chan error, 1),
		pruneDone:  make(chan struct{}),
	}
	w, err := db.openWriter(ctx)
	if err != nil {
		sdb.Close()
		return nil, fmt.Errorf("sqlitedb: open %s: %w", opts.Path, err)
	}
	if err := db.loadIDs(ctx); err != nil {
		w.close()
		sdb.Close()
		return nil, fmt.Errorf("sqlitedb: open %s: %w", opts.Path, err)
	}
	go func() { db.writerErr <- w.run() }()
	if opts.MaxAge > 0 || opts.MaxRecords > 0 {
		go db.pruneLoop()
	} else {
		close(db.pruneDone)
	}
	return db, nil
}

func (db *DB) loadIDs(ctx context.Context) error {
	if err := db.cat.load(ctx, db); err != nil {
		return fmt.Errorf("load the catalog: %w", err)
	}
	return nil
}

// Close commits the queued writes and closes the file. It returns the
// error of that last commit, if any. Calls after Close, Close included,
// return taskdb.ErrClosed; a Close concurrent with the first returns once
// the file is closed.
func (db *DB) Close() error {
	if !db.closing.CompareAndSwap(false, true) {
		<-db.done
		return taskdb.ErrClosed
	}
	defer close(db.done)
	// Closing stop first releases the writes waiting for room in the
	// queue (the writer may be retrying a full disk).
	close(db.stop)
	db.idsMu.Lock()
	db.closed.Store(true)
	close(db.ops)
	db.idsMu.Unlock()
	<-db.pruneDone
	err := <-db.writerErr
	return errors.Join(err, db.db.Close())
}

// check returns ctx's error, or ErrClosed after Close.
func (db *DB) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.closed.Load() {
		return taskdb.ErrClosed
	}
	return nil
}
