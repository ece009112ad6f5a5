package sqlitedb

import (
	"os"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
)

// fixtureOps writes the records of testdata/v1.db: workload records,
// results, an extra key added by an update and one at add time, a
// dropped record, a record without a submitted time and a client_uuid
// that is not a string.
func fixtureOps(tb testing.TB, db taskdb.DB) {
	tb.Helper()
	ctx := tb.Context()
	w := load(tb, db, 120)
	for i := 0; i < 120; i += 3 {
		if err := db.UpdateRecord(ctx, w.ID(i), w.Result(i)); err != nil {
			tb.Fatal(err)
		}
	}
	for _, op := range []func() error{
		func() error {
			return db.UpdateRecord(ctx, w.ID(4), taskdb.Record{"display_data": []any{"x", int64(1)}, "stdout": "out\n"})
		},
		func() error { return db.DropRecord(ctx, w.ID(5)) },
		func() error { return db.AddRecord(ctx, "no-submitted", taskdb.Record{"stderr": "err"}) },
		func() error {
			return db.AddRecord(ctx, "odd", taskdb.Record{
				"client_uuid": []any{"c", int64(2)}, "submitted": time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC),
				"my_key": map[string]any{"b": 1.5, "a": []byte("raw")}, "resubmitted": "other",
			})
		},
	} {
		if err := op(); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestWriteV1Fixture writes testdata/v1.db with the schema v1 code.
func TestWriteV1Fixture(t *testing.T) {
	path := os.Getenv("SQLITEDB_WRITE_V1")
	if path == "" {
		t.Skip()
	}
	db := openOnly(t, Options{Path: path})
	fixtureOps(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	other := openOnly(t, Options{Path: path, Table: "other"})
	if err := other.AddRecord(t.Context(), "other-1", taskdb.Record{"stdout": "in other"}); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
}
