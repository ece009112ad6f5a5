package sqlitedb

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/query"
)

// snapshot is what a restart must preserve.
type snapshot struct {
	history []string
	records []taskdb.Doc
	pending []string
	idents  [][]string // ids the catalog's client_uuid and engine_uuid select
}

func snap(t *testing.T, db taskdb.DB) snapshot {
	t.Helper()
	h, err := db.History(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	all, err := db.FindRecords(t.Context(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(q string) []string {
		t.Helper()
		rs, err := db.FindRecords(t.Context(), query.MustParse(q), []string{"msg_id"})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.Get("msg_id").(string))
		}
		return out
	}
	var idents [][]string
	for _, q := range []string{
		`{"client_uuid":{"$lt":"00000050"},"completed":null}`,
		`{"engine_uuid":null}`,
		`{"engine_uuid":{"$gte":"e0000008"},"client_uuid":{"$in":["00000001-000000000000000000000001",null]}}`,
	} {
		idents = append(idents, ids(q))
	}
	return snapshot{h, all, ids(`{"completed":null}`), idents}
}

func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.db")
	db := openOnly(t, Options{Path: path})
	w := load(t, db, 300)
	ctx := t.Context()
	for i := 0; i < 300; i += 7 {
		if err := db.UpdateRecord(ctx, w.ID(i), w.Result(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.UpdateRecord(ctx, w.ID(3), taskdb.Record{"display_data": []any{"x", int64(1)}}); err != nil {
		t.Fatal(err)
	}
	if err := db.DropRecord(ctx, w.ID(5)); err != nil {
		t.Fatal(err)
	}
	if err := db.AddRecord(ctx, "no-submitted", taskdb.Record{"stdout": "hi"}); err != nil {
		t.Fatal(err)
	}
	before := snap(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := open(t, Options{Path: path})
	after := snap(t, db2)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("state changed across a restart:\nbefore: %d history, %d records, %d pending\nafter:  %d history, %d records, %d pending",
			len(before.history), len(before.records), len(before.pending), len(after.history), len(after.records), len(after.pending))
	}
	for i, ids := range before.idents {
		if len(ids) == 0 {
			t.Errorf("client_uuid/engine_uuid query %d selects nothing", i)
		}
	}
	if len(before.records) != 300 || len(before.history) != 299 {
		t.Errorf("got %d records, %d in history; want 300, 299", len(before.records), len(before.history))
	}
	if err := db2.AddRecord(ctx, w.ID(0), nil); !errors.Is(err, taskdb.ErrExists) {
		t.Errorf("AddRecord of a stored id after restart: %v, want ErrExists", err)
	}
}

// TestTimeZones checks that times written and queried with offsets compare
// as instants (ipyparallel compared them as text, §10.7).
func TestTimeZones(t *testing.T) {
	db := open(t, Options{})
	ctx := t.Context()
	paris := time.FixedZone("+01:00", 3600)
	ny := time.FixedZone("-05:00", -5*3600)
	base := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	for id, sub := range map[string]time.Time{
		"paris": base.In(paris),                           // 10:00+01:00 = 09:00Z
		"utc":   base.Add(30 * time.Minute),               // 09:30Z
		"ny":    base.Add(-30 * time.Minute).In(ny),       // 03:30-05:00 = 08:30Z
		"late":  base.Add(2*time.Hour + time.Microsecond), // 11:00:00.000001Z
	} {
		if err := db.AddRecord(ctx, id, taskdb.Record{"submitted": sub}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := db.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ny", "paris", "utc", "late"}; !reflect.DeepEqual(h, want) {
		t.Errorf("History = %v, want %v", h, want)
	}
	tokyo := time.FixedZone("+09:00", 9*3600)
	for _, c := range []struct {
		q    map[string]any
		want []string
	}{
		{map[string]any{"submitted": map[string]any{"$lt": base.Add(15 * time.Minute).In(tokyo)}}, []string{"ny", "paris"}},
		{map[string]any{"submitted": base.In(ny)}, []string{"paris"}},
		{map[string]any{"submitted": map[string]any{"$in": []any{base.In(tokyo), base.Add(30 * time.Minute).In(paris)}}}, []string{"paris", "utc"}},
		{map[string]any{"submitted": map[string]any{"$gt": base.Add(2 * time.Hour)}}, []string{"late"}},
		{map[string]any{"submitted": map[string]any{"$gte": base.Add(-30 * time.Minute), "$lte": base}}, []string{"ny", "paris"}},
	} {
		f, err := query.Parse(c.q)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := db.FindRecords(ctx, f, []string{"submitted"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			got = append(got, r.Get("msg_id").(string))
			if s := r.Get("submitted").(time.Time); s.Location() != time.UTC {
				t.Errorf("%s: submitted comes back in %v, want UTC", r.Get("msg_id"), s.Location())
			}
		}
		if !sameSet(got, c.want) {
			t.Errorf("FindRecords(%s) = %v, want %v", f, got, c.want)
		}
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return len(a) == len(b)
}

// TestReadersDuringWrites runs readers against a writer; each reader
// checks it sees its own writes at once (read-your-writes) and that the
// history only grows. Meaningful under -race.
func TestReadersDuringWrites(t *testing.T) {
	for _, mode := range []string{SyncBatch, SyncFull} {
		t.Run(mode, func(t *testing.T) {
			db := open(t, Options{Sync: mode, FlushInterval: 5 * time.Millisecond})
			ctx := t.Context()
			w := dbtest.NewWorkload()
			const writers = 3
			perWriter := 150
			if mode == SyncFull { // one fsync per group: keep the test short on slow disks
				perWriter = 50
			}
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for i := g; i < writers*perWriter; i += writers {
						if err := db.AddRecord(ctx, w.ID(i), w.Record(i)); err != nil {
							t.Error(err)
							return
						}
						if _, err := db.GetRecord(ctx, w.ID(i)); err != nil {
							t.Errorf("own write not visible: %v", err)
							return
						}
						if i%10 == 0 {
							if err := db.UpdateRecord(ctx, w.ID(i), w.Result(i)); err != nil {
								t.Error(err)
								return
							}
							r, err := db.GetRecord(ctx, w.ID(i))
							if err != nil || r.Get("completed") == nil {
								t.Errorf("own update not visible: %v %v", r.Get("completed"), err)
								return
							}
						}
					}
				})
			}
			stop := make(chan struct{})
			var readers sync.WaitGroup
			for range 2 {
				readers.Go(func() {
					last := 0
					for {
						select {
						case <-stop:
							return
						default:
						}
						h, err := db.History(ctx)
						if err != nil {
							t.Error(err)
							return
						}
						if len(h) < last {
							t.Errorf("history shrank from %d to %d", last, len(h))
						}
						last = len(h)
						if _, err := db.FindRecords(ctx, query.MustParse(`{"completed":null}`), []string{"client_uuid"}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(stop)
			readers.Wait()
			h, err := db.History(ctx)
			if err != nil || len(h) != writers*perWriter {
				t.Errorf("history has %d ids (%v), want %d", len(h), err, writers*perWriter)
			}
		})
	}
}

// The crash test re-executes the test binary as a writer process (this
// test with crashEnv set), kills it with SIGKILL mid-load and reopens the
// file.
const (
	crashEnv      = "SQLITEDB_CRASH_PATH"
	crashSyncEnv  = "SQLITEDB_CRASH_SYNC"
	crashInterval = 20 * time.Millisecond
	crashBatch    = 64
)

// TestCrashWriter is the writer process: it adds records from one
// goroutine and prints "ack N" after AddRecord N returns, until killed.
func TestCrashWriter(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("the writer process of TestCrash; runs only when " + crashEnv + " is set")
	}
	db, err := Open(context.Background(), Options{Path: path, Sync: os.Getenv(crashSyncEnv), FlushInterval: crashInterval, BatchSize: crashBatch})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	w := dbtest.NewWorkload()
	deadline := time.Now().Add(time.Minute) // should the parent never kill it
	for i := 0; time.Now().Before(deadline); i++ {
		if err := db.AddRecord(context.Background(), w.ID(i), w.Record(i)); err != nil {
			fmt.Println("add:", err)
			os.Exit(2)
		}
		if _, err := fmt.Printf("ack %d\n", i); err != nil {
			os.Exit(3) // the parent is gone
		}
	}
	os.Exit(4)
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts writer processes")
	}
	for _, c := range []struct {
		mode string
		acks int // acknowledged writes before the kill
	}{{SyncFull, 150}, {SyncBatch, 3000}} {
		t.Run(c.mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tasks.db")
			cmd, out := startChild(t, "TestCrashWriter", crashEnv+"="+path, crashSyncEnv+"="+c.mode)
			lines := bufio.NewScanner(out)
			last := -1
			killed := false
			for lines.Scan() {
				n, err := strconv.Atoi(strings.TrimPrefix(lines.Text(), "ack "))
				if err != nil {
					t.Errorf("writer: %s", lines.Text())
					continue
				}
				last = n
				if !killed && n+1 >= c.acks {
					if err := cmd.Process.Kill(); err != nil { // SIGKILL
						t.Fatal(err)
					}
					killed = true // keep reading the acks still in the pipe
				}
			}
			cmd.Wait() //nolint:errcheck // killed on purpose
			if !killed {
				t.Fatalf("the writer stopped after %d acks before the kill", last+1)
			}

			sdb, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			var check string
			if err := sdb.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
				t.Errorf("integrity_check = %q, %v; want ok", check, err)
			}
			sdb.Close()

			db := open(t, Options{Path: path})
			h, err := db.History(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			w := dbtest.NewWorkload()
			for i, id := range h { // one writer, committed in order: a prefix
				if id != w.ID(i) {
					t.Fatalf("record %d is %s, want %s: not a prefix of the writes", i, id, w.ID(i))
				}
			}
			lost := max(0, last+1-len(h)) // a commit may land before its ack is printed
			t.Logf("%d writes acknowledged, %d stored, %d lost", last+1, len(h), lost)
			switch c.mode {
			case SyncFull:
				if lost > 0 {
					t.Errorf("sync: full lost %d acknowledged writes", lost)
				}
			case SyncBatch:
				// The writer holds at most one open batch and the queue
				// (2×BatchSize) behind it: that is the loss bound.
				if lost > 3*crashBatch {
					t.Errorf("sync: batch lost %d writes, more than the queue and one batch (%d)", lost, 3*crashBatch)
				}
			}
		})
	}
}

// TestGetQueued checks that GetRecord of a record with queued writes
// reads them without forcing a commit (the hub reads a record before each
// output append), while FindRecords commits first.
func TestGetQueued(t *testing.T) {
	db := open(t, Options{FlushInterval: time.Hour})
	ctx := t.Context()
	if err := db.AddRecord(ctx, "a", taskdb.Record{"stdout": "x"}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r, err := db.GetRecord(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateRecord(ctx, "a", taskdb.Record{"stdout": r.Get("stdout").(string) + "x", "extra_key": int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := db.GetRecord(ctx, "a")
	if err != nil || r.Get("stdout") != "xxxx" || r.Get("extra_key") != int64(2) {
		t.Fatalf("GetRecord = %v, %v; want stdout xxxx, extra_key 2", r, err)
	}
	if n := db.Stats().Commits; n != 0 {
		t.Errorf("%d commits after reads of queued writes, want 0", n)
	}
	if _, err := db.FindRecords(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := db.Stats().Commits; n != 1 {
		t.Errorf("%d commits after FindRecords, want 1", n)
	}
	if r, err := db.GetRecord(ctx, "a"); err != nil || r.Get("stdout") != "xxxx" { // from a reader connection
		t.Errorf("GetRecord after the commit = %v, %v", r, err)
	}
}

// TestFindByIDWithoutCommit checks that a query naming records by msg_id
// commits only when one of them has queued writes.
func TestFindByIDWithoutCommit(t *testing.T) {
	db := open(t, Options{FlushInterval: time.Hour})
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		if err := db.AddRecord(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.FindRecords(ctx, query.MustParse(`{}`), nil); err != nil { // commits a and b
		t.Fatal(err)
	}
	if err := db.UpdateRecord(ctx, "b", taskdb.Record{"stdout": "new"}); err != nil {
		t.Fatal(err)
	}
	rs, err := db.FindRecords(ctx, query.MustParse(`{"msg_id":{"$in":["a","zz"]}}`), nil)
	if err != nil || len(rs) != 1 || db.Stats().Commits != 1 {
		t.Errorf("find a: %d records, %v, %d commits; want 1 record without a second commit", len(rs), err, db.Stats().Commits)
	}
	rs, err = db.FindRecords(ctx, query.MustParse(`{"msg_id":"b"}`), nil)
	if err != nil || len(rs) != 1 || rs[0].Get("stdout") != "new" || db.Stats().Commits != 2 {
		t.Errorf("find b: %v, %v, %d commits; want b with its queued update, committed", rs, err, db.Stats().Commits)
	}
}

// TestQueueBytes checks that large buffers cannot pile up in the queue:
// with a 1 MiB budget, 100 writes of 64 KiB commit in several batches
// even though no flush interval passes.
func TestQueueBytes(t *testing.T) {
	defer func(n int64) { maxQueuedBytes = n }(maxQueuedBytes)
	maxQueuedBytes = 1 << 20
	db := open(t, Options{FlushInterval: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	buf := make([]byte, 64<<10)
	for i := range 100 {
		if err := db.AddRecord(ctx, fmt.Sprint(i), taskdb.Record{"buffers": []any{buf}}); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	if n := db.Stats().Commits; n < 6 {
		t.Errorf("%d commits for 6.4 MB through a 1 MiB budget, want at least 6", n)
	}
	r, err := db.GetRecord(ctx, "99")
	if err != nil || len(r.Get("buffers").([]any)[0].([]byte)) != len(buf) {
		t.Errorf("GetRecord = %v", err)
	}
}

// startChild runs test in a child process of this test binary, with env
// added, and returns it and its stdout; the child is killed when t ends.
func startChild(t *testing.T, test string, env ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() }) //nolint:errcheck // usually killed already
	return cmd, out
}
