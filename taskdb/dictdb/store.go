package dictdb

import "unsafe"

// store holds the records so that the collector has almost nothing to
// scan or mark however many there are: neither records nor indexes hold
// pointers.
//
// Records live in slabs of slabSize, addressed by seq: record seq is slot
// (seq-1)%slabSize of slab (seq-1)/slabSize. Indexes name records by seq;
// only the store's directory points at slabs, one pointer per slabSize
// records. Seqs are never reused, so a dead index entry can never come to
// name a new record. A slab is freed once its records are all deleted;
// records die mostly in insertion order, as do their slabs.
//
// A record's msg_id and packed data (its buf, see pack.go) are appended
// to a block of blockSize bytes, shared with other records, and never
// changed once written: reads hand out substrings of blocks. A write
// appends the record's new buf and releases the old one. A block whose
// records have released more than half of it is compacted: its live bufs
// move to the current block and the store forgets it (results still
// holding its substrings keep it alive until they go).
type store struct {
	slabs []*slab // slab number first+i, or nil once freed
	first uint64
	live  int // records stored

	blocks []*block              // block number k is blocks[k-1]; nil once freed
	spare  []uint32              // numbers of freed blocks
	cur    uint32                // the block being filled, 0 before the first
	ext    map[uint64]*[2]string // long buffers and result_buffers of records, by seq
}

// blockSize is the size of the blocks bufs are appended to; a buf larger
// than a quarter of it gets a block of its own.
const blockSize = 256 << 10

type block struct {
	b    []byte   // written up to len(b); written bytes never change
	live int      // bytes of b that are some record's buf
	seqs []uint64 // the records whose bufs were written to b, some since moved or deleted
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

// free deletes r and releases its buf and long buffers.
func (s *store) free(r *rec) {
	n, _ := place(r.seq)
	i := n - s.first
	s.unput(r)
	s.setExt(r.seq, nil)
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

// buf returns r's msg_id and data.
func (s *store) buf(r *rec) string {
	if r.n == 0 {
		return ""
	}
	b := s.blocks[r.blk-1].b
	return unsafe.String(&b[r.off], r.n)
}

func (s *store) id(r *rec) string { return s.buf(r)[:r.idn] }

// data returns r's entries.
func (s *store) data(r *rec) string { return s.buf(r)[r.idn:] }

// write stores buf as r's msg_id and data, releasing the old ones.
func (s *store) write(r *rec, buf []byte) {
	s.unput(r)
	s.put(r, buf)
}

// unput releases r's buf. r no longer points at it first, so that a
// compaction the release starts does not move it.
func (s *store) unput(r *rec) {
	blk, n := r.blk, r.n
	r.blk, r.off, r.n = 0, 0, 0
	s.release(blk, n)
}

// put appends buf to a block and points r, which has no buf, at it.
func (s *store) put(r *rec, buf []byte) {
	if len(buf) == 0 {
		return
	}
	r.n = len(buf)
	r.blk = s.room(len(buf))
	b := s.blocks[r.blk-1]
	r.off = uint32(len(b.b))
	b.b = append(b.b, buf...)
	b.live += len(buf)
	b.seqs = append(b.seqs, r.seq)
}

// room returns a block with n bytes free.
func (s *store) room(n int) uint32 {
	if n > blockSize/4 {
		return s.newBlock(n)
	}
	for {
		if s.cur != 0 {
			if b := s.blocks[s.cur-1]; cap(b.b)-len(b.b) >= n {
				return s.cur
			}
		}
		full := s.cur
		s.cur = s.newBlock(blockSize)
		if full != 0 {
			s.settle(full)
		}
	}
}

func (s *store) newBlock(size int) uint32 {
	b := &block{b: make([]byte, 0, size)}
	if n := len(s.spare); n > 0 {
		k := s.spare[n-1]
		s.spare = s.spare[:n-1]
		s.blocks[k-1] = b
		return k
	}
	s.blocks = append(s.blocks, b)
	return uint32(len(s.blocks))
}

// release gives back n bytes of block k, a buf no record has any more.
func (s *store) release(k uint32, n int) {
	if k == 0 {
		return
	}
	s.blocks[k-1].live -= n
	if k != s.cur {
		s.settle(k)
	}
}

// settle frees block k, which is not being filled, if no buf is left in
// it, or compacts it if more than half of it is released.
func (s *store) settle(k uint32) {
	b := s.blocks[k-1]
	if b.live*2 >= len(b.b) {
		return
	}
	for _, seq := range b.seqs {
		if r := s.get(seq); r != nil && r.blk == k {
			s.put(r, b.b[r.off:int(r.off)+r.n])
		}
	}
	s.blocks[k-1] = nil
	s.spare = append(s.spare, k)
}

// setExt sets the long buffers of record seq.
func (s *store) setExt(seq uint64, ext *[2]string) {
	switch {
	case ext != nil:
		if s.ext == nil {
			s.ext = make(map[uint64]*[2]string)
		}
		s.ext[seq] = ext
	case s.ext != nil:
		delete(s.ext, seq)
	}
}

// touchBatch is how many records a large read touches ahead of decoding.
const touchBatch = 32

// touch loads the first byte of each record's buf and returns their xor.
// The loads are independent, so the CPU overlaps their cache misses,
// which would otherwise stall decoding one record at a time.
func (s *store) touch(rs []*rec) byte {
	var x byte
	for _, r := range rs {
		if r.n > 0 {
			x ^= s.blocks[r.blk-1].b[r.off]
		}
	}
	return x
}
