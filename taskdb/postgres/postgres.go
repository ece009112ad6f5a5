package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/internal/batch"
)

// Defaults for a zero Options field.
const (
	DefaultTable        = "taskhub_tasks"
	DefaultCloseTimeout = 10 * time.Second
)

// Options configure a DB. The zero value of each field means its default.
type Options struct {
	// DSN is the libpq connection string or URL. Required.
	DSN string
	// Table is the task table (lower-case letters, digits and _), created
	// if missing. Default "taskhub_tasks".
	Table string
	// BatchSize, FlushInterval, MaxPending and MaxPendingBytes configure
	// the write queue (see package batch's defaults: 1000 writes, 20ms,
	// 1,000,000 writes, 256 MiB).
	BatchSize       int
	FlushInterval   time.Duration
	MaxPending      int
	MaxPendingBytes int64
	// CloseTimeout bounds how long Close tries to write queued writes.
	// Default 10s.
	CloseTimeout time.Duration
	// Logger receives outages and rejected writes. Default: none.
	Logger *slog.Logger
}

// DB is a taskdb.DB in a PostgreSQL table. It is safe for concurrent use,
// and several DBs (in one process or several hubs) may share a table.
type DB struct {
	pool   *pgxpool.Pool
	table  string
	sql    statements
	q      *batch.Queue
	close  time.Duration
	closed atomic.Bool
}

var _ taskdb.DB = (*DB)(nil)

// Open connects to the database, creates the table if it is missing and
// checks its schema version (ErrIncompatible).
func Open(ctx context.Context, o Options) (*DB, error) {
	if o.DSN == "" {
		return nil, errors.New("postgres: Options.DSN is empty")
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if !tableName.MatchString(o.Table) {
		return nil, fmt.Errorf("postgres: table name %q: want lower-case letters, digits and _ (at most 63), not starting with a digit", o.Table)
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres: dsn: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrate(ctx, pool, o.Table); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", o.Table, err)
	}
	db := &DB{pool: pool, table: o.Table, sql: newStatements(o.Table), close: o.CloseTimeout}
	db.q = batch.New(db.apply, batch.Options{
		BatchSize:       o.BatchSize,
		FlushInterval:   o.FlushInterval,
		MaxPending:      o.MaxPending,
		MaxPendingBytes: o.MaxPendingBytes,
		Exists:          db.exists,
		Unavailable:     unavailable,
		Logger:          o.Logger.With("backend", "postgres", "table", o.Table),
	})
	return db, nil
}

// Stats returns the write queue's counters.
func (db *DB) Stats() batch.Stats { return db.q.Stats() }

// Close writes the queued writes (for at most CloseTimeout) and closes
// the connections. It reports writes it could not write.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return taskdb.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), db.close)
	defer cancel()
	err := db.q.Close(ctx)
	db.pool.Close()
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// check fails calls on a closed DB or with a done context.
func (db *DB) check(ctx context.Context) error {
	if db.closed.Load() {
		return taskdb.ErrClosed
	}
	return ctx.Err()
}

// errCorrupt reports a stored doc that does not decode.
var errCorrupt = errors.New("postgres: corrupt stored record")

// unavailable reports whether err means the server cannot be reached or
// cannot serve now (retry later), rather than that it rejected a
// statement. Errors that are not from the server (dial, I/O, timeouts)
// are connection failures: when in doubt, a write is retried, not
// dropped.
func unavailable(err error) bool {
	var rej *rejected
	if errors.As(err, &rej) || errors.Is(err, errCorrupt) || errors.Is(err, context.Canceled) {
		return false
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return true
	}
	switch {
	case strings.HasPrefix(pe.Code, "08"), // connection exception
		strings.HasPrefix(pe.Code, "53"),       // insufficient resources (disk full)
		strings.HasPrefix(pe.Code, "57"),       // shutdown, canceled (statement_timeout)
		strings.HasPrefix(pe.Code, "58"),       // system error (I/O)
		strings.HasPrefix(pe.Code, "XX"),       // internal error
		pe.Code == "25006",                     // read only: a standby after failover
		pe.Code == "55P03",                     // lock_timeout
		pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock
		return true
	}
	return false
}

// readErr maps a read's failure to ErrUnavailable when the server cannot
// be reached.
func readErr(err error) error {
	if unavailable(err) && !errors.Is(err, context.DeadlineExceeded) {
		return batch.Unavailable(err)
	}
	return err
}
