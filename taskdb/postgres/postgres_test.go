package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/postgres/pgtest"
	"github.com/taskhub/taskhub/taskdb/query"
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

// Open refuses tables it did not create or of another schema version,
// and reuses its own.
func TestSchema(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	foreign, newer, ours := pgtest.Table(t, dsn), pgtest.Table(t, dsn), pgtest.Table(t, dsn)
	for _, s := range []string{
		"CREATE TABLE " + foreign + " (id int)",
		"CREATE TABLE " + newer + " (id int)",
		"COMMENT ON TABLE " + newer + " IS '" + commentPrefix + "2'",
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ table, want string }{
		{foreign, "was not created by taskhub"},
		{newer, "has schema version 2; this taskhub reads version 1"},
	} {
		_, err := Open(ctx, Options{DSN: dsn, Table: c.table})
		if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%s): %v, want ErrIncompatible: %s", c.table, err, c.want)
		}
	}
	if _, err := Open(ctx, Options{DSN: dsn, Table: "Bad-Name"}); err == nil || !strings.Contains(err.Error(), "table name") {
		t.Errorf("Open with a bad table name: %v", err)
	}
	db := open(t, Options{DSN: dsn, Table: ours})
	mustAdd := func(db *DB, id string) {
		if err := db.AddRecord(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	mustAdd(db, "a")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	again := open(t, Options{DSN: dsn, Table: ours})
	if _, err := again.GetRecord(ctx, "a"); err != nil {
		t.Errorf("record after reopening: %v", err)
	}
	// A record stored before is found on update, and is known from then.
	if err := again.UpdateRecord(ctx, "a", taskdb.Record{"stdout": "x"}); err != nil {
		t.Errorf("UpdateRecord of a record stored before: %v", err)
	}
	if err := again.AddRecord(ctx, "a", nil); !errors.Is(err, taskdb.ErrExists) {
		t.Errorf("AddRecord of a record found before: %v, want ErrExists", err)
	}
	if _, err := again.History(ctx); err != nil { // flush: other DBs see it
		t.Fatal(err)
	}
	// A DB that does not know the record (another hub) adds it again: the
	// batch rejects it, and the stored record is untouched.
	third := open(t, Options{DSN: dsn, Table: ours})
	mustAdd(third, "b") // same batch: written once the duplicate is set aside
	mustAdd(third, "a")
	if _, err := third.History(ctx); err != nil {
		t.Fatal(err)
	}
	if s := third.Stats(); s.Rejected != 1 || s.Applied != 1 {
		t.Errorf("stats %+v, want the duplicate add rejected, the other applied once", s)
	}
	if _, err := third.GetRecord(ctx, "b"); err != nil {
		t.Errorf("the add batched with the duplicate: %v", err)
	}
	if d, err := third.GetRecord(ctx, "a"); err != nil || d.Get("stdout") != "x" {
		t.Errorf("GetRecord = %v, %v; want the updated record", d, err)
	}
}

// Strings PostgreSQL's text type cannot hold stay in the document: the
// record is stored and found, not rejected.
func TestOddStrings(t *testing.T) {
	db := open(t, Options{})
	ctx := t.Context()
	odd := "c\x00\xff"
	if err := db.AddRecord(ctx, "a", taskdb.Record{"client_uuid": odd, "queue": "task", "k\x00": int64(1)}); err != nil {
		t.Fatal(err)
	}
	rs, err := db.FindRecords(ctx, query.MustParse(`{"queue": "task"}`), []string{"client_uuid", "k\x00"})
	if err != nil || len(rs) != 1 || rs[0].Get("client_uuid") != odd || rs[0].Get("k\x00") != int64(1) {
		t.Fatalf("FindRecords = %v, %v", rs, err)
	}
	f, err := query.Parse(map[string]any{"client_uuid": odd})
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := db.FindRecords(ctx, f, nil); err != nil || len(rs) != 1 {
		t.Errorf("FindRecords by the odd client_uuid = %d records, %v", len(rs), err)
	}
	if err := db.AddRecord(ctx, "b\x00", nil); !errors.Is(err, taskdb.ErrInvalidRecord) {
		t.Errorf("AddRecord with a NUL in msg_id: %v, want ErrInvalidRecord", err)
	}
	if _, err := db.GetRecord(ctx, "b\x00"); !errors.Is(err, taskdb.ErrNotFound) {
		t.Errorf("GetRecord with a NUL in msg_id: %v, want ErrNotFound", err)
	}
	if err := db.UpdateRecord(ctx, "b\x00", nil); !errors.Is(err, taskdb.ErrNotFound) {
		t.Errorf("UpdateRecord with a NUL in msg_id: %v, want ErrNotFound", err)
	}
	if s := db.Stats(); s.Rejected != 0 {
		t.Errorf("stats %+v, want nothing rejected", s)
	}
}
