package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/internal/batch"
	"github.com/taskhub/taskhub/taskdb/internal/chunk"
	"github.com/taskhub/taskhub/taskdb/internal/codec"
	"github.com/taskhub/taskhub/taskdb/query"
)

// AddRecord queues rec for insertion. It returns ErrExists for a msg_id
// this DB added (one added by another hub is caught when the batch is
// written, and logged), ErrInvalidRecord, ErrUnavailable when the write
// queue is full during an outage, ErrClosed or ctx's error.
func (db *DB) AddRecord(ctx context.Context, msgID string, rec taskdb.Record) error {
	if err := db.check(ctx); err != nil {
		return err
	}
	if !isText(msgID) {
		return fmt.Errorf("postgres: add %q: %w: msg_id must be UTF-8 without NUL", msgID, taskdb.ErrInvalidRecord)
	}
	r := taskdb.EmptyRecord(msgID)
	if err := normalize(msgID, r, rec); err != nil {
		return fmt.Errorf("postgres: add %s: %w", msgID, err)
	}
	if err := db.q.Enqueue(ctx, batch.Op{Kind: batch.Add, ID: msgID, Record: r}); err != nil {
		return fmt.Errorf("postgres: add %s: %w", msgID, err)
	}
	return nil
}

// UpdateRecord queues the replacement of fields' top-level keys. It
// returns ErrNotFound, ErrInvalidRecord, ErrUnavailable, ErrClosed or
// ctx's error.
func (db *DB) UpdateRecord(ctx context.Context, msgID string, fields taskdb.Record) error {
	if err := db.check(ctx); err != nil {
		return err
	}
	r := make(taskdb.Record, len(fields))
	if err := normalize(msgID, r, fields); err != nil {
		return fmt.Errorf("postgres: update %s: %w", msgID, err)
	}
	if err := db.q.Enqueue(ctx, batch.Op{Kind: batch.Update, ID: msgID, Record: r}); err != nil {
		return fmt.Errorf("postgres: update %s: %w", msgID, err)
	}
	return nil
}

// DropRecord queues the removal of the record. It returns ErrNotFound,
// ErrUnavailable, ErrClosed or ctx's error.
func (db *DB) DropRecord(ctx context.Context, msgID string) error {
	if err := db.check(ctx); err != nil {
		return err
	}
	if err := db.q.Enqueue(ctx, batch.Op{Kind: batch.Drop, ID: msgID}); err != nil {
		return fmt.Errorf("postgres: drop %s: %w", msgID, err)
	}
	return nil
}

// DropMatchingRecords removes every record q matches. Records written
// concurrently with the call may or may not be removed.
func (db *DB) DropMatchingRecords(ctx context.Context, q *query.Filter) error {
	where, args := whereSQL(q)
	ids, err := db.find(ctx, q, idOnly, where, args...)
	if err != nil {
		return fmt.Errorf("postgres: drop matching: %w", err)
	}
	for _, d := range ids {
		id := d.Get(taskdb.KeyMsgID).(string)
		if err := db.q.Enqueue(ctx, batch.Op{Kind: batch.Drop, ID: id}); err != nil && !errors.Is(err, taskdb.ErrNotFound) {
			return fmt.Errorf("postgres: drop matching: %w", err)
		}
	}
	return nil
}

// normalize copies src's values into dst in the canonical value model.
// A msg_id in src must be msgID.
func normalize(msgID string, dst, src taskdb.Record) error {
	for k, v := range src {
		v, err := taskdb.Normalize(k, v)
		if err != nil {
			return err
		}
		if k == taskdb.KeyMsgID && v != msgID {
			return fmt.Errorf("%w: msg_id %v differs from the record's id", taskdb.ErrInvalidRecord, v)
		}
		dst[k] = v
	}
	return nil
}

// exists reports whether the table holds msgID.
func (db *DB) exists(ctx context.Context, msgID string) (bool, error) {
	if !isText(msgID) { // never stored
		return false, nil
	}
	var found bool
	err := db.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+db.table+" WHERE msg_id = $1)", msgID).Scan(&found)
	return found, err
}

// rejected is a write the table refuses: it is not retried.
type rejected struct {
	op  batch.Op
	why string
}

func (r *rejected) Error() string {
	return fmt.Sprintf("%s %s: %s", r.op.Kind, r.op.ID, r.why)
}

