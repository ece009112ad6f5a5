package postgres

import (
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/postgres/pgtest"
)

// open returns a DB on a fresh table of the test server.
func open(tb testing.TB, o Options) *DB {
	tb.Helper()
	if o.DSN == "" {
		o.DSN = pgtest.DSN(tb)
	}
	if o.Table == "" {
		o.Table = pgtest.Table(tb, o.DSN)
	}
	db, err := Open(tb.Context(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	dbtest.Run(t, func(t *testing.T) taskdb.DB { return open(t, Options{}) })
}
