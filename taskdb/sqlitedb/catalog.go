package sqlitedb

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// noTime marks an entry without a submitted time.
const noTime = int64(-1 << 63)

// entry is the catalog's view of one record.
type entry struct {
	id      string
	seq     int64  // the row's seq: insertion order
	sub     int64  // submitted, microseconds, or noTime
	last    uint64 // queue position of the last write to the record
	gen     uint32
	dropped bool
}

// histItem places an entry in history order. It is stale once the entry
// is dropped or its submitted time changed (gen moved on).
type histItem struct {
	sub, seq int64
	gen      uint32
	e        *entry
}

func (h histItem) live() bool { return !h.e.dropped && h.e.gen == h.gen }

// catalog is the in-memory index of every stored or queued record: it
// answers existence checks without a read (so writes are acknowledged
// without waiting for SQLite) and serves History. Guarded by DB.idsMu.
type catalog struct {
	ids     map[string]*entry
	hist    []histItem // sorted by (sub, seq), with stale items
	stale   int        // stale items in hist
	nextSeq int64
}

func newCatalog() *catalog { return &catalog{ids: make(map[string]*entry), nextSeq: 1} }

// load fills the catalog from the table.
func (c *catalog) load(ctx context.Context, db *DB) error {
	rows, err := db.db.QueryContext(ctx, "SELECT seq, msg_id, submitted FROM "+db.table+" ORDER BY submitted, seq")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var id string
		var sub *int64
		if err := rows.Scan(&seq, &id, &sub); err != nil {
			return err
		}
		e := &entry{id: id, seq: seq, sub: noTime}
		if sub != nil {
			e.sub = *sub
			c.hist = append(c.hist, histItem{sub: e.sub, seq: seq, e: e})
		}
		c.ids[id] = e
		c.nextSeq = max(c.nextSeq, seq+1)
	}
	return rows.Err()
}

func (c *catalog) has(id string) bool {
	_, ok := c.ids[id]
	return ok
}

// add records a new entry with the next seq, written by op number last.
func (c *catalog) add(id string, sub int64, last uint64) {
	e := &entry{id: id, seq: c.nextSeq, sub: sub, last: last}
	c.nextSeq++
	c.ids[id] = e
	c.place(e)
}

// setSubmitted changes an entry's submitted time.
func (c *catalog) setSubmitted(id string, sub int64) {
	e := c.ids[id]
	if e == nil || e.sub == sub {
		return
	}
	if e.sub != noTime {
		c.stale++
	}
	e.gen++
	e.sub = sub
	c.place(e)
	c.compact()
}

func (c *catalog) drop(id string) {
	e := c.ids[id]
	if e == nil {
		return
	}
	delete(c.ids, id)
	e.dropped = true
	if e.sub != noTime {
		c.stale++
	}
	c.compact()
}

// compact removes the stale items once they are over a quarter of the
// history, so that dropped records are freed whether or not History is
// ever called. Amortised, it costs O(1) per stale item.
func (c *catalog) compact() {
	if c.stale > len(c.hist)/4 {
		c.hist = slices.DeleteFunc(c.hist, func(h histItem) bool { return !h.live() })
		c.stale = 0
	}
}

// place inserts e into the history if it has a submitted time. Times
// mostly arrive in order, so the search starts from the end.
func (c *catalog) place(e *entry) {
	if e.sub == noTime {
		return
	}
	it := histItem{sub: e.sub, seq: e.seq, gen: e.gen, e: e}
	i := len(c.hist)
	for i > 0 && less(it, c.hist[i-1]) {
		i--
		if len(c.hist)-i > 64 { // far from the end: binary search
			i, _ = slices.BinarySearchFunc(c.hist[:i], it, func(a, b histItem) int {
				if less(a, b) {
					return -1
				}
				return 1
			})
			break
		}
	}
	c.hist = slices.Insert(c.hist, i, it)
}

func less(a, b histItem) bool { return a.sub < b.sub || a.sub == b.sub && a.seq < b.seq }

// history returns the msg_ids in history order.
func (c *catalog) history() []string {
	ids := make([]string, 0, len(c.hist)-c.stale)
	for _, h := range c.hist {
		if c.stale == 0 || h.live() {
			ids = append(ids, h.e.id)
		}
	}
	return ids
}

