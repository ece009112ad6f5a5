package mongodb

import (
	"errors"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/mongodb/mongotest"
	"github.com/taskhub/taskhub/taskdb/query"
)

// killable starts a FerretDB fixture the test may kill, and returns it
// and a function that starts it again on the same address and data
// directory. A server given by URI cannot be killed from here: the test
// skips then.
func killable(t *testing.T) (*mongotest.Fixture, func()) {
	t.Helper()
	if os.Getenv(mongotest.EnvURI) != "" && os.Getenv(mongotest.EnvFerretDB) == "" {
		t.Skipf("needs %s: the test stops and restarts the server", mongotest.EnvFerretDB)
	}
	bin := mongotest.FerretDB(t)
	dir := t.TempDir()
	fix, err := mongotest.Start(bin, "127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fix.Stop)
	restart := func() {
		t.Helper()
		again, err := mongotest.Start(bin, fix.Addr, dir)
		if err != nil {
			t.Fatalf("restart on %s: %v", fix.Addr, err)
		}
		t.Cleanup(again.Stop)
	}
	return fix, restart
}

// TestOutage kills the server (SIGKILL) while a writer adds records,
// restarts it on the same address and data directory, and checks that
// every record whose AddRecord returned nil is stored: the write queue
// buffers them through the outage and applies them after. It needs the
// FerretDB fixture: a server given by URI cannot be killed from here.
func TestOutage(t *testing.T) {
	fix, restart := killable(t)
	db := open(t, Options{URI: fix.URI + "?serverSelectionTimeoutMS=2000", Database: "outage"})

	w := dbtest.NewWorkload()
	const n = 600
	var acked []string
	var failed int
	var added atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if err := db.AddRecord(t.Context(), w.ID(i), w.Record(i)); err != nil {
				failed++
				continue
			}
			acked = append(acked, w.ID(i))
			added.Add(1)
		}
	}()
	for added.Load() < n/3 {
		time.Sleep(time.Millisecond)
	}
	fix.Stop() // SIGKILL mid-load
	time.Sleep(500 * time.Millisecond)
	restart()
	<-done
	t.Logf("%d of %d records acknowledged, %d failed during the outage", len(acked), n, failed)
	if len(acked) <= n/3 {
		t.Fatalf("only %d records acknowledged: the writer did not resume after the restart", len(acked))
	}

	ids := make([]any, len(acked))
	for i, id := range acked {
		ids[i] = id
	}
	q, err := query.Parse(map[string]any{taskdb.KeyMsgID: map[string]any{"$in": ids}})
	if err != nil {
		t.Fatal(err)
	}
	// The first reads after the restart may meet connections the server
	// dropped: they fail with ErrUnavailable until the pool is renewed.
	var found []taskdb.Doc
	for try := 0; ; try++ {
		found, err = db.FindRecords(t.Context(), q, []string{taskdb.KeyMsgID})
		if err == nil {
			break
		}
		if !errors.Is(err, taskdb.ErrUnavailable) || try == 100 {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := db.Stats(); s.Pending != 0 || s.Rejected != 0 || s.Retries == 0 {
		t.Errorf("queue after the outage: %+v; want nothing pending or rejected, and retries", s)
	}
	if len(found) != len(acked) {
		have := make(map[string]bool, len(found))
		for _, d := range found {
			have[d.Get(taskdb.KeyMsgID).(string)] = true
		}
		var lost []string
		for _, id := range acked {
			if !have[id] {
				lost = append(lost, id)
			}
		}
		t.Fatalf("%d acknowledged records lost, e.g. %v", len(lost), lost[:min(len(lost), 5)])
	}
	if _, err := db.GetRecord(t.Context(), acked[len(acked)-1]); err != nil {
		t.Errorf("GetRecord after the restart: %v", err)
	}
}

// TestOutageBound stops the server and checks that writes are buffered up
// to MaxPending, then refused with ErrUnavailable rather than dropped or
// blocked, that reads fail with ErrUnavailable meanwhile, and that the
// buffered writes are stored once the server is back.
func TestOutageBound(t *testing.T) {
	fix, restart := killable(t)
	const bound = 20
	db := open(t, Options{URI: fix.URI + "?serverSelectionTimeoutMS=300", Database: "bound", MaxPending: bound})
	w := dbtest.NewWorkload()
	fix.Stop()

	var acked []string
	for i := range 10 * bound {
		err := db.AddRecord(t.Context(), w.ID(i), w.Record(i))
		if errors.Is(err, taskdb.ErrUnavailable) {
			break
		}
		if err != nil {
			t.Fatalf("add %d: %v, want nil or ErrUnavailable", i, err)
		}
		acked = append(acked, w.ID(i))
	}
	if len(acked) != bound {
		t.Fatalf("%d writes acknowledged during the outage, want the bound %d", len(acked), bound)
	}
	if _, err := db.History(t.Context()); !errors.Is(err, taskdb.ErrUnavailable) {
		t.Errorf("History during the outage: %v, want ErrUnavailable", err)
	}

	restart()
	var h []string
	var err error
	for try := 0; ; try++ {
		if h, err = db.History(t.Context()); err == nil {
			break
		}
		if !errors.Is(err, taskdb.ErrUnavailable) || try == 100 {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Equal(h, acked) {
		t.Errorf("history after the outage: %d records, want the %d acknowledged", len(h), len(acked))
	}
}
