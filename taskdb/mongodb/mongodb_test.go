package mongodb

import (
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/mongodb/mongotest"
)

// open opens a DB on a fresh database (of a server of its own unless
// opts.URI is set) and closes it at cleanup.
func open(tb testing.TB, opts Options) *DB {
	tb.Helper()
	if opts.URI == "" {
		opts.URI = mongotest.URI(tb)
	}
	if opts.Database == "" {
		opts.Database = mongotest.Database(tb, opts.URI)
	}
	db, err := Open(tb.Context(), opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	uri := mongotest.URI(t)
	dbtest.Run(t, func(t *testing.T) taskdb.DB { return open(t, Options{URI: uri}) })
}
