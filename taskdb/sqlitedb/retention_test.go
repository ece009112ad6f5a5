package sqlitedb

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
)

func TestRetention(t *testing.T) {
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	// r0..r9 completed one hour apart; p0, p1 pending.
	load := func(t *testing.T, db *DB) {
		for i := range 10 {
			id := fmt.Sprintf("r%d", i)
			if err := db.AddRecord(t.Context(), id, taskdb.Record{"submitted": base, "completed": base.Add(time.Duration(i) * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"p0", "p1"} {
			if err := db.AddRecord(t.Context(), id, taskdb.Record{"submitted": base}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name   string
		opts   Options
		now    time.Time
		pruned int
		kept   []string
	}{
		{"age", Options{MaxAge: 3 * time.Hour}, base.Add(10 * time.Hour), 7, []string{"r7", "r8", "r9", "p0", "p1"}},
		{"count", Options{MaxRecords: 5}, base, 7, []string{"r7", "r8", "r9", "p0", "p1"}},
		{"count keeps pending", Options{MaxRecords: 1}, base, 10, []string{"p0", "p1"}},
		{"both", Options{MaxAge: 5 * time.Hour, MaxRecords: 9}, base.Add(10 * time.Hour), 5, []string{"r5", "r6", "r7", "r8", "r9", "p0", "p1"}},
		{"nothing due", Options{MaxAge: 24 * time.Hour, MaxRecords: 100}, base.Add(10 * time.Hour), 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.PruneInterval = time.Hour // the test calls prune itself
			db := open(t, c.opts)
			load(t, db)
			n, err := db.prune(t.Context(), c.now)
			if err != nil || n != c.pruned {
				t.Fatalf("prune = %d, %v; want %d", n, err, c.pruned)
			}
			if c.kept == nil {
				return
			}
			h, err := db.History(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !sameSet(h, c.kept) {
				t.Errorf("kept %v, want %v", h, c.kept)
			}
			if _, err := db.GetRecord(t.Context(), "r0"); !errors.Is(err, taskdb.ErrNotFound) || errors.Is(err, taskdb.ErrCulled) {
				t.Errorf("GetRecord of a pruned record: %v, want ErrNotFound (not ErrCulled)", err)
			}
			if s := db.Stats(); s.Pruned != uint64(c.pruned) {
				t.Errorf("Stats().Pruned = %d, want %d", s.Pruned, c.pruned)
			}
		})
	}
}

// TestRetentionLoop checks the background pruning runs by itself.
func TestRetentionLoop(t *testing.T) {
	db := open(t, Options{MaxRecords: 1, PruneInterval: time.Millisecond})
	for i := range 3 {
		if err := db.AddRecord(t.Context(), fmt.Sprint(i), taskdb.Record{"completed": time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for db.Stats().Pruned < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("pruned %d records in 10s, want 2", db.Stats().Pruned)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRetentionRace: a record retention chose but that was updated back
// to pending, or dropped and added again, before the drop is kept.
func TestRetentionRace(t *testing.T) {
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	db := open(t, Options{MaxAge: time.Hour, PruneInterval: time.Hour})
	ctx := t.Context()
	for _, id := range []string{"old", "reopened", "readded"} {
		if err := db.AddRecord(ctx, id, taskdb.Record{"submitted": base, "completed": base}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.pruneCandidates(ctx, base.Add(10*time.Hour))
	if err != nil || len(rows) != 3 {
		t.Fatalf("candidates %v, %v; want the 3 records", rows, err)
	}
	if err := db.UpdateRecord(ctx, "reopened", taskdb.Record{"completed": nil}); err != nil {
		t.Fatal(err)
	}
	if err := db.DropRecord(ctx, "readded"); err != nil {
		t.Fatal(err)
	}
	if err := db.AddRecord(ctx, "readded", taskdb.Record{"submitted": base.Add(9 * time.Hour), "completed": base.Add(9 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.dropPruned(ctx, rows); err != nil || n != 1 {
		t.Fatalf("dropped %d, %v; want only the record still as chosen", n, err)
	}
	h, err := db.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sameSet(h, []string{"reopened", "readded"}) {
		t.Errorf("kept %v, want reopened and readded", h)
	}
}
