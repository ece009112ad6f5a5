package mongodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/internal/batch"
)

// Options configures a DB. URI is required.
type Options struct {
	// URI is the MongoDB connection string, e.g. mongodb://host:27017/.
	// A serverSelectionTimeoutMS in it overrides the default of 5s, the
	// longest a call waits for an unreachable server.
	URI string
	// Database and Collection name where records live; defaults "taskhub"
	// and "tasks".
	Database, Collection string
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

// Defaults of Options.
const (
	DefaultDatabase   = "taskhub"
	DefaultCollection = "tasks"
	// DefaultCloseTimeout bounds Close unless Options.CloseTimeout is set.
	DefaultCloseTimeout = 10 * time.Second
	// serverTimeout bounds server selection unless the URI sets it.
	serverTimeout = 5 * time.Second
)

// DB is a taskdb.DB on a MongoDB collection. It is safe for concurrent
// use; several DBs, in one process or several hubs, may share a
// collection. Writes go through a batch.Queue: acknowledged once queued,
// applied in order as bulk writes, buffered through outages.
type DB struct {
	client *mongo.Client
	coll   *mongo.Collection
	q      *batch.Queue
	close  time.Duration
	closed atomic.Bool
	seq    atomic.Int64 // last insertion sequence handed out
}

var _ taskdb.DB = (*DB)(nil)

// Open connects to the server, checks it answers and creates the indexes
// the hub's queries use if they are missing.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.URI == "" {
		return nil, errors.New("mongodb: no URI")
	}
	if opts.Database == "" {
		opts.Database = DefaultDatabase
	}
	if opts.Collection == "" {
		opts.Collection = DefaultCollection
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = DefaultCloseTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	co := options.Client().SetServerSelectionTimeout(serverTimeout).ApplyURI(opts.URI)
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("mongodb: %w", err)
	}
	db := &DB{
		client: client,
		coll:   client.Database(opts.Database).Collection(opts.Collection),
		close:  opts.CloseTimeout,
	}
	if err := db.createIndexes(ctx); err != nil {
		client.Disconnect(context.Background())
		return nil, fmt.Errorf("mongodb: %s.%s: %w", opts.Database, opts.Collection, err)
	}
	db.q = batch.New(db.apply, batch.Options{
		BatchSize:       opts.BatchSize,
		FlushInterval:   opts.FlushInterval,
		MaxPending:      opts.MaxPending,
		MaxPendingBytes: opts.MaxPendingBytes,
		Exists:          db.exists,
		Unavailable:     unavailable,
		Logger:          opts.Logger.With("backend", "mongodb", "collection", opts.Database+"."+opts.Collection),
	})
	return db, nil
}

// indexed lists the keys with an ascending index: history order, pending
// tasks, and a client's or an engine's tasks. _id (msg_id) has MongoDB's.
var indexed = []string{taskdb.KeySubmitted, taskdb.KeyCompleted, taskdb.KeyClientUUID, taskdb.KeyEngineUUID}

// createIndexes creates the indexes of indexed that are missing. Asking
// for existing ones only is what lets a restarted hub (or a second one)
// open the collection without rebuilding anything.
func (db *DB) createIndexes(ctx context.Context) error {
	specs, err := db.coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return err
	}
	have := make(map[string]bool)
	for _, s := range specs {
		if els, err := s.KeysDocument.Elements(); err == nil && len(els) == 1 {
			have[els[0].Key()] = true
		}
	}
	var models []mongo.IndexModel
	for _, k := range indexed {
		if !have[k] {
			models = append(models, mongo.IndexModel{Keys: bson.D{{Key: k, Value: 1}}})
		}
	}
	if len(models) == 0 {
		return nil
	}
	_, err = db.coll.Indexes().CreateMany(ctx, models)
	return err
}

// TimePrecision reports that times are stored to the millisecond, as BSON
// dates are. It implements dbtest.TimePrecision.
func (db *DB) TimePrecision() time.Duration { return time.Millisecond }

// Stats returns the write queue's counters.
func (db *DB) Stats() batch.Stats { return db.q.Stats() }

// Close writes the queued writes (for at most CloseTimeout) and
// disconnects. It reports the writes it could not write. Calls after the
// first return ErrClosed, as do all other calls.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return taskdb.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), db.close)
	defer cancel()
	err := db.q.Close(ctx)
	if derr := db.client.Disconnect(context.Background()); err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("mongodb: %w", err)
	}
	return nil
}

// check returns ErrClosed or ctx's error, which every call reports before
// doing anything.
func (db *DB) check(ctx context.Context) error {
	if db.closed.Load() {
		return taskdb.ErrClosed
	}
	return ctx.Err()
}

// nextSeq returns the insertion sequence of a new record: nanoseconds
// since the epoch, or one more than the last when the clock has not moved
// on. Records added through one DB are ordered exactly; those of hubs
// sharing a collection interleave by their clocks.
func (db *DB) nextSeq() int64 {
	for {
		last := db.seq.Load()
		s := max(time.Now().UnixNano(), last+1)
		if db.seq.CompareAndSwap(last, s) {
			return s
		}
	}
}

// readErr maps a read's driver error: ctx's own error as itself,
// ErrClosed once Close has run, ErrUnavailable when the server cannot be
// reached.
func (db *DB) readErr(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return ctx.Err()
	case db.closed.Load() || errors.Is(err, mongo.ErrClientDisconnected):
		return fmt.Errorf("%w: %v", taskdb.ErrClosed, err)
	case unavailable(err):
		return batch.Unavailable(err)
	}
	return err
}
