package dictdb

import (
	"hash/maphash"
	"strings"
)

// idIndex maps msg_ids to the seqs of their records in recs. It is keyed
// by a seeded 64-bit hash of the id rather than the id itself: a miss
// (every AddRecord) then never reads a stored id, and the table holds no
// pointers for the collector to scan. Ids whose hash is taken by another
// id go to a small map by id.
type idIndex struct {
	recs     *store
	hash     func(string) uint64
	byHash   map[uint64]uint64
	collided map[string]uint64
}

func newIDIndex(recs *store) idIndex {
	seed := maphash.MakeSeed() // per DB: chosen ids cannot aim at collisions
	return idIndex{recs: recs, hash: func(id string) uint64 { return maphash.String(seed, id) }, byHash: make(map[uint64]uint64)}
}

func (x *idIndex) len() int { return len(x.byHash) + len(x.collided) }

func (x *idIndex) get(id string) *rec {
	r, _ := x.find(id)
	return r
}

// find returns the record of id, or nil, and id's hash for put.
func (x *idIndex) find(id string) (*rec, uint64) {
	h := x.hash(id)
	if seq, ok := x.byHash[h]; ok {
		if r := x.recs.get(seq); x.recs.id(r) == id {
			return r, h
		}
		if seq, ok := x.collided[id]; ok { // a nil map reads as empty
			return x.recs.get(seq), h
		}
	}
	return nil, h
}

// put adds r, whose id the index does not hold and hashes to h.
func (x *idIndex) put(r *rec, h uint64) {
	if _, ok := x.byHash[h]; !ok {
		x.byHash[h] = r.seq
		return
	}
	if x.collided == nil {
		x.collided = make(map[string]uint64)
	}
	x.collided[strings.Clone(x.recs.id(r))] = r.seq // not a substring of a block, which the store may drop
}

// del removes r, which the index holds.
func (x *idIndex) del(r *rec) {
	id := x.recs.id(r)
	h := x.hash(id)
	if x.byHash[h] != r.seq {
		delete(x.collided, id)
		return
	}
	delete(x.byHash, h)
	for id, seq := range x.collided { // promote a record of the same hash
		if x.hash(id) == h {
			delete(x.collided, id)
			x.byHash[h] = seq
			return
		}
	}
}
