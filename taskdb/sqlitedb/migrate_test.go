package sqlitedb

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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

// copyV1 copies testdata/v1.db, written by this package at schema
// version 1 (commit 9decb8f) applying fixtureOps to table tasks and one
// record to table other, into a temporary directory.
func copyV1(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "v1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tasks.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fresh returns the snapshot of a new database given fixtureOps.
func fresh(t *testing.T) snapshot {
	t.Helper()
	db := open(t, Options{})
	fixtureOps(t, db)
	return snap(t, db)
}

// checkMigrated opens the v1 file at path and checks that both its tables
// now read exactly as a new database given the same writes.
func checkMigrated(t *testing.T, path string) {
	t.Helper()
	var logs bytes.Buffer
	db := open(t, Options{Path: path, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if got, want := snap(t, db), fresh(t); !reflect.DeepEqual(got, want) {
		t.Errorf("migrated file differs from a fresh database:\n got %d history, %d records, %d pending\nwant %d history, %d records, %d pending",
			len(got.history), len(got.records), len(got.pending), len(want.history), len(want.records), len(want.pending))
		for i := range min(len(got.records), len(want.records)) {
			if !reflect.DeepEqual(got.records[i], want.records[i]) {
				t.Fatalf("first difference:\n got %v\nwant %v", got.records[i], want.records[i])
			}
		}
	}
	for _, table := range []string{"tasks", "other"} {
		if !strings.Contains(logs.String(), "table="+table+" records=") {
			t.Errorf("the log does not report migrating table %s:\n%s", table, logs.String())
		}
	}
	other := open(t, Options{Path: path, Table: "other"})
	if d, err := other.GetRecord(t.Context(), "other-1"); err != nil || d.Get("stdout") != "in other" {
		t.Errorf("table other after the migration: %v, %v", d, err)
	}
	var version int
	if err := db.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != SchemaVersion {
		t.Errorf("user_version = %d, %v; want %d", version, err, SchemaVersion)
	}
}

func TestMigrateV1(t *testing.T) {
	checkMigrated(t, copyV1(t))
}

// The migration crash test runs TestMigrateCrashChild as a process that
// migrates a v1 file and stops, once the rows are copied, until killed.
const migrateEnv = "SQLITEDB_MIGRATE_PATH"

func TestMigrateCrashChild(t *testing.T) {
	path := os.Getenv(migrateEnv)
	if path == "" {
		t.Skip("the child process of TestMigrateCrash; runs only when " + migrateEnv + " is set")
	}
	migrateHook = func(table string) {
		fmt.Println("copied", table)
		time.Sleep(time.Minute) // should the parent never kill it
		os.Exit(4)
	}
	_, err := Open(context.Background(), Options{Path: path})
	fmt.Println("open:", err)
	os.Exit(2)
}

// TestMigrateCrash kills a migration midway with SIGKILL: the file must
// still be the v1 file, and the next Open migrates it.
func TestMigrateCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := copyV1(t)
	cmd, out := startChild(t, "TestMigrateCrashChild", migrateEnv+"="+path)
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "copied other\n" { // tables migrate in name order
		t.Fatalf("child: %q, %v; want it to report the copy of table other", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() //nolint:errcheck // killed on purpose

	sdb, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var version int
	var check string
	if err := sdb.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != 1 {
		t.Errorf("user_version after the crash = %d, %v; want 1", version, err)
	}
	if err := sdb.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v; want ok", check, err)
	}
	var tables string
	if err := sdb.QueryRow("SELECT group_concat(name) FROM (SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name)").Scan(&tables); err != nil || tables != "other,tasks" {
		t.Errorf("tables after the crash: %q, %v; want other,tasks", tables, err)
	}
	sdb.Close()
	checkMigrated(t, path)
}

// BenchmarkMigrateV1 measures the migration of a v1 file of 100k records
// (the fixture's records repeated): the cost of the first start after an
// upgrade.
func BenchmarkMigrateV1(b *testing.B) {
	const n = 100_000
	src := copyV1(b)
	sdb, err := sql.Open("sqlite", "file:"+src)
	if err != nil {
		b.Fatal(err)
	}
	cols := strings.Split(v1Columns, ",")
	cols[0], cols[1] = "seq + ?", "msg_id || ?"
	copyRows := "INSERT INTO tasks SELECT " + strings.Join(cols, ", ") + " FROM tasks WHERE seq < 1000"
	for k := 1; ; k++ {
		var have int
		if err := sdb.QueryRow("SELECT count(*) FROM tasks").Scan(&have); err != nil {
			b.Fatal(err)
		}
		if have >= n {
			break
		}
		if _, err := sdb.Exec(copyRows, k*1000, fmt.Sprint("-", k)); err != nil {
			b.Fatal(err)
		}
	}
	if err := sdb.Close(); err != nil {
		b.Fatal(err)
	}
	orig, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "tasks.db")
	for b.Loop() {
		b.StopTimer()
		if err := os.WriteFile(path, orig, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		db := openOnly(b, Options{Path: path})
		b.StopTimer()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/migration")
}

// TestDropOldIndexes opens a file whose table has the client_uuid and
// engine_uuid indexes earlier builds created: Open drops them, logs it,
// and the records read as before.
func TestDropOldIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.db")
	db := openOnly(t, Options{Path: path})
	fixtureOps(t, db)
	want := snap(t, db)
	for _, s := range []string{"CREATE INDEX tasks_client ON tasks(client_uuid)", "CREATE INDEX tasks_engine ON tasks(engine_uuid)"} {
		if _, err := db.db.ExecContext(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	db = open(t, Options{Path: path, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, name := range []string{"tasks_client", "tasks_engine"} {
		if !strings.Contains(logs.String(), "index="+name) {
			t.Errorf("the log does not report dropping %s:\n%s", name, logs.String())
		}
	}
	var n int
	if err := db.db.QueryRowContext(t.Context(), "SELECT count(*) FROM sqlite_schema WHERE type = 'index'").Scan(&n); err != nil || n != 2 {
		t.Errorf("%d indexes, %v; want 2 (history and pending)", n, err)
	}
	if got := snap(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("records changed when the indexes were dropped")
	}
}
