package sqlitedb

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// GetRecord returns a copy of the record. It returns ErrNotFound (also for
// a record removed by retention), ErrClosed or ctx's error.
func (db *DB) GetRecord(ctx context.Context, msgID string) (taskdb.Doc, error) {
	r, err := db.get(ctx, msgID)
	if err != nil {
		return nil, err
	}
	return taskdb.DocOf(r), nil
}

func (db *DB) get(ctx context.Context, msgID string) (taskdb.Record, error) {
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
	cols := allColumns()
	rs, err := db.scan(ctx, cols, "SELECT "+selectList(cols)+" FROM "+db.table+" WHERE msg_id = ?", []any{msgID}, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: get %s: %w", msgID, err)
	}
	if len(rs) == 0 { // dropped since the check
		return nil, fmt.Errorf("sqlitedb: get %s: %w", msgID, taskdb.ErrNotFound)
	}
	return rs[0], nil
}

// FindRecords returns copies of the records q matches, in insertion
// order, limited to keys when keys is not empty. It returns
// ErrInvalidQuery for a key that is neither a schema key nor carried by
// any record, ErrClosed or ctx's error.
func (db *DB) FindRecords(ctx context.Context, q *query.Filter, keys []string) ([]taskdb.Doc, error) {
	rs, err := db.find(ctx, q, keys)
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: find: %w", err)
	}
	out := make([]taskdb.Doc, len(rs))
	for i, r := range rs {
		out[i] = taskdb.DocOf(r)
	}
	return out, nil
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

func (db *DB) find(ctx context.Context, q *query.Filter, keys []string) ([]taskdb.Record, error) {
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
	cols := allColumns()
	if len(keys) > 0 {
		cols = neededColumns(q, keys)
	}
	where, args := db.whereSQL(q)
	// No ORDER BY: SQLite then picks the index that serves the condition
	// rather than the rowid order, and scan sorts what it keeps by seq.
	cols = append([]int{colSeq}, cols...)
	stmt := "SELECT " + selectList(cols) + " FROM " + db.table + " WHERE " + where
	found := make(map[string]bool)
	rs, err := db.scan(ctx, cols, stmt, args, q, func(r taskdb.Record) taskdb.Record {
		if len(keys) == 0 {
			return r
		}
		out := make(taskdb.Record, len(keys)+1)
		out[taskdb.KeyMsgID] = r[taskdb.KeyMsgID]
		for _, k := range keys {
			if v, ok := r[k]; ok {
				out[k] = v
				found[k] = true
			}
		}
		return out
	})
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if taskdb.IsSchemaKey(k) || found[k] {
			continue
		}
		carried, err := db.carries(ctx, k)
		if err != nil {
			return nil, err
		}
		if !carried {
			return nil, &query.SyntaxError{Field: k, Msg: "is neither a schema key nor a key any stored record carries"}
		}
	}
	return rs, nil
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
	cols := []int{colExtra}
	hit := false
	_, err := db.scan(ctx, cols, "SELECT extra FROM "+db.table+" WHERE extra IS NOT NULL", nil, nil, func(r taskdb.Record) taskdb.Record {
		if _, ok := r[k]; ok {
			hit = true
		}
		return nil
	})
	return hit, err
}

// scan runs stmt, decodes each row's cols into a record, keeps those q
// matches (all when q is nil) and returns them passed through keep (which
// may return nil to drop one). It reads rows from the driver itself:
// database/sql's Scan would copy every string and blob once more.
func (db *DB) scan(ctx context.Context, cols []int, stmt string, args []any, q *query.Filter, keep func(taskdb.Record) taskdb.Record) ([]taskdb.Record, error) {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return nil, db.readErr(err)
	}
	defer conn.Close()
	var out []taskdb.Record
	err = conn.Raw(func(dc any) error {
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
		out, err = db.collect(ctx, rows, cols, q, keep)
		return err
	})
	return out, err
}

// collect decodes and filters rows for scan. It stops when ctx is done:
// the driver watches ctx only while the query starts.
func (db *DB) collect(ctx context.Context, rows driver.Rows, cols []int, q *query.Filter, keep func(taskdb.Record) taskdb.Record) ([]taskdb.Record, error) {
	vals := make([]driver.Value, len(cols))
	var out []taskdb.Record
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
		r := make(taskdb.Record, len(cols))
		if err := decodeRow(r, cols, vals); err != nil {
			return nil, err
		}
		if q != nil && !q.Match(r) {
			continue
		}
		if keep != nil {
			r = keep(r)
		}
		if r == nil {
			continue
		}
		out = append(out, r)
		if cols[0] == colSeq {
			seq, _ := vals[0].(int64)
			sorted = sorted && (len(seqs) == 0 || seqs[len(seqs)-1] < seq)
			seqs = append(seqs, seq)
		}
	}
	if !sorted {
		sort.Sort(bySeq{seqs, out})
	}
	return out, nil
}

// bySeq sorts records by their parallel seqs: insertion order.
type bySeq struct {
	seqs []int64
	rs   []taskdb.Record
}

