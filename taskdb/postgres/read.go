package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/internal/chunk"
	"github.com/taskhub/taskhub/taskdb/internal/codec"
	"github.com/taskhub/taskhub/taskdb/query"
)

// GetRecord returns a copy of the record. It returns ErrNotFound,
// ErrUnavailable, ErrClosed or ctx's error.
func (db *DB) GetRecord(ctx context.Context, msgID string) (taskdb.Doc, error) {
	where, args := "msg_id = $1", []any{msgID}
	if !isText(msgID) { // never stored
		where, args = "false", nil
	}
	ds, err := db.find(ctx, nil, nil, where, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: get %s: %w", msgID, err)
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("postgres: get %s: %w", msgID, taskdb.ErrNotFound)
	}
	return ds[0], nil
}

// FindRecords returns copies of the records q matches, in insertion
// order, limited to keys when keys is not empty. It returns
// ErrInvalidQuery for a key that is neither a schema key nor carried by
// any record, ErrUnavailable, ErrClosed or ctx's error.
func (db *DB) FindRecords(ctx context.Context, q *query.Filter, keys []string) ([]taskdb.Doc, error) {
	where, args := whereSQL(q)
	ds, err := db.find(ctx, q, keys, where, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: find: %w", err)
	}
	return ds, nil
}

// History returns the msg_ids of records with a submitted time, ordered by
// it, ties in insertion order. It returns ErrUnavailable, ErrClosed or
// ctx's error.
func (db *DB) History(ctx context.Context) ([]string, error) {
	if err := db.sync(ctx); err != nil {
		return nil, fmt.Errorf("postgres: history: %w", err)
	}
	var ids []string
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Where autovacuum has not yet marked the newest rows all-visible,
		// the default random_page_cost (4, for disks that seek) makes the
		// planner read and sort the whole table rather than walk the
		// covering index and check those rows' pages, which are cached:
		// 62-85 ms against 42-59 ms for 100k records.
		if _, err := tx.Exec(ctx, "SET LOCAL random_page_cost = 1.1"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT msg_id FROM "+db.table+" WHERE submitted IS NOT NULL ORDER BY submitted, seq")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			ids = append(ids, string(rows.RawValues()[0]))
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: history: %w", readErr(err))
	}
	return ids, nil
}

// sync checks the DB and waits for the writes queued before the read.
func (db *DB) sync(ctx context.Context) error {
	if err := db.check(ctx); err != nil {
		return err
	}
	return db.q.Sync(ctx)
}

// idOnly is the projection that DropMatchingRecords reads.
var idOnly = []string{taskdb.KeyMsgID}

// find returns, in insertion order, the records of the rows where holds
// that q matches (all if q is nil), projected on keys.
func (db *DB) find(ctx context.Context, q *query.Filter, keys []string, where string, args ...any) ([]taskdb.Doc, error) {
	if err := db.sync(ctx); err != nil {
		return nil, err
	}
	if where == "" {
		where = "true"
	}
	rows, err := db.pool.Query(ctx, "SELECT doc FROM "+db.table+" WHERE "+where+" ORDER BY seq", args...)
	if err != nil {
		return nil, readErr(err)
	}
	out, found, err := collect(rows, q, keys)
	if err != nil {
		return nil, readErr(err)
	}
	carries := func(k string) (carried bool, err error) {
		if err := db.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+db.table+" WHERE extra_keys ? $1)", k).Scan(&carried); err != nil {
			return false, readErr(err)
		}
		return carried, nil
	}
	if err := taskdb.CheckKeys(keys, found, carries); err != nil {
		return nil, err
	}
	return out, nil
}

