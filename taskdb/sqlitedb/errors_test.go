package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/query"
)

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 400)), 0o600); err != nil {
		t.Fatal(err)
	}
	future := filepath.Join(dir, "future.db")
	foreign := filepath.Join(dir, "foreign.db")
	altered := filepath.Join(dir, "altered.db")
	for path, stmts := range map[string][]string{
		future:  {"CREATE TABLE x (a)", "PRAGMA user_version = 99"},
		foreign: {`CREATE TABLE tasks (msg_id text PRIMARY KEY, header dict text)`},
		altered: {"CREATE TABLE tasks (seq INTEGER PRIMARY KEY, msg_id TEXT)", "PRAGMA user_version = 1"},
	} {
		sdb, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			if _, err := sdb.Exec(s); err != nil {
				t.Fatal(err)
			}
		}
		sdb.Close()
	}
	for _, c := range []struct {
		name string
		opts Options
		want string
		is   error
	}{
		{"empty path", Options{}, "Path is empty", nil},
		{"missing directory", Options{Path: filepath.Join(dir, "no", "such", "tasks.db")}, "no such file or directory", nil},
		{"directory", Options{Path: dir}, "is a directory", nil},
		{"not a database", Options{Path: garbage}, "not a database", nil},
		{"newer schema", Options{Path: future}, "schema version 99", ErrIncompatible},
		{"foreign table", Options{Path: foreign}, "not created by taskhub", ErrIncompatible},
		{"altered table", Options{Path: altered}, "has columns", ErrIncompatible},
		{"bad table name", Options{Path: filepath.Join(dir, "x.db"), Table: "tasks; DROP"}, "table name", nil},
		{"bad sync", Options{Path: filepath.Join(dir, "x.db"), Sync: "sometimes"}, `sync "sometimes"`, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, err := Open(t.Context(), c.opts)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Errorf("Open: %v; want an error containing %q (is %v)", err, c.want, c.is)
			}
		})
	}
}

func TestOpenReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.db")
	openOnly(t, Options{Path: path}).Close()
	ro := "file:" + path + "?mode=ro" // root ignores file permissions
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
		ro = path
	}
	if db, err := Open(t.Context(), Options{Path: ro}); err == nil {
		db.Close()
		t.Fatal("Open of a read-only file succeeded")
	} else if !strings.Contains(err.Error(), "readonly") {
		t.Errorf("Open of a read-only file: %v; want it to say readonly", err)
	}
}

// TestSecondTable checks two tables can share a file and that reopening
// reuses the table rather than creating another (ipyparallel, §10.7).
func TestSecondTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.db")
	for round := range 2 {
		for _, table := range []string{"tasks", "other"} {
			db := openOnly(t, Options{Path: path, Table: table})
			if round == 0 {
				if err := db.AddRecord(t.Context(), table+"-1", nil); err != nil {
					t.Fatal(err)
				}
			}
			rs, err := db.FindRecords(t.Context(), nil, []string{"msg_id"})
			if err != nil || len(rs) != 1 || rs[0].Get("msg_id") != table+"-1" {
				t.Errorf("round %d, table %s: %v, %v; want only %s-1", round, table, rs, err, table)
			}
			db.Close()
		}
	}
}

