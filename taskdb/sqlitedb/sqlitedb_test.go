package sqlitedb

import (
	"path/filepath"
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
)

// open opens a fresh DB in a temporary directory and closes it at cleanup.
func open(tb testing.TB, opts Options) *DB {
	tb.Helper()
	db := openOnly(tb, opts)
	tb.Cleanup(func() { db.Close() })
	return db
}

// load adds the first n records of a fresh dbtest workload to db and
// returns the workload.
func load(tb testing.TB, db taskdb.DB, n int) *dbtest.Workload {
	tb.Helper()
	w := dbtest.NewWorkload()
	for i := range n {
		if err := db.AddRecord(tb.Context(), w.ID(i), w.Record(i)); err != nil {
			tb.Fatal(err)
		}
	}
	return w
}

// openOnly opens a fresh DB that the caller closes.
func openOnly(tb testing.TB, opts Options) *DB {
	tb.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(tb.TempDir(), "tasks.db")
	}
	db, err := Open(tb.Context(), opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return db
}

func TestConformance(t *testing.T) {
	for _, mode := range []string{SyncBatch, SyncFull} {
		t.Run(mode, func(t *testing.T) {
			dbtest.Run(t, func(t *testing.T) taskdb.DB { return open(t, Options{Sync: mode}) })
		})
	}
}