// collect decodes the rows' docs straight into Docs (they are stored in
// canonical order) and returns those q matches, projected on keys, with
// the keys found.
func collect(rows pgx.Rows, q *query.Filter, keys []string) ([]taskdb.Doc, map[string]bool, error) {
	defer rows.Close()
	var out []taskdb.Doc
	found := make(map[string]bool)
	var a chunk.Alloc
	read := 0
	for rows.Next() {
		d, err := codec.DecodeDoc(rows.RawValues()[0], &a)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errCorrupt, err)
		}
		if read++; read == 1 {
			a.Plan(1, 1) // more rows may follow: share chunks from now on
		}
		if q.MatchDoc(d) {
			out = append(out, project(d, keys, found))
		}
	}
	return out, found, rows.Err()
}

// project returns msg_id and keys of d, in d's order (d itself if keys
// is empty), noting in found the keys it holds.
func project(d taskdb.Doc, keys []string, found map[string]bool) taskdb.Doc {
	if len(keys) == 0 {
		return d
	}
	out := make(taskdb.Doc, 0, len(keys)+1)
	for _, f := range d {
		if f.Key == taskdb.KeyMsgID || slices.Contains(keys, f.Key) {
			out = append(out, f)
			found[f.Key] = true
		}
	}
	return out
}

// whereSQL translates the conditions of q that a column decides into a
// condition that holds for every row q may match, with bound parameters.
// The matcher then decides each row: SQL only narrows.
func whereSQL(q *query.Filter) (string, []any) {
	var terms []string
	var args []any
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	for _, h := range q.Hints() {
		if t := hintSQL(h, param); t != "" {
			terms = append(terms, t)
		}
	}
	return strings.Join(terms, " AND "), args
}

// hintSQL returns a condition on h's column that every row satisfying h
// satisfies, or "" when no column decides h.
func hintSQL(h query.Hint, param func(any) string) string {
	c := h.Path
	switch {
	case c == taskdb.KeyMsgID:
		// Always a string.
		return textSQL(c, h, param)
	case taskdb.IsTimeKey(c):
		// Null or a time: values of other types never match.
		if h.Eq {
			var ts []time.Time
			null := false
			for _, v := range h.Values {
				switch v := v.(type) {
				case nil:
					null = true
				case time.Time:
					ts = append(ts, v)
				}
			}
			var or []string
			if len(ts) > 0 {
				or = append(or, c+" = ANY("+param(ts)+")")
			}
			if null {
				or = append(or, c+" IS NULL")
			}
			if len(or) == 0 {
				return "false"
			}
			return "(" + strings.Join(or, " OR ") + ")"
		}
		return rangeSQL[time.Time](c, h, param)
	case isTextKey(c):
		// A string, null, or anything else with other set.
		if t := textSQL(c, h, param); t != "" {
			return "(" + t + " OR other)"
		}
	}
	return ""
}

// textSQL is hintSQL for a text column holding the key's string values.
func textSQL(c string, h query.Hint, param func(any) string) string {
	if !h.Eq {
		return rangeSQL[string](c, h, param)
	}
	var strs []string
	null := false
	for _, v := range h.Values {
		switch v := v.(type) {
		case nil:
			null = true
		case string:
			if isText(v) { // others are stored as other (msg_id: never)
				strs = append(strs, v)
			}
		}
	}
	var or []string
	if len(strs) > 0 {
		or = append(or, c+" = ANY("+param(strs)+")")
	}
	if null {
		or = append(or, c+" IS NULL")
	}
	if len(or) == 0 {
		return "false"
	}
	return "(" + strings.Join(or, " OR ") + ")"
}

// rangeSQL bounds column c when h's bounds are of type T; inclusive, as
// the matcher decides the bounds themselves.
func rangeSQL[T any](c string, h query.Hint, param func(any) string) string {
	var and []string
	for _, b := range []struct {
		v  any
		op string
	}{{h.Lower, " >= "}, {h.Upper, " <= "}} {
		if b.v == nil {
			continue
		}
		if _, ok := b.v.(T); !ok {
			return ""
		}
		if s, ok := b.v.(string); ok && !isText(s) {
			return ""
		}
		and = append(and, c+b.op+param(b.v))
	}
	return strings.Join(and, " AND ")
}

func isTextKey(k string) bool {
	for _, t := range textKeys {
		if t == k {
			return true
		}
	}
	return false
}