// apply writes ops in one transaction: it reads the stored records that
// updates and drops touch (locking their rows), replays ops on them in
// memory, then deletes, inserts and updates each record once. It applies
// all of ops or none.
func (db *DB) apply(ctx context.Context, ops []batch.Op) (int, error) {
	// The records the batch needs that it does not add first.
	var need []string
	seen := make(map[string]bool)
	for _, op := range ops {
		if !seen[op.ID] {
			seen[op.ID] = true
			if op.Kind != batch.Add {
				need = append(need, op.ID)
			}
		}
	}
	var err error
	if len(need) == 0 {
		// Adds only: one round trip, a pipeline that PostgreSQL runs as
		// one implicit transaction.
		err = db.send(ctx, db.pool, replay(ops, nil))
	} else {
		err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			stored, err := db.lock(ctx, tx, need)
			if err != nil {
				return err
			}
			return db.send(ctx, tx, replay(ops, stored))
		})
	}
	if err != nil {
		return 0, err
	}
	return len(ops), nil
}

// lock reads and locks the stored records of ids.
func (db *DB) lock(ctx context.Context, tx pgx.Tx, ids []string) (map[string]taskdb.Doc, error) {
	rows, err := tx.Query(ctx, db.sql.lock, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	stored := make(map[string]taskdb.Doc, len(ids))
	var a chunk.Alloc
	for rows.Next() {
		raw := rows.RawValues()
		d, err := codec.DecodeDoc(raw[1], &a)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errCorrupt, raw[0], err)
		}
		if len(stored) == 0 {
			a.Plan(1, len(ids)-1)
		}
		stored[string(raw[0])] = d
	}
	return stored, rows.Err()
}

// plan is a batch replayed in memory: the rows to delete, insert (in
// order) and update.
type plan struct {
	del      []string
	ins, upd []taskdb.Doc
	err      error // a rejected op
}

// replay applies ops to the stored records they touch, in order. Records
// are Docs in canonical order (taskdb.DocOf), as stored.
func replay(ops []batch.Op, stored map[string]taskdb.Doc) plan {
	type state struct {
		was   bool       // stored before the batch
		rec   taskdb.Doc // now, nil if absent
		added bool       // added by the batch: the row is (re)inserted
		order int        // the add's position, for insertion order
	}
	states := make(map[string]*state)
	var ids []string
	for i, op := range ops {
		s := states[op.ID]
		if s == nil {
			r, ok := stored[op.ID]
			s = &state{was: ok, rec: r}
			states[op.ID] = s
			ids = append(ids, op.ID)
		}
		switch {
		case op.Kind == batch.Add && s.rec != nil:
			return plan{err: &rejected{op, "record already exists (added by another hub, or before a restart)"}}
		case op.Kind != batch.Add && s.rec == nil:
			return plan{err: &rejected{op, "record not found (dropped by another hub?)"}}
		case op.Kind == batch.Add:
			s.rec, s.added, s.order = taskdb.DocOf(op.Record), true, i
		case op.Kind == batch.Update:
			s.rec = merge(s.rec, taskdb.DocOf(op.Record))
		case op.Kind == batch.Drop:
			s.rec, s.added = nil, false
		}
	}
	var p plan
	var added []string
	for _, id := range ids {
		s := states[id]
		switch {
		case s.was && (s.rec == nil || s.added):
			p.del = append(p.del, id)
		case s.was:
			p.upd = append(p.upd, s.rec)
		}
		if s.added {
			added = append(added, id)
		}
	}
	slices.SortFunc(added, func(a, b string) int { return states[a].order - states[b].order })
	for _, id := range added {
		p.ins = append(p.ins, states[id].rec)
	}
	return p
}

// send runs a plan's statements in one round trip.
func (db *DB) send(ctx context.Context, to interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}, p plan) error {
	if p.err != nil {
		return p.err
	}
	var b pgx.Batch
	if len(p.del) > 0 {
		b.Queue(db.sql.del, p.del)
	}
	for _, w := range []struct {
		recs []taskdb.Doc
		stmt string
	}{{p.ins, db.sql.insert}, {p.upd, db.sql.update}} {
		if len(w.recs) == 0 {
			continue
		}
		var rs rowSet
		for _, r := range w.recs {
			if err := rs.add(r); err != nil {
				return &rejected{batch.Op{Kind: batch.Add, ID: r.Get(taskdb.KeyMsgID).(string)}, err.Error()}
			}
		}
		b.Queue(w.stmt, rs.args()...)
	}
	return to.SendBatch(ctx, &b).Close()
}

