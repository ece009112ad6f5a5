package sqlitedb

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/internal/codec"
	"github.com/taskhub/taskhub/taskdb/query"
)

// GetRecord returns a copy of the record. It returns ErrNotFound (also for
// a record removed by retention), ErrClosed or ctx's error.
func (db *DB) GetRecord(ctx context.Context, msgID string) (taskdb.Doc, error) {
	if err := db.check(ctx); err != nil {
		return nil, err
	}
	db.idsMu.Lock()
	e := db.cat.ids[msgID]
	var row int64
	var last uint64
	if e != nil {
		row, last = e.seq, e.last
	}
	db.idsMu.Unlock()
	if e == nil {
		return nil, fmt.Errorf("sqlitedb: get %s: %w", msgID, taskdb.ErrNotFound)
	}
	if last > db.committed.Load() {
		return db.getQueued(ctx, msgID, row)
	}
	ds, err := db.scan(ctx, allColumns, nil, "SELECT "+selectList(allColumns)+" FROM "+db.table+" WHERE seq = ?", []any{row}, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: get %s: %w", msgID, err)
	}
	if len(ds) == 0 { // dropped since the check
		return nil, fmt.Errorf("sqlitedb: get %s: %w", msgID, taskdb.ErrNotFound)
	}
	return ds[0], nil
}

// FindRecords returns copies of the records q matches, in insertion
// order, limited to keys when keys is not empty. It returns
// ErrInvalidQuery for a key that is neither a schema key nor carried by
// any record, ErrClosed or ctx's error.
func (db *DB) FindRecords(ctx context.Context, q *query.Filter, keys []string) ([]taskdb.Doc, error) {
	ds, err := db.find(ctx, q, keys)
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: find: %w", err)
	}
	return ds, nil
}

// History returns the msg_ids of records with a submitted time, ordered by
// it, ties in insertion order. It returns ErrClosed or ctx's error.
func (db *DB) History(ctx context.Context) ([]string, error) {
	if err := db.check(ctx); err != nil {
		return nil, err
	}
	db.idsMu.Lock()
	defer db.idsMu.Unlock()
	return db.cat.history(), nil
}

// everything is the filter a nil *query.Filter stands for.
var everything = query.MustParse(`{}`)

func (db *DB) find(ctx context.Context, q *query.Filter, keys []string) ([]taskdb.Doc, error) {
	if err := db.check(ctx); err != nil {
		return nil, err
	}
	if q == nil {
		q = everything
	}
	if len(keys) > 0 && coveredByCatalog(q, keys) {
		return db.findInCatalog(q, keys), nil
	}
	if db.mayMatchQueued(q) {
		if err := db.sync(ctx); err != nil {
			return nil, err
		}
	}
	cols := allColumns
	var need func(string) bool // nil: every doc key
	if len(keys) > 0 {
		cols, need = neededColumns(q, keys)
	}
	where, args := db.whereSQL(q)
	// No ORDER BY: SQLite then picks the index that serves the condition
	// rather than the rowid order, and scan sorts what it keeps by seq.
	stmt := "SELECT " + selectList(cols) + " FROM " + db.table + " WHERE " + where
	found := make(map[string]bool)
	ds, err := db.scan(ctx, cols, need, stmt, args, q, func(d taskdb.Doc) taskdb.Doc {
		if len(keys) == 0 {
			return d
		}
		return project(d, keys, found)
	})
	if err != nil {
		return nil, err
	}
	if err := taskdb.CheckKeys(keys, found, func(k string) (bool, error) { return db.carries(ctx, k) }); err != nil {
		return nil, err
	}
	return ds, nil
}

// project returns msg_id and the fields of d under keys, in d's order,
// noting in found the keys it saw.
func project(d taskdb.Doc, keys []string, found map[string]bool) taskdb.Doc {
	out := make(taskdb.Doc, 1, len(keys)+1)
	out[0] = d[0] // msg_id
	for _, f := range d[1:] {
		if slices.Contains(keys, f.Key) {
			out = append(out, f)
			found[f.Key] = true
		}
	}
	return out
}

// mayMatchQueued reports whether a record q may match has queued writes,
// so that reading committed rows would miss them. It is false only when
// q names its records by msg_id (as result requests do) and none of them
// has a queued write.
func (db *DB) mayMatchQueued(q *query.Filter) bool {
	committed := db.committed.Load()
	if committed >= db.queued.Load() {
		return false
	}
	for _, h := range q.Hints() {
		if h.Path != taskdb.KeyMsgID || !h.Eq {
			continue
		}
		db.idsMu.Lock()
		defer db.idsMu.Unlock()
		for _, v := range h.Values {
			if id, ok := v.(string); ok {
				if e := db.cat.ids[id]; e != nil && e.last > committed {
					return true
				}
			}
		}
		return false // no other record can match
	}
	return true
}

