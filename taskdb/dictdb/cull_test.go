package dictdb_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

var base = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// loader adds records like ipyparallel's TaskDBTest.load_records: each
// with one buffer of the given size and a later submitted time.
type loader struct {
	t  *testing.T
	db *dictdb.DB
	n  int
}

func (l *loader) load(count, bufSize int, extra taskdb.Record) []string {
	l.t.Helper()
	var ids []string
	for range count {
		id := fmt.Sprintf("m%d", l.n)
		rec := taskdb.Record{"submitted": base.Add(time.Duration(l.n) * time.Second), "buffers": []any{make([]byte, bufSize)}}
		for k, v := range extra {
			rec[k] = v
		}
		l.n++
		if err := l.db.AddRecord(l.t.Context(), id, rec); err != nil {
			l.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func (l *loader) history() []string {
	l.t.Helper()
	h, err := l.db.History(l.t.Context())
	if err != nil {
		l.t.Fatal(err)
	}
	return h
}

func (l *loader) wantLen(want int) {
	l.t.Helper()
	if got := len(l.history()); got != want {
		l.t.Fatalf("%d records, want %d", got, want)
	}
}

func newLoader(t *testing.T, opts dictdb.Options) *loader {
	db := dictdb.New(opts)
	t.Cleanup(func() { db.Close() })
	return &loader{t: t, db: db}
}

func TestCullCount(t *testing.T) {
	l := newLoader(t, dictdb.Options{RecordLimit: 20, CullFraction: 0.2})
	l.load(20, 100, nil)
	l.wantLen(20)
	l.load(1, 100, nil)
	l.wantLen(17) // 0.2 * 20 = 4 culled
	l.load(3, 100, nil)
	l.wantLen(20)
	l.load(1, 100, nil)
	l.wantLen(17)
	for range 25 {
		l.load(1, 100, nil)
		if n := len(l.history()); n < 17 || n > 20 {
			t.Fatalf("%d records, want 17..20", n)
		}
	}
}

func TestCullSize(t *testing.T) {
	l := newLoader(t, dictdb.Options{SizeLimit: 1000, CullFraction: 0.2})
	l.load(100, 10, nil)
	l.wantLen(100)
	l.load(1, 0, nil)
	l.wantLen(101)
	l.load(1, 1, nil)
	l.wantLen(81) // culled down to at most 800 bytes
}

func TestCullSizeDrop(t *testing.T) {
	l := newLoader(t, dictdb.Options{SizeLimit: 1000, CullFraction: 0.2})
	l.load(100, 10, nil)
	l.wantLen(100)
	h := l.history()
	if err := l.db.DropRecord(t.Context(), h[len(h)-1]); err != nil {
		t.Fatal(err)
	}
	l.wantLen(99)
	l.load(1, 5, nil)
	l.wantLen(100)
	l.load(1, 5, nil)
	l.wantLen(101)
	l.load(1, 1, nil)
	l.wantLen(81)
}

func TestCullSizeUpdate(t *testing.T) {
	l := newLoader(t, dictdb.Options{SizeLimit: 1000, CullFraction: 0.2})
	l.load(100, 10, nil)
	l.wantLen(100)
	h := l.history()
	id := h[len(h)-1]
	update := func(n int) {
		t.Helper()
		if err := l.db.UpdateRecord(t.Context(), id, taskdb.Record{"result_buffers": []any{make([]byte, n)}, "buffers": []any{}}); err != nil {
			t.Fatal(err)
		}
	}
	update(10)
	l.wantLen(100)
	update(11)
	l.wantLen(79)
}

func TestCullAtLeastOne(t *testing.T) {
	// ipyparallel culled int(0.1*5) = 0 records and grew without bound.
	l := newLoader(t, dictdb.Options{RecordLimit: 5, CullFraction: 0.1})
	l.load(20, 1, nil)
	l.wantLen(5)
	h := l.history()
	if h[0] != "m15" {
		t.Errorf("kept %v, want the newest five", h)
	}
}

func TestCullCompletedBeforePending(t *testing.T) {
	var logs bytes.Buffer
	l := newLoader(t, dictdb.Options{RecordLimit: 10, CullFraction: 0.2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	pending := l.load(4, 1, nil)
	done := l.load(6, 1, taskdb.Record{"completed": base})
	l.load(1, 1, taskdb.Record{"completed": base})
	for _, id := range pending {
		if _, err := l.db.GetRecord(t.Context(), id); err != nil {
			t.Errorf("pending %s: %v; pending records must outlive completed ones", id, err)
		}
	}
	for i, id := range done {
		_, err := l.db.GetRecord(t.Context(), id)
		if culled := i < 2; culled != errors.Is(err, taskdb.ErrCulled) {
			t.Errorf("completed %s (the %d. oldest): %v; want only the 2 oldest culled", id, i+1, err)
		}
	}
	if strings.Contains(logs.String(), "pending") {
		t.Errorf("logged a pending cull while completed records were left:\n%s", logs.String())
	}

	// Only pending records now beyond the limit: they go, oldest first, and that is logged.
	if err := l.db.DropMatchingRecords(t.Context(), query.MustParse(`{"completed":{"$ne":null}}`)); err != nil {
		t.Fatal(err)
	}
	l.load(7, 1, nil)
	l.wantLen(9)
	if _, err := l.db.GetRecord(t.Context(), pending[0]); !errors.Is(err, taskdb.ErrCulled) {
		t.Errorf("oldest pending record: %v, want ErrCulled", err)
	}
	if !strings.Contains(logs.String(), "pending record culled") || !strings.Contains(logs.String(), pending[0]) {
		t.Errorf("pending cull not logged with its msg_id:\n%s", logs.String())
	}
}

func TestCullWithoutSubmitted(t *testing.T) {
	// ipyparallel never culled records without submitted, and its size
	// loop spun forever when they held the excess bytes.
	db := dictdb.New(dictdb.Options{SizeLimit: 100, RecordLimit: 3, CullFraction: 0.5})
	t.Cleanup(func() { db.Close() })
	for i := range 10 {
		if err := db.AddRecord(t.Context(), fmt.Sprintf("m%d", i), taskdb.Record{"buffers": []any{make([]byte, 40)}}); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := db.FindRecords(t.Context(), nil, []string{"msg_id"})
	if err != nil {
		t.Fatal(err)
	}
	// Every third add passes 100 bytes and culls the oldest down to 50.
	if got := fmt.Sprint(rs); got != "[[{msg_id m8}] [{msg_id m9}]]" {
		t.Errorf("kept %v, want m8 and m9", got)
	}
}

func TestCulledTombstones(t *testing.T) {
	l := newLoader(t, dictdb.Options{RecordLimit: 1, Tombstones: 3})
	ids := l.load(6, 1, nil) // m0..m4 culled, m5 kept
	ctx := t.Context()
	for i, id := range ids[:5] {
		_, getErr := l.db.GetRecord(ctx, id)
		updErr := l.db.UpdateRecord(ctx, id, taskdb.Record{"stdout": "x"})
		dropErr := l.db.DropRecord(ctx, id)
		for _, err := range []error{getErr, updErr, dropErr} {
			if !errors.Is(err, taskdb.ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotFound", id, err)
			}
			if remembered := i >= 2; errors.Is(err, taskdb.ErrCulled) != remembered {
				t.Errorf("%s: %v; want ErrCulled only for the 3 most recent culls", id, err)
			}
		}
	}
	// A culled id may be used again.
	if err := l.db.AddRecord(ctx, ids[4], taskdb.Record{"submitted": base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.db.GetRecord(ctx, ids[4]); err != nil {
		t.Errorf("re-added %s: %v", ids[4], err)
	}
}

func TestUnlimited(t *testing.T) {
	l := newLoader(t, dictdb.Options{})
	l.load(3000, 1000, nil)
	l.wantLen(3000)
}
