package mongodb

import (
	"slices"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/mongodb/mongotest"
)

// testBatchSize keeps a bulk write of updates well inside the write
// queue's apply timeout (10s) on the FerretDB fixture, which takes tens of
// milliseconds per update (more under -race on a loaded machine); a
// timed-out batch counts as an outage and reads would fail meanwhile.
const testBatchSize = 100

// open opens a DB on a fresh database (of a server of its own unless
// opts.URI is set) and closes it at cleanup.
func open(tb testing.TB, opts Options) *DB {
	tb.Helper()
	if opts.BatchSize == 0 {
		opts.BatchSize = testBatchSize
	}
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

// TestSharedCollection opens one collection twice, as a restarted hub or
// a second hub does: the second Open finds the indexes in place, each DB
// sees the other's applied records, and insertion order holds across
// them.
func TestSharedCollection(t *testing.T) {
	uri := mongotest.URI(t)
	name := mongotest.Database(t, uri)
	a := open(t, Options{URI: uri, Database: name})
	if err := a.AddRecord(t.Context(), "a1", taskdb.Record{"submitted": time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	b := open(t, Options{URI: uri, Database: name})
	if err := b.AddRecord(t.Context(), "b1", taskdb.Record{"submitted": time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	// A hub's writes reach the others once applied; a read applies them.
	if _, err := b.History(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := a.UpdateRecord(t.Context(), "b1", taskdb.Record{"stdout": "from a"}); err != nil {
		t.Fatal(err)
	}
	for _, db := range []*DB{a, b} {
		h, err := db.History(t.Context())
		if err != nil || !slices.Equal(h, []string{"a1", "b1"}) {
			t.Errorf("History = %q, %v; want [a1 b1]", h, err)
		}
		d, err := db.GetRecord(t.Context(), "b1")
		if err != nil || d.Get("stdout") != "from a" {
			t.Errorf("GetRecord(b1) = %v, %v", d, err)
		}
	}
	specs, err := a.coll.Indexes().ListSpecifications(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 1+len(indexed) { // _id's and ours, once each
		t.Errorf("%d indexes, want %d", len(specs), 1+len(indexed))
	}
}