// carries reports whether some record has the extra key k.
func (db *DB) carries(ctx context.Context, k string) (bool, error) {
	cols := []int{colSeq, 0, colDoc}
	hit := false
	_, err := db.scan(ctx, cols, func(key string) bool { return key == k }, "SELECT "+selectList(cols)+" FROM "+db.table, nil, nil, func(d taskdb.Doc) taskdb.Doc {
		if _, ok := d.Lookup(k); ok {
			hit = true
		}
		return nil
	})
	return hit, err
}

// scan runs stmt, which selects cols, decodes each row into a Doc (of the
// doc keys, only those need accepts), keeps those q matches (all when q
// is nil) and returns them passed through keep (which may return nil to
// drop one), in seq order. It reads rows from the driver itself:
// database/sql's Scan would copy every string and blob once more.
func (db *DB) scan(ctx context.Context, cols []int, need func(string) bool, stmt string, args []any, q *query.Filter, keep func(taskdb.Doc) taskdb.Doc) ([]taskdb.Doc, error) {
	var out []taskdb.Doc
	err := db.rawQuery(ctx, stmt, args, func(rows driver.Rows) (err error) {
		out, err = db.collect(ctx, rows, cols, need, q, keep)
		return err
	})
	return out, err
}

// rawQuery runs stmt with args on a reader connection and passes its
// rows, straight from the driver, to f.
func (db *DB) rawQuery(ctx context.Context, stmt string, args []any, f func(driver.Rows) error) error {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return db.readErr(err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		qc, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot query", dc)
		}
		named := make([]driver.NamedValue, len(args))
		for i, a := range args {
			named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		rows, err := qc.QueryContext(ctx, stmt, named)
		if err != nil {
			return db.readErr(err)
		}
		defer rows.Close()
		return f(rows)
	})
}

// collect decodes and filters rows for scan. It stops when ctx is done:
// the driver watches ctx only while the query starts.
func (db *DB) collect(ctx context.Context, rows driver.Rows, cols []int, need func(string) bool, q *query.Filter, keep func(taskdb.Doc) taskdb.Doc) ([]taskdb.Doc, error) {
	vals := make([]driver.Value, len(cols))
	c := &carver{}
	read := 0
	var out []taskdb.Doc
	var seqs []int64
	sorted := true
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		default:
		}
		if err := rows.Next(vals); err == io.EOF {
			break
		} else if err != nil {
			return nil, db.readErr(err)
		}
		d, err := decodeRow(cols, vals, need, c)
		if err != nil {
			return nil, err
		}
		if read++; read == 1 {
			c.Plan(1, 1) // more rows may follow: share chunks from now on
		}
		if q != nil && !q.MatchDoc(d) {
			continue
		}
		if keep != nil {
			d = keep(d)
		}
		if d == nil {
			continue
		}
		out = append(out, d)
		seq, _ := vals[0].(int64) // cols[0] is colSeq
		sorted = sorted && (len(seqs) == 0 || seqs[len(seqs)-1] < seq)
		seqs = append(seqs, seq)
	}
	if !sorted {
		sort.Sort(bySeq{seqs, out})
	}
	return out, nil
}

// bySeq sorts records by their parallel seqs: insertion order.
type bySeq struct {
	seqs []int64
	ds   []taskdb.Doc
}

func (s bySeq) Len() int           { return len(s.seqs) }
func (s bySeq) Less(i, j int) bool { return s.seqs[i] < s.seqs[j] }
func (s bySeq) Swap(i, j int) {
	s.seqs[i], s.seqs[j] = s.seqs[j], s.seqs[i]
	s.ds[i], s.ds[j] = s.ds[j], s.ds[i]
}

// readErr maps the errors of a read racing Close to ErrClosed.
func (db *DB) readErr(err error) error {
	if db.closed.Load() && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", taskdb.ErrClosed, err)
	}
	return err
}

// typedColumn maps the index of a schema key in taskdb.SchemaKeys to its
// typed column, or -1 if it lives in the doc.
var typedColumn = func() (m [len(taskdb.SchemaKeys)]int) {
	for i, k := range taskdb.SchemaKeys {
		m[i] = -1
		if c, ok := columnIndex[k]; ok {
			m[i] = c
		}
	}
	return m
}()

