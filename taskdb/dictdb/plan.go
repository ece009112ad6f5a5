package dictdb

import (
	"slices"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// find returns the records q matches (all for a nil q), in insertion
// order. The caller holds db.mu.
//
// The planner takes the cheapest of: msg_id lookups, the pending index
// (completed null), the client_uuid and engine_uuid indexes, a range of
// the submitted index, and a scan of every record. It estimates each by
// the number of candidates it yields, then matches the candidates
// against the whole filter.
func (db *DB) find(q *query.Filter) []*rec {
	best := plan{cost: db.store.live, all: true, inOrder: true}
	pendingOnly := false
	if q != nil {
		for _, h := range q.Hints() {
			if p, ok := db.planHint(h); ok && p.cost < best.cost {
				best = p
			}
			pendingOnly = pendingOnly || isPendingHint(h)
		}
	}
	var hits []*rec
	doc := &reader{s: &db.store}
	keep := func(r *rec, exact bool) {
		// Every match satisfies every hint: a completed record cannot
		// match a filter implying completed null, and rejecting it here
		// spares Match boxing its completed time.
		if pendingOnly && !r.pending() {
			return
		}
		doc.r = r
		if q == nil || exact || q.MatchDoc(doc) {
			hits = append(hits, r)
		}
	}
	if best.all {
		db.store.all(func(r *rec) { keep(r, false) })
	}
	for _, r := range best.recs {
		keep(r, best.exact)
	}
	for _, o := range best.scan {
		lo, hi := 0, len(o.s)
		if best.bounded {
			lo, hi = best.lo, best.hi
		}
		for i := lo; i < hi; i++ {
			if r := o.at(i); r != nil {
				keep(r, best.exact)
			}
		}
	}
	if best.odd != nil {
		for i := range best.odd.s {
			if r := best.odd.at(i); r != nil {
				keep(r, false)
			}
		}
	}
	if !best.inOrder {
		if !slices.IsSortedFunc(hits, bySeq) {
			slices.SortFunc(hits, bySeq)
		}
		hits = slices.Compact(hits) // $in may list an id twice
	}
	return hits
}

func bySeq(a, b *rec) int {
	switch {
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

// plan is a set of candidate records: every record (all), or recs, the
// entries of each index in scan (only lo..hi if bounded), and those of odd.
type plan struct {
	cost    int
	all     bool
	recs    []*rec
	scan    []*ordered
	bounded bool
	lo, hi  int
	odd     *ordered // candidates that always need matching
	exact   bool     // recs and scan satisfy the filter: no need to match
	inOrder bool     // candidates come in seq order
}

// planHint returns the plan an index offers for h, if any.
func (db *DB) planHint(h query.Hint) (plan, bool) {
	switch h.Path {
	case taskdb.KeyMsgID:
		if !h.Eq {
			return plan{}, false
		}
		// msg_id is always a string: exact for string values.
		p := plan{cost: len(h.Values), exact: h.Exact}
		for _, v := range h.Values {
			s, ok := v.(string)
			if !ok {
				p.exact = false
				continue
			}
			if r := db.recs.get(s); r != nil {
				p.recs = append(p.recs, r)
			}
		}
		return p, true
	case taskdb.KeyCompleted:
		if isPendingHint(h) {
			return plan{cost: db.pending.size(), scan: []*ordered{&db.pending}, exact: h.Exact, inOrder: true}, true
		}
	case taskdb.KeyClientUUID:
		return planBuckets(&db.byClient, h)
	case taskdb.KeyEngineUUID:
		return planBuckets(&db.byEngine, h)
	case taskdb.KeySubmitted:
		return db.planRange(h)
	}
	return plan{}, false
}

// isPendingHint reports whether h says completed is null.
func isPendingHint(h query.Hint) bool {
	return h.Path == taskdb.KeyCompleted && h.Eq && len(h.Values) == 1 && h.Values[0] == nil
}

func planBuckets(b *bucketIndex, h query.Hint) (plan, bool) {
	if !h.Eq {
		return plan{}, false
	}
	// A bucket holds exactly the records whose value is that string; odd
	// values (arrays, numbers) always need matching.
	p := plan{cost: b.odd.size(), exact: h.Exact}
	if p.cost > 0 {
		p.odd = &b.odd
	}
	for _, v := range h.Values {
		s, ok := v.(string)
		if !ok {
			return plan{}, false
		}
		if o := b.by[s]; o != nil {
			p.scan = append(p.scan, o)
			p.cost += o.size()
		}
	}
	return p, true // not inOrder: buckets keep arrival order
}

// planRange serves a time range, or a single time, on submitted.
func (db *DB) planRange(h query.Hint) (plan, bool) {
	lo, hi := 0, len(db.bySubmitted.s)
	bound := func(v any) (int64, bool) {
		t, ok := v.(time.Time)
		return t.UnixMicro(), ok
	}
	switch {
	case h.Eq:
		if len(h.Values) != 1 {
			return plan{}, false
		}
		t, ok := bound(h.Values[0])
		if !ok {
			return plan{}, false
		}
		lo, hi = db.bySubmitted.search(t, 0), db.bySubmitted.search(t+1, 0)
	default:
		if h.Lower != nil {
			t, ok := bound(h.Lower)
			if !ok {
				return plan{}, false
			}
			if !h.LowerIncl {
				t++
			}
			lo = db.bySubmitted.search(t, 0)
		}
		if h.Upper != nil {
			t, ok := bound(h.Upper)
			if !ok {
				return plan{}, false
			}
			if h.UpperIncl {
				t++
			}
			hi = db.bySubmitted.search(t, 0)
		}
	}
	if hi < lo {
		hi = lo
	}
	// submitted holds only times and nulls, and time bounds never match
	// null: the range is exact.
	return plan{cost: hi - lo, scan: []*ordered{&db.bySubmitted}, bounded: true, lo: lo, hi: hi, exact: h.Exact}, true
}