// statements are the SQL texts of a table.
type statements struct {
	lock, del, insert, update string
}

func newStatements(t string) statements {
	// u's columns, as the table's types (extra_keys travels as text).
	var vals, set []string
	for _, c := range rowColumns {
		v := "u." + c
		if c == "extra_keys" {
			v += "::jsonb"
		}
		vals = append(vals, v)
		if c != "msg_id" {
			set = append(set, c+" = "+v)
		}
	}
	return statements{
		lock:   "SELECT msg_id, doc FROM " + t + " WHERE msg_id = ANY($1) FOR UPDATE",
		del:    "DELETE FROM " + t + " WHERE msg_id = ANY($1)",
		insert: "INSERT INTO " + t + " (" + strings.Join(rowColumns, ", ") + ") SELECT " + strings.Join(vals, ", ") + " FROM " + unnest(),
		update: "UPDATE " + t + " AS t SET " + strings.Join(set, ", ") + " FROM " + unnest() + " WHERE t.msg_id = u.msg_id",
	}
}

// unnest is the FROM item that turns a rowSet's arrays into rows u.
func unnest() string {
	var s strings.Builder
	s.WriteString("unnest(")
	for i, t := range rowTypes {
		if i > 0 {
			s.WriteString(", ")
		}
		s.WriteString("$" + strconv.Itoa(i+1) + "::" + t)
	}
	s.WriteString(") AS u(" + strings.Join(rowColumns, ", ") + ")")
	return s.String()
}

// rowSet holds records as column arrays, in rowColumns order.
type rowSet struct {
	ids   []string
	times [len(timeKeys)][]pgtype.Timestamptz
	texts [len(textKeys)][]pgtype.Text
	other []bool
	extra []pgtype.Text
	docs  [][]byte
	buf   []byte // where add encodes a doc
}

func (s *rowSet) add(d taskdb.Doc) error {
	var err error
	if s.buf, err = codec.AppendDoc(s.buf[:0], d); err != nil {
		return err
	}
	doc := bytes.Clone(s.buf)
	s.ids = append(s.ids, d.Get(taskdb.KeyMsgID).(string))
	for i, k := range timeKeys {
		t, ok := d.Get(k).(time.Time)
		s.times[i] = append(s.times[i], pgtype.Timestamptz{Time: t, Valid: ok})
	}
	other := false
	for i, k := range textKeys {
		v := d.Get(k)
		str, ok := v.(string)
		ok = ok && isText(str)
		s.texts[i] = append(s.texts[i], pgtype.Text{String: str, Valid: ok})
		other = other || !ok && v != nil
	}
	s.other = append(s.other, other)
	var extra []string
	for _, f := range d {
		// jsonb cannot hold the others: a projection on such a key
		// finds it only in the records a query returns.
		if !taskdb.IsSchemaKey(f.Key) && isText(f.Key) {
			extra = append(extra, f.Key)
		}
	}
	var ej pgtype.Text
	if len(extra) > 0 {
		b, err := json.Marshal(extra)
		if err != nil {
			return err
		}
		ej = pgtype.Text{String: string(b), Valid: true}
	}
	s.extra = append(s.extra, ej)
	s.docs = append(s.docs, doc)
	return nil
}

func (s *rowSet) args() []any {
	a := []any{s.ids}
	for _, t := range s.times {
		a = append(a, t)
	}
	for _, t := range s.texts {
		a = append(a, t)
	}
	return append(a, s.other, s.extra, s.docs)
}

// isText reports whether PostgreSQL's text type can hold s: valid UTF-8
// without NUL. Other strings stay in doc only.
func isText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// merge returns d with the fields of f, both in canonical order, f's
// values replacing d's.
func merge(d, f taskdb.Doc) taskdb.Doc {
	out := make(taskdb.Doc, 0, len(d)+len(f))
	i, j := 0, 0
	for i < len(d) || j < len(f) {
		switch {
		case j == len(f):
			out = append(out, d[i])
			i++
		case i == len(d):
			out = append(out, f[j])
			j++
		default:
			c := codec.CompareKeys(d[i].Key, f[j].Key)
			if c <= 0 {
				if c < 0 {
					out = append(out, d[i])
				}
				i++
			}
			if c >= 0 {
				out = append(out, f[j])
				j++
			}
		}
	}
	return out
}
