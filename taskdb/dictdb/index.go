package dictdb

import (
	"sort"
	"strings"
)

// entry is one record in an ordered index.
type entry struct {
	key int64
	seq uint64 // the record's; 0 once the entry is dead, in a seq-keyed index
}

// ordered is a sorted set of records, keyed by seq (or another unique
// number), or (byTime) by submitted time with ties in seq order. Inserting in order (the common
// case: records arrive in submitted and seq order) appends. Removing
// leaves a dead entry in place, so positions stay sorted: a seq entry dies
// by losing its record; a time entry keeps its record (for the tie order)
// and is dead when the record's submitted time is no longer its key.
// Dead entries are trimmed from the front, or compacted away once they
// are half the slice, so every operation is amortised O(log n) apart from
// out-of-order inserts, which shift the tail.
type ordered struct {
	recs   *store
	s      []entry
	dead   int
	byTime bool
}

// size returns the number of live entries.
func (o *ordered) size() int { return len(o.s) - o.dead }

func (o *ordered) live(e entry) bool { return o.get(e) != nil }

// get returns the record of e, or nil if e is dead.
func (o *ordered) get(e entry) *rec {
	r := o.recs.get(e.seq)
	if o.byTime && r != nil && r.times[timeSubmitted] != e.key {
		return nil
	}
	return r
}

// at returns the record at position i, or nil if the entry is dead.
func (o *ordered) at(i int) *rec { return o.get(o.s[i]) }

func (o *ordered) before(e entry, key int64, seq uint64) bool {
	if e.key != key {
		return e.key < key
	}
	return o.byTime && e.seq < seq
}

// search returns the position of the first entry not before (key, seq).
func (o *ordered) search(key int64, seq uint64) int {
	return sort.Search(len(o.s), func(i int) bool { return !o.before(o.s[i], key, seq) })
}

// insert adds r under key. For a time index, r.times must already hold key.
func (o *ordered) insert(key int64, r *rec) {
	n := len(o.s)
	if n == 0 || o.before(o.s[n-1], key, r.seq) {
		o.s = append(o.s, entry{key: key, seq: r.seq})
		return
	}
	i := o.search(key, r.seq)
	if i < n && o.s[i].key == key && (o.s[i].seq == r.seq || !o.byTime && o.s[i].seq == 0) {
		o.s[i].seq = r.seq // revive r's dead entry
		o.dead--
		return
	}
	o.s = append(o.s, entry{})
	copy(o.s[i+1:], o.s[i:])
	o.s[i] = entry{key: key, seq: r.seq}
}

// remove drops r from under key. For a time index, r.times must no
// longer hold key.
func (o *ordered) remove(key int64, r *rec) {
	i := o.search(key, r.seq)
	if i == len(o.s) || o.s[i].key != key || o.s[i].seq != r.seq {
		return
	}
	if !o.byTime {
		o.s[i].seq = 0
	}
	o.dead++
	for len(o.s) > 0 && !o.live(o.s[0]) {
		o.s = o.s[1:]
		o.dead--
	}
	if o.dead > 64 && o.dead*2 > len(o.s) {
		live := make([]entry, 0, len(o.s)-o.dead)
		for _, e := range o.s {
			if o.live(e) {
				live = append(live, e)
			}
		}
		o.s, o.dead = live, 0
	}
}

// bucketIndex indexes records by the string value of one key; records
// whose value is neither null nor a string go to odd, which every lookup
// must include. Entries are keyed by arrival in the index, not by seq:
// a record that gets its engine_uuid long after it was added (the hub
// sets it when the task is dispatched) is appended rather than inserted
// among thousands of later records, shifting them. Results from the
// index are sorted by seq when arrivals were out of order.
type bucketIndex struct {
	recs *store
	by   map[string]*ordered
	odd  ordered
	next int64 // key of the next entry
}

// add indexes r under v, setting *key to the key of r's entry.
func (b *bucketIndex) add(v any, r *rec, key *int64) {
	b.next++
	*key = b.next
	switch x := v.(type) {
	case nil:
	case string:
		bk := b.by[x]
		if bk == nil {
			bk = &ordered{recs: b.recs}
			b.by[strings.Clone(x)] = bk // not a substring of a block, or of the caller's
		}
		bk.insert(b.next, r)
	default:
		b.odd.insert(b.next, r)
	}
}

// remove drops r's entry, of the given key, from under v.
func (b *bucketIndex) remove(v any, r *rec, key int64) {
	switch x := v.(type) {
	case nil:
	case string:
		if bk := b.by[x]; bk != nil {
			bk.remove(key, r)
			if bk.size() == 0 {
				delete(b.by, x)
			}
		}
	default:
		b.odd.remove(key, r)
	}
}
