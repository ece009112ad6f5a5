package dictdb

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// TestStore checks that records are found by seq until freed, visited in
// seq order, and that emptied slabs leave the directory.
func TestStore(t *testing.T) {
	var s store
	const n = 5*slabSize + 3
	for seq := uint64(1); seq <= n; seq++ {
		s.alloc(seq).idn = int(seq)
	}
	live := func() (seqs []uint64) {
		s.all(func(r *rec) { seqs = append(seqs, r.seq) })
		return seqs
	}
	// Free the first two slabs but one record, and every other record
	// of the third.
	for seq := uint64(1); seq <= 3*slabSize; seq++ {
		if seq != slabSize+5 && (seq <= 2*slabSize || seq%2 == 0) {
			s.free(s.get(seq))
		}
	}
	want := []uint64{slabSize + 5}
	for seq := uint64(2*slabSize + 1); seq <= n; seq++ {
		if seq > 3*slabSize || seq%2 == 1 {
			want = append(want, seq)
		}
	}
	if got := live(); !slices.Equal(got, want) || s.live != len(want) {
		t.Fatalf("live records %v (count %d), want %v", got, s.live, want)
	}
	if s.first != 1 || len(s.slabs) != 5 {
		t.Fatalf("directory starts at slab %d with %d slabs, want 1 and 5", s.first, len(s.slabs))
	}
	for seq := uint64(0); seq <= n+slabSize; seq++ {
		r := s.get(seq)
		if ok := slices.Contains(want, seq); (r != nil) != ok || ok && (r.seq != seq || r.idn != int(seq)) {
			t.Fatalf("get(%d) = %+v, want it live: %v", seq, r, ok)
		}
	}
	// Emptying the newest slab keeps it for the records to come; the
	// next slab frees it.
	s.free(s.get(slabSize + 5))
	for _, seq := range want[1:] {
		s.free(s.get(seq))
	}
	if s.live != 0 || len(s.slabs) != 1 || s.first != 5 {
		t.Fatalf("emptied store: %d live, %d slabs from %d; want 0, 1 from 5", s.live, len(s.slabs), s.first)
	}
	for seq := uint64(n + 1); seq <= 6*slabSize+1; seq++ {
		s.alloc(seq)
	}
	if got := live(); len(got) != 6*slabSize+1-n || len(s.slabs) != 2 || s.first != 5 {
		t.Fatalf("after refill: live %v, %d slabs from %d", got, len(s.slabs), s.first)
	}
	// The newest slab, full and emptied, goes when the next one starts.
	for seq := uint64(n + 1); seq <= 7*slabSize; seq++ {
		if seq > 6*slabSize+1 {
			s.alloc(seq)
		}
		s.free(s.get(seq))
	}
	if s.live != 0 || len(s.slabs) != 1 || s.first != 6 {
		t.Fatalf("emptied again: %d live, %d slabs from %d; want 0, 1 from 6", s.live, len(s.slabs), s.first)
	}
	s.alloc(7*slabSize + 1)
	if len(s.slabs) != 1 || s.first != 7 {
		t.Fatalf("after the next slab started: %d slabs from %d, want 1 from 7", len(s.slabs), s.first)
	}
}

// TestBlocksCompact rewrites and drops records until many blocks have
// been filled, and checks that every record reads back as last written,
// that bufs are packed at least half full, and that emptied blocks are
// forgotten.
func TestBlocksCompact(t *testing.T) {
	ctx := t.Context()
	db := New(Options{})
	defer db.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[string]string{} // msg_id → stdout
	written := 0                // bytes of stdout written
	const n = 3000
	for round := range 12 {
		for i := range n {
			id := fmt.Sprint("m", i)
			out := strings.Repeat(string(rune('a'+round)), rng.IntN(300))
			var err error
			switch _, ok := want[id]; {
			case !ok:
				err = db.AddRecord(ctx, id, taskdb.Record{taskdb.KeyStdout: out, taskdb.KeyClientUUID: "c"})
			case rng.IntN(10) == 0:
				err = db.DropRecord(ctx, id)
				delete(want, id)
				if err != nil {
					t.Fatal(err)
				}
				continue
			case rng.IntN(3) == 0:
				continue // left as it is: its block fills with others' garbage
			default:
				err = db.UpdateRecord(ctx, id, taskdb.Record{taskdb.KeyStdout: out})
			}
			if err == nil && rng.IntN(4) == 0 {
				// Updated again at once, as the hub does when a result
				// follows a submission: the old buf is in the block
				// being filled.
				out = strings.ToUpper(out)
				err = db.UpdateRecord(ctx, id, taskdb.Record{taskdb.KeyStdout: out})
			}
			if err != nil {
				t.Fatal(err)
			}
			want[id] = out
			written += len(out)
		}
	}
	for id, out := range want {
		got, err := db.GetRecord(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Get(taskdb.KeyMsgID) != id || got.Get(taskdb.KeyStdout) != out || got.Get(taskdb.KeyClientUUID) != "c" {
			t.Fatalf("%s reads back as %v", id, got)
		}
	}
	if rs, err := db.FindRecords(ctx, query.MustParse(`{"client_uuid": "c"}`), []string{"msg_id"}); err != nil || len(rs) != len(want) {
		t.Fatalf("client index: %d records, %v; want %d", len(rs), err, len(want))
	}
	s := &db.store
	var used, live, blocks int
	for k, b := range s.blocks {
		if b == nil {
			continue
		}
		blocks++
		used += len(b.b)
		live += b.live
		if uint32(k+1) != s.cur && b.live*2 < len(b.b) {
			t.Errorf("block %d is %d/%d live: should have been compacted", k+1, b.live, len(b.b))
		}
	}
	var bufs int
	s.all(func(r *rec) { bufs += r.n })
	if live != bufs {
		t.Errorf("blocks count %d live bytes, records hold %d", live, bufs)
	}
	if used > 2*live+blockSize {
		t.Errorf("%d bytes of blocks used for %d live bytes", used, live)
	}
	if len(s.blocks)*blockSize > written/2 {
		t.Errorf("%d block numbers for %d bytes written: blocks are not freed and reused", len(s.blocks), written)
	}
	t.Logf("%d records, %d bytes of bufs in %d blocks (%d bytes used, %d bytes of stdout written)", len(want), bufs, blocks, used, written)
}