func (s bySeq) Len() int           { return len(s.seqs) }
func (s bySeq) Less(i, j int) bool { return s.seqs[i] < s.seqs[j] }
func (s bySeq) Swap(i, j int) {
	s.seqs[i], s.seqs[j] = s.seqs[j], s.seqs[i]
	s.rs[i], s.rs[j] = s.rs[j], s.rs[i]
}

// readErr maps the errors of a read racing Close to ErrClosed.
func (db *DB) readErr(err error) error {
	if db.closed.Load() && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", taskdb.ErrClosed, err)
	}
	return err
}

// decodeRow sets r's keys from the SQL values of cols.
func decodeRow(r taskdb.Record, cols []int, vals []driver.Value) error {
	for j, i := range cols {
		v := vals[j]
		if i == colSeq {
			continue
		}
		if i == colExtra {
			if v == nil {
				continue
			}
			b, ok := v.([]byte)
			if !ok {
				return fmt.Errorf("extra column holds a %T", v)
			}
			m, err := decodeValue(b)
			if err != nil {
				return fmt.Errorf("decode extra keys: %w", err)
			}
			ms, ok := m.(map[string]any)
			if !ok {
				return fmt.Errorf("extra column holds a %T", m)
			}
			for k, x := range ms {
				r[k] = x
			}
			continue
		}
		c := columns[i]
		switch x := v.(type) {
		case nil:
			r[c.key] = nil
		case int64:
			if c.kind != kindTime {
				return fmt.Errorf("column %s holds an integer", c.key)
			}
			r[c.key] = time.UnixMicro(x).UTC()
		case string:
			r[c.key] = x
		case []byte:
			if c.kind != kindValue {
				return fmt.Errorf("column %s holds a blob", c.key)
			}
			d, err := decodeValue(x)
			if err != nil {
				return fmt.Errorf("decode %s: %w", c.key, err)
			}
			r[c.key] = d
		default:
			return fmt.Errorf("column %s holds a %T", c.key, v)
		}
	}
	return nil
}

func allColumns() []int {
	cols := make([]int, colExtra+1)
	for i := range cols {
		cols[i] = i
	}
	return cols
}

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
	fields, ok := topFields(q)
	return ok && !slices.ContainsFunc(fields, other)
}

// neededColumns returns the columns a projection on keys reads: msg_id,
// the keys', and those of the fields q tests.
func neededColumns(q *query.Filter, keys []string) []int {
	var set [64]bool
	set[0] = true
	mark := func(k string) {
		if i, ok := columnIndex[k]; ok {
			set[i] = true
		} else {
			set[colExtra] = true
		}
	}
	for _, k := range keys {
		mark(k)
	}
	fields, ok := topFields(q)
	if !ok {
		return allColumns()
	}
	for _, f := range fields {
		mark(f)
	}
	var cols []int
	for i := range colExtra + 1 {
		if set[i] {
			cols = append(cols, i)
		}
	}
	return cols
}

// topFields returns the top-level fields q tests (the first part of each
// dotted path), read from its canonical JSON; ok is false if that fails.
func topFields(q *query.Filter) (fields []string, ok bool) {
	var walk func(raw []byte) bool
	walk = func(raw []byte) bool {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return false
		}
		for k, v := range m {
			switch {
			case k == "$and" || k == "$or" || k == "$nor":
				var kids []json.RawMessage
				if json.Unmarshal(v, &kids) != nil {
					return false
				}
				for _, kid := range kids {
					if !walk(kid) {
						return false
					}
				}
			case strings.HasPrefix(k, "$"):
				return false
			default:
				head, _, _ := strings.Cut(k, ".")
				fields = append(fields, head)
			}
		}
		return true
	}
	return fields, walk([]byte(q.String()))
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

// hintTerms returns the conditions implied by q's hints.
func (db *DB) hintTerms(q *query.Filter) ([]string, []any) {
	var terms []string
	var args []any
	for _, h := range q.Hints() {
		i, ok := columnIndex[h.Path]
		if !ok {
			continue // dotted path or extra key: matched in Go
		}
		s, a := hintSQL(columns[i], h, db.mayHoldBlobs(i))
		if s != "" {
			terms = append(terms, s)
			args = append(args, a...)
		}
	}
	return terms, args
}

// anyBlob holds for the kindValue rows whose value is not a string or
// null: SQLite orders every BLOB after every TEXT, so it is one index range.
func anyBlob(name string) string { return name + " >= X''" }

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

// hintSQL returns a condition on column c implied by h, or "" for none.
// blobs tells whether a kindValue column may hold BLOBs (values other than
// strings and null), which SQL cannot compare.
func hintSQL(c column, h query.Hint, blobs bool) (string, []any) {
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
		if c.kind == kindValue && blobs {
			ors = append(ors, anyBlob(name))
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
			if c.kind == kindValue && blobs {
				return anyBlob(name), nil
			}
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
	s := strings.Join(parts, " AND ")
	if c.kind == kindValue && blobs {
		s = "((" + s + ") OR " + anyBlob(name) + ")"
	}
	return s, args
}

// inSQL returns "name IN (...)": bound parameters for short lists, one
// JSON array read by json_each for long ones (any length). ok is false
// when a long list holds a string JSON cannot carry (invalid UTF-8).
func inSQL(name string, list []any) (string, []any, bool) {
	if len(list) <= 32 {
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