// TestDiskFull fills a database capped at a few pages: writes must start
// failing with an error, the failures are counted, and the file stays
// consistent with every write acknowledged before them.
func TestDiskFull(t *testing.T) {
	for _, mode := range []string{SyncBatch, SyncFull} {
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tasks.db")
			// Create the file first: the cap must exceed the empty schema.
			openOnly(t, Options{Path: path}).Close()
			db, err := Open(t.Context(), Options{Path: "file:" + path + "?_pragma=max_page_count(40)", Sync: mode, FlushInterval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			w := dbtest.NewWorkload()
			var werr error
			i := 0
			for ; i < 10_000 && werr == nil; i++ {
				werr = db.AddRecord(t.Context(), w.ID(i), w.Record(i))
			}
			if werr == nil {
				t.Fatal("10,000 writes into 40 pages succeeded")
			}
			if !strings.Contains(werr.Error(), "full") {
				t.Errorf("write error %q does not say the database is full", werr)
			}
			if s := db.Stats(); s.WriteErrors == 0 {
				t.Errorf("Stats().WriteErrors = 0 after a failed commit")
			}
			// Reads do not hang behind the retrying writer.
			if _, err := db.FindRecords(t.Context(), nil, nil); err == nil || !strings.Contains(err.Error(), "full") {
				t.Errorf("FindRecords while commits fail: %v, want the commit error", err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			closed := make(chan error, 1)
			go func() { closed <- db.Close() }()
			select {
			case err := <-closed:
				if err == nil {
					t.Error("Close with writes that cannot be committed returned nil")
				}
			case <-ctx.Done():
				t.Fatal("Close hangs on a full disk")
			}

			db2 := open(t, Options{Path: path})
			h, err := db2.History(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			// sync: batch may lose every record when its first batch is
			// already too big for the cap (a slow writer under load).
			if len(h) >= i {
				t.Errorf("%d records survive of %d attempted writes", len(h), i)
			}
			if mode == SyncFull && len(h) < i-1 {
				t.Errorf("sync: full kept %d records, want every acknowledged one (%d)", len(h), i-1)
			}
			if len(h) > 0 {
				if _, err := db2.GetRecord(t.Context(), h[len(h)-1]); err != nil {
					t.Error(err)
				}
			}
			if err := db2.AddRecord(t.Context(), "after", nil); err != nil {
				t.Errorf("write after reopening without the cap: %v", err)
			}
		})
	}
}

// TestCloseWhileFull closes a DB whose disk is full while writers are
// still writing into its small queue: Close and every write must return.
func TestCloseWhileFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.db")
	openOnly(t, Options{Path: path}).Close()
	db, err := Open(t.Context(), Options{Path: "file:" + path + "?_pragma=max_page_count(30)", BatchSize: 2, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := dbtest.NewWorkload()
	var writers sync.WaitGroup
	for g := range 8 {
		writers.Go(func() {
			for i := g; i < 16_000; i += 8 {
				if db.AddRecord(context.Background(), w.ID(i), w.Record(i)) != nil {
					return
				}
			}
		})
	}
	for db.Stats().WriteErrors == 0 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		db.Close() //nolint:errcheck // writes are lost on purpose
		writers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close or a write hangs on a full disk")
	}
}

// TestCloseTwice checks that of two concurrent Closes one closes the file
// and the other reports ErrClosed, as every call after Close does.
func TestCloseTwice(t *testing.T) {
	db := openOnly(t, Options{})
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- db.Close() }()
	}
	closed := 0
	for range 2 {
		switch err := <-errs; {
		case errors.Is(err, taskdb.ErrClosed):
			closed++
		case err != nil:
			t.Errorf("Close: %v", err)
		}
	}
	if closed != 1 {
		t.Errorf("%d of 2 Closes returned ErrClosed, want 1", closed)
	}
}

// TestRejectedWrite has SQLite reject one insert outright (a trigger
// stands in for, e.g., a blob over SQLite's size limit): the record must
// not stay readable, the rejection is counted, a SyncFull caller is told,
// and the other writes of the batch are stored.
func TestRejectedWrite(t *testing.T) {
	for _, mode := range []string{SyncBatch, SyncFull} {
		t.Run(mode, func(t *testing.T) {
			db := open(t, Options{Sync: mode})
			ctx := t.Context()
			if _, err := db.db.ExecContext(ctx, `CREATE TRIGGER reject BEFORE INSERT ON tasks WHEN NEW.msg_id = 'bad'
				BEGIN SELECT RAISE(ABORT, 'no bad records'); END`); err != nil {
				t.Fatal(err)
			}
			sub := taskdb.Record{"submitted": time.Now()}
			for _, id := range []string{"a", "bad", "b"} {
				err := db.AddRecord(ctx, id, sub)
				if id == "bad" && mode == SyncFull {
					if err == nil || !strings.Contains(err.Error(), "rejected") {
						t.Errorf("AddRecord(bad) = %v, want a rejection", err)
					}
				} else if err != nil {
					t.Fatalf("AddRecord(%s): %v", id, err)
				}
			}
			if err := db.sync(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := db.GetRecord(ctx, "bad"); !errors.Is(err, taskdb.ErrNotFound) {
				t.Errorf("GetRecord(bad) = %v, want ErrNotFound", err)
			}
			if h, err := db.History(ctx); err != nil || strings.Join(h, ",") != "a,b" {
				t.Errorf("History = %v, %v; want a,b", h, err)
			}
			if s := db.Stats(); s.Rejected != 1 {
				t.Errorf("Stats().Rejected = %d, want 1", s.Rejected)
			}
			if err := db.AddRecord(ctx, "bad", nil); err == nil && mode == SyncBatch {
				if _, err := db.GetRecord(ctx, "bad"); !errors.Is(err, taskdb.ErrNotFound) {
					t.Errorf("GetRecord of a rejected re-add = %v, want ErrNotFound", err)
				}
			}
		})
	}
}

// TestRejectedUpdate has SQLite reject one update: the catalog, which
// answers History, queries on msg_id and submitted alone, and conditions
// on client_uuid, engine_uuid and pending, must go on agreeing with the
// stored row, which the update did not change.
func TestRejectedUpdate(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, mode := range []string{SyncBatch, SyncFull} {
		t.Run(mode, func(t *testing.T) {
			db := open(t, Options{Sync: mode})
			ctx := t.Context()
			if _, err := db.db.ExecContext(ctx, `CREATE TRIGGER reject BEFORE UPDATE ON tasks WHEN NEW.msg_id = 'bad'
				BEGIN SELECT RAISE(ABORT, 'no bad updates'); END`); err != nil {
				t.Fatal(err)
			}
			for i, id := range []string{"bad", "a"} {
				if err := db.AddRecord(ctx, id, taskdb.Record{"submitted": at(i), "client_uuid": "x", "engine_uuid": "e"}); err != nil {
					t.Fatal(err)
				}
			}
			err := db.UpdateRecord(ctx, "bad", taskdb.Record{"submitted": at(2), "client_uuid": "y", "engine_uuid": nil, "completed": at(2)})
			if mode == SyncFull && (err == nil || !strings.Contains(err.Error(), "rejected")) {
				t.Errorf("UpdateRecord(bad) = %v, want a rejection", err)
			} else if mode == SyncBatch && err != nil {
				t.Fatal(err)
			}
			if err := db.sync(ctx); err != nil {
				t.Fatal(err)
			}
			if h, err := db.History(ctx); err != nil || strings.Join(h, ",") != "bad,a" {
				t.Errorf("History = %v, %v; want bad,a", h, err)
			}
			for _, q := range []string{
				`{"client_uuid": "x"}`,
				`{"engine_uuid": "e", "completed": null}`,
				`{"submitted": {"$lt": {"$date": "2024-01-02T03:04:05.5Z"}}}`,
			} {
				for _, keys := range [][]string{nil, {"msg_id"}} {
					rs, err := db.FindRecords(ctx, query.MustParse(q), keys)
					if err != nil || len(rs) == 0 || rs[0].Get("msg_id") != "bad" {
						t.Errorf("%s, keys %v: %v, %v; want bad first", q, keys, rs, err)
					}
				}
			}
		})
	}
}

// TestRejectedDrop has SQLite reject the deletion of one row, alone and
// in the middle of a DropMatchingRecords: the records still stored must
// stay in the catalog, so that GetRecord, History and catalog queries
// agree with SQL.
func TestRejectedDrop(t *testing.T) {
	db := open(t, Options{})
	ctx := t.Context()
	if _, err := db.db.ExecContext(ctx, `CREATE TRIGGER reject BEFORE DELETE ON tasks WHEN OLD.msg_id = 'bad'
		BEGIN SELECT RAISE(ABORT, 'no bad drops'); END`); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "bad", "c", "d"} {
		if err := db.AddRecord(ctx, id, taskdb.Record{"submitted": time.Date(2024, 1, 1, 0, 0, i, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DropRecord(ctx, "bad"); err != nil {
		t.Fatal(err)
	}
	if err := db.sync(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(when, want string) {
		t.Helper()
		if _, err := db.GetRecord(ctx, "bad"); err != nil {
			t.Errorf("%s: GetRecord(bad) = %v", when, err)
		}
		if h, err := db.History(ctx); err != nil || strings.Join(h, ",") != want {
			t.Errorf("%s: History = %v, %v; want %s", when, h, err, want)
		}
		for _, keys := range [][]string{nil, {"msg_id"}} {
			rs, err := db.FindRecords(ctx, nil, keys)
			if got := strings.Join(docIDs(rs), ","); err != nil || got != want {
				t.Errorf("%s: FindRecords(keys %v) = %s, %v; want %s", when, keys, got, err, want)
			}
		}
		db.idsMu.Lock()
		defer db.idsMu.Unlock()
		if err := db.cat.check(); err != nil {
			t.Errorf("%s: catalog: %v", when, err)
		}
	}
	check("DropRecord", "a,bad,c,d")
	if err := db.DropMatchingRecords(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("DropMatchingRecords", "bad,c,d")
}

func docIDs(ds []taskdb.Doc) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i], _ = d.Get("msg_id").(string)
	}
	return ids
}

// TestReadsWhileQueueFull blocks the writer (another connection holds the
// write lock) until writers fill the queue and wait: History, GetRecord
// and writes of other callers' errors must not wait behind them.
func TestReadsWhileQueueFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.db")
	db := open(t, Options{Path: path, BatchSize: 2, FlushInterval: time.Millisecond})
	ctx := t.Context()
	if err := db.AddRecord(ctx, "first", taskdb.Record{"submitted": time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.sync(ctx); err != nil {
		t.Fatal(err)
	}
	lock, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conn, err := lock.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var writers sync.WaitGroup
	for g := range 8 {
		writers.Go(func() {
			for i := range 4 {
				if err := db.AddRecord(ctx, fmt.Sprint(g, "-", i), nil); err != nil {
					t.Error(err)
				}
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(db.slots) < cap(db.slots) { // the queue is full: writers wait
		if time.Now().After(deadline) {
			t.Fatal("the queue never filled")
		}
		time.Sleep(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() {
		if _, err := db.History(ctx); err != nil {
			done <- err
			return
		}
		_, err := db.GetRecord(ctx, "first")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Error("reads wait behind writes blocked on a full queue")
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	writers.Wait()
	if h, err := db.History(ctx); err != nil || len(h) != 1 {
		t.Errorf("History = %d ids, %v", len(h), err)
	}
	if rs, err := db.FindRecords(ctx, nil, []string{"stdout"}); err != nil || len(rs) != 33 {
		t.Errorf("FindRecords = %d records, %v; want 33", len(rs), err)
	}
}