// decodeRow builds a record from the SQL values of cols (colSeq first): the
// typed columns read, then, if the doc column is read, every other schema
// key (at its default when the doc leaves it out) and the extra keys, of
// those need accepts (all if need is nil). The fields are in Doc order;
// the Docs and arrays come from c, and the values share vals' blobs.
func decodeRow(cols []int, vals []driver.Value, need func(string) bool, c *carver) (taskdb.Doc, error) {
	var typed [len(columns)]any
	var has uint64
	var dec *codec.Decoder
	for j, i := range cols {
		switch i {
		case colSeq:
		case colDoc:
			b, ok := vals[j].([]byte)
			if !ok {
				return nil, fmt.Errorf("doc column holds a %T", vals[j])
			}
			d := codec.DocDecoder(b, &c.Alloc)
			dec = &d
		default:
			v, err := columnValue(columns[i], vals[j], c)
			if err != nil {
				return nil, err
			}
			typed[i], has = v, has|1<<i
		}
	}
	if dec == nil {
		d := c.Doc(bits.OnesCount64(has))
		for i, c := range columns {
			if has&(1<<i) != 0 {
				d = append(d, taskdb.Field{Key: c.key, Value: typed[i]})
			}
		}
		return d, nil
	}
	n, err := dec.MapLen()
	if err != nil {
		return nil, fmt.Errorf("decode doc: %w", err)
	}
	// Built in c's scratch Doc, since how many of the doc's keys are extra
	// keys shows only at the end, then copied to an exact-size Doc.
	d := c.scratch[:0]
	key, more, first := "", false, true
	// next reads the next doc key into key; more is false after the last.
	next := func() error {
		if n == 0 {
			more = false
			return nil
		}
		n--
		k, err := dec.Key()
		if err != nil {
			return err
		}
		if !first && codec.CompareKeys(key, k) >= 0 {
			return fmt.Errorf("doc key %q out of order", k)
		}
		key, more, first = k, true, false
		return nil
	}
	// take appends the value of key to d if need accepts it, else skips
	// it, and reads the next key.
	take := func() error {
		k := key
		if need != nil && !need(k) {
			if err := dec.Skip(); err != nil {
				return fmt.Errorf("decode doc key %q: %w", k, err)
			}
		} else {
			v, err := dec.Value()
			if err != nil {
				return fmt.Errorf("decode doc key %q: %w", k, err)
			}
			d = append(d, taskdb.Field{Key: k, Value: v})
		}
		if err := next(); err != nil {
			return fmt.Errorf("decode doc key %q: %w", k, err)
		}
		return nil
	}
	if err := next(); err != nil {
		return nil, fmt.Errorf("decode doc: %w", err)
	}
	for si, k := range taskdb.SchemaKeys {
		if c := typedColumn[si]; c >= 0 {
			if has&(1<<c) != 0 {
				d = append(d, taskdb.Field{Key: k, Value: typed[c]})
			}
			continue
		}
		if !more || key != k {
			if need == nil || need(k) {
				d = append(d, taskdb.Field{Key: k, Value: taskdb.Default(k)})
			}
			continue
		}
		if err := take(); err != nil {
			return nil, err
		}
	}
	for more {
		if taskdb.IsSchemaKey(key) {
			return nil, fmt.Errorf("decode doc: key %q out of order", key)
		}
		if err := take(); err != nil {
			return nil, err
		}
	}
	if err := dec.End(); err != nil {
		return nil, fmt.Errorf("decode doc: %w", err)
	}
	out := append(c.Doc(len(d)), d...)
	clear(d)
	c.scratch = d[:0]
	return out, nil
}

// columnValue converts the SQL value of typed column c to the record's.
func columnValue(c column, v driver.Value, cv *carver) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int64:
		if c.kind == kindTime {
			return time.UnixMicro(x).UTC(), nil
		}
	case string:
		if c.kind != kindTime {
			return x, nil
		}
	case []byte:
		if c.kind == kindValue {
			dec := codec.DocDecoder(x, &cv.Alloc)
			d, err := dec.Value()
			if err == nil {
				err = dec.End()
			}
			if err != nil {
				return nil, fmt.Errorf("decode %s: %w", c.key, err)
			}
			return d, nil
		}
	}
	return nil, fmt.Errorf("column %s holds a %T", c.key, v)
}

// allColumns are the columns of a complete record, seq first.
var allColumns = func() []int {
	cols := []int{colSeq}
	for i := range colDoc + 1 {
		cols = append(cols, i)
	}
	return cols
}()