// check verifies the catalog against itself; for tests.
func (c *catalog) check() error {
	n := 0
	for i, h := range c.hist {
		if i > 0 && less(h, c.hist[i-1]) {
			return fmt.Errorf("history out of order at %d", i)
		}
		if h.live() {
			n++
		}
	}
	if n != len(c.hist)-c.stale {
		return fmt.Errorf("%d live history items, %d stale of %d", n, c.stale, len(c.hist))
	}
	return nil
}

// catalogKeys are the keys the catalog holds: queries touching nothing
// else are answered from memory.
func catalogKey(k string) bool { return k == taskdb.KeyMsgID || k == taskdb.KeySubmitted }

// candidates returns copies of the entries that may satisfy a condition
// lo ≤ submitted ≤ hi (nil bounds are open; with both nil, every entry),
// for matching outside idsMu.
func (c *catalog) candidates(lo, hi *int64) []entry {
	if lo == nil && hi == nil {
		out := make([]entry, 0, len(c.ids))
		for _, e := range c.ids {
			out = append(out, *e)
		}
		return out
	}
	i, j := 0, len(c.hist)
	if lo != nil {
		i = sort.Search(len(c.hist), func(k int) bool { return c.hist[k].sub >= *lo })
	}
	if hi != nil {
		j = sort.Search(len(c.hist), func(k int) bool { return c.hist[k].sub > *hi })
	}
	var out []entry
	for _, h := range c.hist[i:max(i, j)] {
		if h.live() {
			out = append(out, *h.e)
		}
	}
	return out
}

// lookup returns copies of the entries of those ids that exist, for
// matching outside idsMu.
func (c *catalog) lookup(ids []any) []entry {
	out := make([]entry, 0, len(ids))
	for _, v := range ids {
		if id, ok := v.(string); ok {
			if e := c.ids[id]; e != nil {
				out = append(out, *e)
			}
		}
	}
	return out
}

// entryDoc shows an entry to the query matcher as a record holding only
// the catalog's keys.
type entryDoc struct{ e *entry }

func (d entryDoc) Lookup(key string) (any, bool) {
	switch key {
	case taskdb.KeyMsgID:
		return d.e.id, true
	case taskdb.KeySubmitted:
		if d.e.sub == noTime {
			return nil, true
		}
		return time.UnixMicro(d.e.sub).UTC(), true
	}
	return nil, false
}

func (d entryDoc) Len() int { return 2 }

// findInCatalog answers a query whose fields and keys are all catalog keys.
// It takes its candidates from the msg_ids the query names, if it names
// them, else from the submitted range it implies.
func (db *DB) findInCatalog(q *query.Filter, keys []string) []taskdb.Doc {
	var lo, hi *int64
	var ids []any
	byID := false
	for _, h := range q.Hints() {
		switch {
		case h.Path == taskdb.KeyMsgID && h.Eq:
			ids, byID = h.Values, true
		case h.Path == taskdb.KeySubmitted && !h.Eq:
			// A bound that is not a time matches nothing; leave it to MatchDoc.
			if t, ok := h.Lower.(time.Time); ok {
				v := t.UnixMicro()
				lo = &v
			}
			if t, ok := h.Upper.(time.Time); ok {
				v := t.UnixMicro()
				hi = &v
			}
		}
	}
	db.idsMu.Lock()
	var cands []entry
	if byID {
		cands = db.cat.lookup(ids)
	} else {
		cands = db.cat.candidates(lo, hi)
	}
	db.idsMu.Unlock()
	slices.SortFunc(cands, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	if byID { // $in may list an id twice
		cands = slices.CompactFunc(cands, func(a, b entry) bool { return a.seq == b.seq })
	}
	var out []taskdb.Doc
	for i := range cands {
		d := entryDoc{&cands[i]}
		if !q.MatchDoc(d) {
			continue
		}
		r := taskdb.Doc{{Key: taskdb.KeyMsgID, Value: d.e.id}}
		if slices.Contains(keys, taskdb.KeySubmitted) { // after msg_id, as in a record
			v, _ := d.Lookup(taskdb.KeySubmitted)
			r = append(r, taskdb.Field{Key: taskdb.KeySubmitted, Value: v})
		}
		out = append(out, r)
	}
	return out
}
