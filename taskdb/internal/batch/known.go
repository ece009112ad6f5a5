package batch

// knownIDs is the set of msg_ids the queue knows exist, bounded: beyond
// limit ids the oldest is forgotten, and the queue asks the database
// about it again if it is ever updated or dropped.
type knownIDs struct {
	limit int
	ids   map[string]uint64 // id -> the add that remembers it
	ring  []knownEntry      // adds in order, a window of at most limit live ones
	head  int               // ring[head:] are the adds not yet evicted
	seq   uint64
}

type knownEntry struct {
	id  string
	seq uint64
}

func newKnownIDs(limit int) *knownIDs {
	return &knownIDs{limit: limit, ids: make(map[string]uint64)}
}

func (k *knownIDs) has(id string) bool {
	_, ok := k.ids[id]
	return ok
}

// add remembers id, forgetting the oldest id beyond the limit, and
// returns the number of this add.
func (k *knownIDs) add(id string) uint64 {
	k.seq++
	k.ids[id] = k.seq
	k.ring = append(k.ring, knownEntry{id, k.seq})
	for len(k.ids) > k.limit {
		e := k.ring[k.head]
		k.ring[k.head] = knownEntry{}
		k.head++
		if k.ids[e.id] == e.seq { // not re-added or removed since
			delete(k.ids, e.id)
		}
	}
	// Entries of removed or re-added ids stay in the ring until evicted:
	// compact when they make up half of it.
	if k.head > len(k.ring)/2 || len(k.ring) > 2*k.limit+64 {
		k.compact()
	}
	return k.seq
}

func (k *knownIDs) remove(id string) { delete(k.ids, id) }

// undo forgets id if add number seq is still what remembers it: not if
// the id was dropped and added again since.
func (k *knownIDs) undo(id string, seq uint64) {
	if k.ids[id] == seq {
		delete(k.ids, id)
	}
}

// compact drops evicted and stale entries from the ring.
func (k *knownIDs) compact() {
	live := k.ring[:0]
	for _, e := range k.ring[k.head:] {
		if k.ids[e.id] == e.seq {
			live = append(live, e)
		}
	}
	clear(k.ring[len(live):])
	k.ring, k.head = live, 0
}