func selectList(cols []int) string {
	names := make([]string, len(cols))
	for j, i := range cols {
		names[j] = colName(i)
	}
	return strings.Join(names, ", ")
}

// coveredByCatalog reports whether q tests and keys name only catalog
// keys, so that the catalog answers without reading the table.
func coveredByCatalog(q *query.Filter, keys []string) bool {
	other := func(k string) bool { return !catalogKey(k) }
	if slices.ContainsFunc(keys, other) {
		return false
	}
	return !slices.ContainsFunc(q.Fields(), other)
}

// neededColumns returns the columns a projection on keys reads (seq,
// msg_id, the keys' and those of the fields q tests) and the doc keys it
// decodes (nil: all).
func neededColumns(q *query.Filter, keys []string) ([]int, func(string) bool) {
	fields := q.Fields()
	var set [colDoc + 1]bool
	set[0] = true
	want := map[string]bool{}
	for _, k := range append(fields, keys...) {
		if i, ok := columnIndex[k]; ok {
			set[i] = true
		} else {
			set[colDoc] = true
			want[k] = true
		}
	}
	cols := []int{colSeq}
	for i := range colDoc + 1 {
		if set[i] {
			cols = append(cols, i)
		}
	}
	return cols, func(k string) bool { return want[k] }
}

// whereSQL translates q into an SQL condition that holds for every row q
// matches (and may hold for others: the caller still matches). It uses
// q's hints (the conjunctions at the top level and in $and) and, from q's
// canonical JSON, $or and $exists: true (or $ne: null) on columns.
func (db *DB) whereSQL(q *query.Filter) (string, []any) {
	terms, args := db.hintTerms(q)
	// String replaces invalid UTF-8 with U+FFFD: such a query does not
	// round-trip, so only its hints are used.
	if s := q.String(); !strings.Contains(s, `\ufffd`) && !strings.ContainsRune(s, utf8.RuneError) {
		var doc map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &doc) == nil {
			t, a := db.docTerms(doc)
			terms, args = append(terms, t...), append(args, a...)
		}
	}
	if len(terms) == 0 {
		return "1", nil
	}
	return strings.Join(terms, " AND "), args
}

// docTerms returns the conditions implied by the $or entries and the
// $exists: true and $ne: null operators of a canonical query document and
// of its $and documents (whose other conditions are hints).
func (db *DB) docTerms(doc map[string]json.RawMessage) (terms []string, args []any) {
	for k, v := range doc {
		switch k {
		case "$and":
			var kids []map[string]json.RawMessage
			if json.Unmarshal(v, &kids) == nil {
				for _, kid := range kids {
					t, a := db.docTerms(kid)
					terms, args = append(terms, t...), append(args, a...)
				}
			}
		case "$or":
			if s, a, ok := db.orSQL(v); ok {
				terms, args = append(terms, s), append(args, a...)
			}
		default:
			i, ok := columnIndex[k]
			var ops map[string]json.RawMessage
			if ok && json.Unmarshal(v, &ops) == nil && (string(ops["$exists"]) == "true" || string(ops["$ne"]) == "null") {
				terms = append(terms, colName(i)+" IS NOT NULL") // present and non-null
			}
		}
	}
	return terms, args
}

// orSQL translates the documents of an $or: the OR of their conditions,
// or ok false when one of them implies none.
func (db *DB) orSQL(raw json.RawMessage) (string, []any, bool) {
	var kids []json.RawMessage
	if json.Unmarshal(raw, &kids) != nil {
		return "", nil, false
	}
	ors := make([]string, 0, len(kids))
	var args []any
	for _, kid := range kids {
		f, err := query.ParseJSON(kid)
		if err != nil {
			return "", nil, false
		}
		s, a := db.whereSQL(f)
		if s == "1" {
			return "", nil, false
		}
		ors, args = append(ors, "("+s+")"), append(args, a...)
	}
	return "(" + strings.Join(ors, " OR ") + ")", args, true
}

