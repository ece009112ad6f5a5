package dictdb

// store holds the records in slabs of slabSize, addressed by seq: record
// seq is slot (seq-1)%slabSize of slab (seq-1)/slabSize. Indexes refer to
// records by seq, not by pointer, so that the collector scans no index:
// only the store's directory points at slabs, one pointer per slabSize
// records. Seqs are never reused, so a dead index entry can never come
// to name a new record. A slab is freed once its records are all
// deleted; records die mostly in insertion order, as do their slabs.
type store struct {
	slabs []*slab // slab number first+i, or nil once freed
	first uint64
	live  int // records stored
}

// slabSize is how many records one allocation holds.
const slabSize = 64

type slab struct {
	recs [slabSize]rec
	live int
}

// place returns the slab number and slot of seq.
func place(seq uint64) (uint64, int) { return (seq - 1) / slabSize, int((seq - 1) % slabSize) }

// alloc returns the zero record for seq, which must be the next seq.
func (s *store) alloc(seq uint64) *rec {
	n, slot := place(seq)
	if slot == 0 {
		if k := len(s.slabs); k > 0 && s.slabs[k-1] != nil && s.slabs[k-1].live == 0 {
			s.slabs[k-1] = nil // full, and every record of it deleted
		}
		if len(s.slabs) == 0 {
			s.first = n
		}
		s.slabs = append(s.slabs, new(slab))
		s.trim()
	}
	sl := s.slabs[n-s.first]
	sl.live++
	s.live++
	r := &sl.recs[slot]
	r.seq = seq
	return r
}

// get returns record seq, or nil if it was deleted (or seq is 0).
func (s *store) get(seq uint64) *rec {
	n, slot := place(seq)
	if seq == 0 || n < s.first || n-s.first >= uint64(len(s.slabs)) {
		return nil
	}
	sl := s.slabs[n-s.first]
	if sl == nil || sl.recs[slot].seq != seq {
		return nil
	}
	return &sl.recs[slot]
}

// free deletes r, clearing it so that it no longer keeps its data.
func (s *store) free(r *rec) {
	n, _ := place(r.seq)
	i := n - s.first
	*r = rec{}
	sl := s.slabs[i]
	sl.live--
	s.live--
	if sl.live == 0 && i < uint64(len(s.slabs)-1) { // the newest slab may take more records
		s.slabs[i] = nil
		s.trim()
	}
}

// trim drops freed slabs from the front of the directory. The newest
// slab is never freed, so the directory never empties.
func (s *store) trim() {
	for s.slabs[0] == nil {
		s.slabs = s.slabs[1:]
		s.first++
	}
}

// all calls f on every record, in seq order.
func (s *store) all(f func(*rec)) {
	for _, sl := range s.slabs {
		if sl == nil || sl.live == 0 {
			continue
		}
		for i := range sl.recs {
			if r := &sl.recs[i]; r.seq != 0 {
				f(r)
			}
		}
	}
}
