package sqlitedb

import (
	"cmp"
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
	"unique"

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
	client  ident  // client_uuid
	engine  ident  // engine_uuid
	gen     uint32
	pending bool // completed is null
	dropped bool
}

// ident is a client_uuid or engine_uuid as the catalog holds it: an
// interned string; the zero ident for null; or identOther for any other
// value, which only the matcher compares. A string equal to identOther's
// is taken for another value: a query may then read its row for nothing,
// never miss it.
type ident unique.Handle[string]

var identOther = ident(unique.Make("\x00taskhub: a value that is not a string\x00"))

// identOf returns the ident of a kindValue column's SQL value.
func identOf(v any) ident {
	switch x := v.(type) {
	case nil:
		return ident{}
	case string:
		return ident(unique.Make(x))
	}
	return identOther
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
	rows    []*entry   // in seq order, with dropped entries
	dead    int        // dropped entries in rows
	hist    []histItem // sorted by (sub, seq), with stale items
	stale   int        // stale items in hist
	nextSeq int64
}

func newCatalog() *catalog { return &catalog{ids: make(map[string]*entry), nextSeq: 1} }

// load fills the catalog from the table.
func (c *catalog) load(ctx context.Context, db *DB) error {
	stmt := "SELECT seq, msg_id, submitted, client_uuid, engine_uuid, completed IS NULL FROM " + db.table + " ORDER BY seq"
	err := db.rawQuery(ctx, stmt, nil, func(rows driver.Rows) error {
		vals := make([]driver.Value, 6)
		for {
			if err := rows.Next(vals); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			seq, ok1 := vals[0].(int64)
			id, ok2 := vals[1].(string)
			pending, ok3 := vals[5].(int64)
			if !ok1 || !ok2 || !ok3 {
				return fmt.Errorf("row of types %T, %T, %T", vals[0], vals[1], vals[5])
			}
			e := &entry{id: id, seq: seq, sub: noTime, client: identOf(vals[3]), engine: identOf(vals[4]), pending: pending != 0}
			if sub, ok := vals[2].(int64); ok {
				e.sub = sub
				c.hist = append(c.hist, histItem{sub: sub, seq: seq, e: e})
			}
			c.ids[id] = e
			c.rows = append(c.rows, e)
			c.nextSeq = seq + 1
		}
	})
	if err != nil {
		return err
	}
	slices.SortFunc(c.hist, func(a, b histItem) int { return cmp.Or(cmp.Compare(a.sub, b.sub), cmp.Compare(a.seq, b.seq)) })
	return nil
}

func (c *catalog) has(id string) bool {
	_, ok := c.ids[id]
	return ok
}

