package dictdb

import (
	"slices"
	"testing"
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