// hintTerms returns the conditions implied by q's hints. Those on
// client_uuid and engine_uuid, which SQL does not index, select rows by
// the seqs the catalog finds.
func (db *DB) hintTerms(q *query.Filter) ([]string, []any) {
	var terms []string
	var args []any
	hs := q.Hints()
	f := newIdentFilter(hs)
	for _, h := range hs {
		i, ok := columnIndex[h.Path]
		if !ok {
			continue // dotted path or doc key: matched in Go
		}
		var s string
		var a []any
		switch {
		case columns[i].kind == kindValue, f != nil && f.pending && h.Path == taskdb.KeyCompleted && nullOnly(h):
			continue // in f
		case columns[i].kind == kindID && h.Eq:
			s, a = db.seqSQL(h.Values)
		default:
			s, a = hintSQL(columns[i], h)
		}
		if s != "" {
			terms = append(terms, s)
			args = append(args, a...)
		}
	}
	if f != nil {
		db.idsMu.Lock()
		seqs := db.cat.seqsWhere(f)
		db.idsMu.Unlock()
		s, a := seqIn(seqs)
		terms = append(terms, s)
		args = append(args, a...)
	}
	return terms, args
}

// seqSQL returns a condition selecting the rows of the msg_ids among
// vals: the catalog knows each one's seq, so msg_id needs no index.
func (db *DB) seqSQL(vals []any) (string, []any) {
	var seqs []int64
	db.idsMu.Lock()
	for _, v := range vals {
		if id, ok := v.(string); ok {
			if e := db.cat.ids[id]; e != nil {
				seqs = append(seqs, e.seq)
			}
		}
	}
	db.idsMu.Unlock()
	return seqIn(seqs)
}

// seqIn returns a condition selecting the rows of seqs: bound parameters
// for a few, one JSON array read by json_each for many.
func seqIn(seqs []int64) (string, []any) {
	switch {
	case len(seqs) == 0:
		return "0", nil
	case len(seqs) <= maxParams:
		args := make([]any, len(seqs))
		for i, s := range seqs {
			args[i] = s
		}
		return "seq IN (?" + strings.Repeat(", ?", len(seqs)-1) + ")", args
	}
	b := make([]byte, 0, 8*len(seqs)+2)
	b = append(b, '[')
	for i, s := range seqs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, s, 10)
	}
	return "seq IN (SELECT value FROM json_each(?))", []any{string(append(b, ']'))}
}

// sqlValue converts a query operand to column c's SQL value, if c can hold
// a value equal to it as TEXT or INTEGER (kindValue columns store
// everything but strings and null as BLOBs).
func sqlValue(c column, v any) (any, bool) {
	switch x := v.(type) {
	case time.Time:
		return x.UnixMicro(), c.kind == kindTime
	case string:
		return x, c.kind != kindTime
	}
	return nil, false
}

// hintSQL returns a condition on column c, msg_id or a time, implied by
// h, or "" for none.
func hintSQL(c column, h query.Hint) (string, []any) {
	name := c.key
	if h.Eq {
		var list []any
		null := false
		for _, v := range h.Values {
			if v == nil {
				null = c.kind != kindID
			} else if x, ok := sqlValue(c, v); ok {
				list = append(list, x)
			}
		}
		var ors []string
		var args []any
		if len(list) > 0 {
			s, a, ok := inSQL(name, list)
			if !ok {
				return "", nil
			}
			ors, args = append(ors, s), a
		}
		if null {
			ors = append(ors, name+" IS NULL")
		}
		if len(ors) == 0 {
			return "0", nil
		}
		return "(" + strings.Join(ors, " OR ") + ")", args
	}
	var parts []string
	var args []any
	for _, b := range []struct {
		v    any
		incl bool
		op   string
	}{{h.Lower, h.LowerIncl, ">"}, {h.Upper, h.UpperIncl, "<"}} {
		if b.v == nil {
			continue
		}
		x, ok := sqlValue(c, b.v)
		if !ok {
			return "0", nil // no value of this column compares with b.v
		}
		op := b.op
		if b.incl {
			op += "="
		}
		parts, args = append(parts, name+" "+op+" ?"), append(args, x)
	}
	if len(parts) == 0 {
		return "", nil
	}
	return strings.Join(parts, " AND "), args
}

// maxParams is the longest list bound as parameters; longer ones are
// passed as one JSON array.
const maxParams = 32

// inSQL returns "name IN (...)": bound parameters for short lists, one
// JSON array read by json_each for long ones (any length). ok is false
// when a long list holds a string JSON cannot carry (invalid UTF-8).
func inSQL(name string, list []any) (string, []any, bool) {
	if len(list) <= maxParams {
		return name + " IN (?" + strings.Repeat(", ?", len(list)-1) + ")", list, true
	}
	for _, v := range list {
		if s, isStr := v.(string); isStr && !utf8.ValidString(s) {
			return "", nil, false
		}
	}
	b, err := json.Marshal(list)
	if err != nil {
		return "", nil, false
	}
	return name + " IN (SELECT value FROM json_each(?))", []any{string(b)}, true
}