// add records e, a new entry, with the next seq.
func (c *catalog) add(e entry) {
	e.seq = c.nextSeq
	c.nextSeq++
	p := &e
	c.ids[e.id] = p
	c.rows = append(c.rows, p)
	c.place(p)
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

// drop removes the entry of id and returns it, or nil if there is none.
func (c *catalog) drop(id string) *entry {
	e := c.ids[id]
	if e == nil {
		return nil
	}
	delete(c.ids, id)
	e.dropped = true
	c.dead++
	if e.sub != noTime {
		c.stale++
	}
	c.compact()
	return e
}

// undrop brings back e, which drop removed for a write SQLite then
// rejected, unless its id was taken again since.
func (c *catalog) undrop(e *entry) {
	if e == nil || !e.dropped || c.ids[e.id] != nil {
		return
	}
	e.dropped = false
	c.ids[e.id] = e
	i, found := slices.BinarySearchFunc(c.rows, e.seq, func(x *entry, seq int64) int { return cmp.Compare(x.seq, seq) })
	if found {
		c.dead-- // not compacted away
	} else {
		c.rows = slices.Insert(c.rows, i, e)
	}
	if e.sub != noTime {
		e.gen++ // its old history item, if not compacted away, stays stale
		c.place(e)
	}
}

// compact removes the stale history items and dropped rows once they are
// over a quarter of their slice, so that dropped records are freed
// whether or not History is ever called. Amortised, it costs O(1) per
// stale item.
func (c *catalog) compact() {
	if c.stale > len(c.hist)/4 {
		c.hist = slices.DeleteFunc(c.hist, func(h histItem) bool { return !h.live() })
		c.stale = 0
	}
	if c.dead > len(c.rows)/4 {
		c.rows = slices.DeleteFunc(c.rows, func(e *entry) bool { return e.dropped })
		c.dead = 0
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
	live := 0
	for i, e := range c.rows {
		if i > 0 && e.seq <= c.rows[i-1].seq {
			return fmt.Errorf("rows out of order at %d", i)
		}
		if !e.dropped {
			live++
		}
	}
	if live != len(c.ids) || live != len(c.rows)-c.dead {
		return fmt.Errorf("%d live rows, %d dead of %d, %d ids", live, c.dead, len(c.rows), len(c.ids))
	}
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

// hit is the copy of an entry's id, seq and submitted time a catalog
// query matches outside idsMu.
type hit struct {
	id       string
	seq, sub int64
}

func (e *entry) hit() hit { return hit{e.id, e.seq, e.sub} }

// candidates returns the hits of the entries that may satisfy a condition
// lo ≤ submitted ≤ hi (nil bounds are open; with both nil, every entry,
// in seq order).
func (c *catalog) candidates(lo, hi *int64) []hit {
	if lo == nil && hi == nil {
		out := make([]hit, 0, len(c.ids))
		for _, e := range c.rows {
			if !e.dropped {
				out = append(out, e.hit())
			}
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
	var out []hit
	for _, h := range c.hist[i:max(i, j)] {
		if h.live() {
			out = append(out, h.e.hit())
		}
	}
	return out
}

// lookup returns the hits of those ids that exist.
func (c *catalog) lookup(ids []any) []hit {
	out := make([]hit, 0, len(ids))
	for _, v := range ids {
		if id, ok := v.(string); ok {
			if e := c.ids[id]; e != nil {
				out = append(out, e.hit())
			}
		}
	}
	return out
}

// entryDoc shows a hit to the query matcher as a record holding only the
// catalog's keys.
type entryDoc struct{ e *hit }

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
	var cands []hit
	if byID {
		cands = db.cat.lookup(ids)
	} else {
		cands = db.cat.candidates(lo, hi)
	}
	db.idsMu.Unlock()
	slices.SortFunc(cands, func(a, b hit) int { return cmp.Compare(a.seq, b.seq) })
	if byID { // $in may list an id twice
		cands = slices.CompactFunc(cands, func(a, b hit) bool { return a.seq == b.seq })
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

// identFilter is what a query's hints imply about the catalog's keys
// other than msg_id and submitted: conditions on client_uuid and
// engine_uuid, and pending when the query also asks for completed null.
// It holds for every record the query may match.
type identFilter struct {
	client, engine []func(ident) bool
	pending        bool
}

// newIdentFilter returns the filter hs imply, or nil if they test neither
// client_uuid nor engine_uuid (SQL's pending index then serves better).
func newIdentFilter(hs []query.Hint) *identFilter {
	var f identFilter
	pending := false
	for _, h := range hs {
		switch h.Path {
		case taskdb.KeyClientUUID:
			f.client = append(f.client, identCond(h))
		case taskdb.KeyEngineUUID:
			f.engine = append(f.engine, identCond(h))
		case taskdb.KeyCompleted:
			pending = pending || nullOnly(h)
		}
	}
	if f.client == nil && f.engine == nil {
		return nil
	}
	f.pending = pending
	return &f
}

// nullOnly reports whether h holds only for null or missing values.
func nullOnly(h query.Hint) bool {
	return h.Eq && len(h.Values) > 0 && !slices.ContainsFunc(h.Values, func(v any) bool { return v != nil })
}

func (f *identFilter) match(e *entry) bool {
	if f.pending && !e.pending {
		return false
	}
	for _, c := range f.client {
		if !c(e.client) {
			return false
		}
	}
	for _, c := range f.engine {
		if !c(e.engine) {
			return false
		}
	}
	return true
}

// identCond returns a condition holding for every ident h may accept:
// SQL's comparisons on the column's TEXT values, with values that are
// neither strings nor null always kept for the matcher to decide.
func identCond(h query.Hint) func(ident) bool {
	if h.Eq {
		null := false
		set := make(map[unique.Handle[string]]bool)
		for _, v := range h.Values {
			switch x := v.(type) {
			case nil:
				null = true
			case string:
				set[unique.Make(x)] = true
			}
		}
		return func(d ident) bool {
			switch d {
			case ident{}:
				return null
			case identOther:
				return true
			}
			return set[unique.Handle[string](d)]
		}
	}
	lo, loStr := h.Lower.(string)
	hi, hiStr := h.Upper.(string)
	if h.Lower != nil && !loStr || h.Upper != nil && !hiStr { // no string compares with the bound
		return func(d ident) bool { return d == identOther }
	}
	return func(d ident) bool {
		switch d {
		case ident{}:
			return h.Lower == nil && h.Upper == nil
		case identOther:
			return true
		}
		s := unique.Handle[string](d).Value()
		if c := strings.Compare(s, lo); loStr && (c < 0 || c == 0 && !h.LowerIncl) {
			return false
		}
		if c := strings.Compare(s, hi); hiStr && (c > 0 || c == 0 && !h.UpperIncl) {
			return false
		}
		return true
	}
}

// seqsWhere returns the seqs of the entries f matches, in order.
func (c *catalog) seqsWhere(f *identFilter) []int64 {
	var seqs []int64
	for _, e := range c.rows {
		if !e.dropped && f.match(e) {
			seqs = append(seqs, e.seq)
		}
	}
	return seqs
}
