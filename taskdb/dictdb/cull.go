package dictdb

import "strings"

// Culling keeps the DB within its limits, fixing ipyparallel's DictDB:
// it culls at least one record whenever a limit is exceeded, culls
// completed records (oldest submitted first) before any pending one,
// culls records without a submitted time too, and remembers a bounded
// number of culled ids.

// cullCount enforces RecordLimit after an add. The caller holds db.mu.
func (db *DB) cullCount() {
	limit := db.opts.RecordLimit
	if limit <= 0 || db.store.live <= limit {
		return
	}
	n := max(int(db.opts.CullFraction*float64(limit)), db.store.live-limit, 1)
	var victims []*rec
	db.cullOrder(func(r *rec) bool {
		victims = append(victims, r)
		return len(victims) < n
	})
	db.cull(victims, "record_limit")
}

// cullSize enforces SizeLimit after an add or an update that grew the
// buffers. The caller holds db.mu.
func (db *DB) cullSize() {
	limit := db.opts.SizeLimit
	if limit <= 0 || db.bytes <= limit {
		return
	}
	target := int64(float64(limit) * (1 - db.opts.CullFraction))
	left := db.bytes
	var victims []*rec
	db.cullOrder(func(r *rec) bool {
		victims = append(victims, r)
		left -= r.size
		return left > target
	})
	db.cull(victims, "size_limit")
}

// cullOrder calls visit on records in culling order until it returns
// false: completed records, then pending ones; within each, by submitted
// time, then those without one in insertion order.
func (db *DB) cullOrder(visit func(*rec) bool) {
	var unsubmitted []*rec // found on first need
	for _, pending := range []bool{false, true} {
		for i := range db.bySubmitted.s {
			if r := db.bySubmitted.at(i); r != nil && r.pending() == pending && !visit(r) {
				return
			}
		}
		if unsubmitted == nil && db.bySubmitted.size() < db.store.live {
			db.store.all(func(r *rec) {
				if r.times[timeSubmitted] == noTime {
					unsubmitted = append(unsubmitted, r)
				}
			})
		}
		for _, r := range unsubmitted {
			if r.pending() == pending && !visit(r) {
				return
			}
		}
	}
}

func (db *DB) cull(victims []*rec, reason string) {
	var pending []string
	for _, r := range victims {
		id := strings.Clone(db.store.id(r)) // not a substring keeping a block
		if r.pending() {
			pending = append(pending, id)
		}
		db.delete(r)
		db.culled.add(id)
	}
	db.log.Info("culled records", "reason", reason, "count", len(victims), "left", db.store.live, "buffer_bytes", db.bytes)
	if len(pending) > 0 {
		db.log.Warn("pending record culled: every completed record was culled already", "reason", reason, "count", len(pending), "msg_ids", pending[:min(len(pending), 10)])
	}
}

// tombstones remembers the most recent culled ids.
type tombstones struct {
	ids   map[string]uint64 // id → the number of ids added before it, at its latest add
	ring  []string          // id number n is at n % limit
	limit int
	next  uint64 // total ids added
}

// tombstones remembers the most recent culled ids, at most limit; the
// ring grows up to limit as ids arrive.
func newTombstones(limit int) tombstones {
	return tombstones{ids: make(map[string]uint64), limit: limit}
}

func (t *tombstones) add(id string) {
	if len(t.ring) < t.limit {
		t.ring = append(t.ring, id)
	} else {
		i := t.next % uint64(t.limit)
		if old := t.ring[i]; t.ids[old] == t.next-uint64(t.limit) {
			delete(t.ids, old)
		}
		t.ring[i] = id
	}
	t.ids[id] = t.next
	t.next++
}

func (t *tombstones) has(id string) bool {
	_, ok := t.ids[id]
	return ok
}

// forget removes id, which is in use again.
func (t *tombstones) forget(id string) { delete(t.ids, id) }
