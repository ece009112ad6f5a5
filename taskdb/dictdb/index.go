package dictdb

import "sort"

// entry is one record in an ordered index: sorted by key, then seq.
// Removed entries keep their key and seq and have r == nil until the
// index compacts.
type entry struct {
	key int64
	seq uint64
	r   *rec
}

func (e entry) less(key int64, seq uint64) bool {
	return e.key < key || (e.key == key && e.seq < seq)
}

// ordered is a sorted set of records. Inserting in order (the common case:
// records arrive in submitted and seq order) appends; removing marks the
// entry dead, and dead entries are trimmed from the front or compacted
// away once they are half the slice, so every operation is amortised
// O(log n) apart from out-of-order inserts, which shift the tail.
type ordered struct {
	s    []entry
	dead int
}

// size returns the number of live entries.
func (o *ordered) size() int { return len(o.s) - o.dead }

// search returns the position of the first entry not less than (key, seq).
func (o *ordered) search(key int64, seq uint64) int {
	return sort.Search(len(o.s), func(i int) bool { return !o.s[i].less(key, seq) })
}

func (o *ordered) insert(key int64, r *rec) {
	e := entry{key: key, seq: r.seq, r: r}
	if n := len(o.s); n == 0 || o.s[n-1].less(key, r.seq) {
		o.s = append(o.s, e)
		return
	}
	i := o.search(key, r.seq)
	o.s = append(o.s, entry{})
	copy(o.s[i+1:], o.s[i:])
	o.s[i] = e
}

func (o *ordered) remove(key int64, r *rec) {
	i := o.search(key, r.seq)
	if i == len(o.s) || o.s[i].r != r {
		return
	}
	o.s[i].r = nil
	o.dead++
	for len(o.s) > 0 && o.s[0].r == nil {
		o.s = o.s[1:]
		o.dead--
	}
	if o.dead > 64 && o.dead*2 > len(o.s) {
		live := make([]entry, 0, len(o.s)-o.dead)
		for _, e := range o.s {
			if e.r != nil {
				live = append(live, e)
			}
		}
		o.s, o.dead = live, 0
	}
}

// bucketIndex indexes records by the string value of one key; records
// whose value is neither null nor a string go to odd, which every lookup
// must include.
type bucketIndex struct {
	by  map[string]*bucket
	odd ordered
}

// bucket holds the records with one value, and that value boxed once, so
// that records share it instead of each keeping the caller's copy.
type bucket struct {
	ordered
	val any
}

// add indexes r under v and returns the value r should store: the
// bucket's shared box for strings, v otherwise.
func (b *bucketIndex) add(v any, r *rec) any {
	switch x := v.(type) {
	case nil:
	case string:
		bk := b.by[x]
		if bk == nil {
			bk = &bucket{val: v}
			b.by[x] = bk
		}
		bk.insert(int64(r.seq), r)
		return bk.val
	default:
		b.odd.insert(int64(r.seq), r)
	}
	return v
}

func (b *bucketIndex) remove(v any, r *rec) {
	switch x := v.(type) {
	case nil:
	case string:
		if bk := b.by[x]; bk != nil {
			bk.remove(int64(r.seq), r)
			if bk.size() == 0 {
				delete(b.by, x)
			}
		}
	default:
		b.odd.remove(int64(r.seq), r)
	}
}
