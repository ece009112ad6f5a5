package dictdb

import (
	"hash/maphash"
	"strings"
)

// idIndex maps msg_ids to records. It is keyed by a seeded 64-bit hash
// of the id rather than the id itself: a miss (every AddRecord) then
// never reads a stored id, and the table holds no strings to chase. Ids
// whose hash is taken by another id go to a small map by id.
type idIndex struct {
	hash     func(string) uint64
	byHash   map[uint64]*rec
	collided map[string]*rec
}

func newIDIndex() idIndex {
	seed := maphash.MakeSeed() // per DB: chosen ids cannot aim at collisions
	return idIndex{hash: func(id string) uint64 { return maphash.String(seed, id) }, byHash: make(map[uint64]*rec)}
}

func (x *idIndex) len() int { return len(x.byHash) + len(x.collided) }

func (x *idIndex) get(id string) *rec {
	r, _ := x.find(id)
	return r
}

// find returns the record of id, or nil, and id's hash for put.
func (x *idIndex) find(id string) (*rec, uint64) {
	h := x.hash(id)
	if r := x.byHash[h]; r != nil && r.id() == id {
		return r, h
	}
	return x.collided[id], h // a nil map reads as empty
}

// put adds r, whose id the index does not hold and hashes to h.
func (x *idIndex) put(r *rec, h uint64) {
	if x.byHash[h] == nil {
		x.byHash[h] = r
		return
	}
	if x.collided == nil {
		x.collided = make(map[string]*rec)
	}
	x.collided[strings.Clone(r.id())] = r // not a substring of r.buf, which updates replace
}

// del removes r, which the index holds.
func (x *idIndex) del(r *rec) {
	h := x.hash(r.id())
	if x.byHash[h] != r {
		delete(x.collided, r.id())
		return
	}
	delete(x.byHash, h)
	for id, o := range x.collided { // promote a record of the same hash
		if x.hash(id) == h {
			delete(x.collided, id)
			x.byHash[h] = o
			return
		}
	}
}

// all calls f on every record, in no particular order.
func (x *idIndex) all(f func(*rec)) {
	for _, r := range x.byHash {
		f(r)
	}
	for _, r := range x.collided {
		f(r)
	}
}
