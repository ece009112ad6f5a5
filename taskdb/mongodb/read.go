package mongodb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// GetRecord returns the record. It returns ErrNotFound, ErrUnavailable,
// ErrClosed or ctx's error.
func (db *DB) GetRecord(ctx context.Context, msgID string) (taskdb.Doc, error) {
	if err := db.sync(ctx); err != nil {
		return nil, fmt.Errorf("mongodb: get %s: %w", msgID, err)
	}
	raw, err := db.coll.FindOne(ctx, bson.D{{Key: fieldID, Value: msgID}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("mongodb: get %s: %w", msgID, taskdb.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: get %s: %w", msgID, db.readErr(ctx, err))
	}
	d, _, err := decodeRecord(raw)
	if err != nil {
		return nil, fmt.Errorf("mongodb: get %s: %w", msgID, err)
	}
	return d, nil
}

// FindRecords returns the records q matches in insertion order, limited
// to keys when keys is not empty. It returns ErrInvalidQuery for a key
// that is neither a schema key nor carried by any record, ErrUnavailable,
// ErrClosed or ctx's error.
func (db *DB) FindRecords(ctx context.Context, q *query.Filter, keys []string) ([]taskdb.Doc, error) {
	ds, err := db.find(ctx, q, keys)
	if err != nil {
		return nil, fmt.Errorf("mongodb: find: %w", err)
	}
	return ds, nil
}

// find returns the records q matches, in insertion order, each holding
// msg_id and keys (all keys if keys is empty).
func (db *DB) find(ctx context.Context, q *query.Filter, keys []string) ([]taskdb.Doc, error) {
	if err := db.sync(ctx); err != nil {
		return nil, err
	}
	if q == nil {
		q = everything
	}
	opts := options.Find()
	if len(keys) > 0 {
		opts.SetProjection(projection(q, keys))
	}
	found := make(map[string]bool)
	var out []taskdb.Doc
	var seqs []int64
	err := db.scan(ctx, serverFilter(q), opts, func(raw bson.Raw) error {
		d, seq, err := decodeRecord(raw)
		if err != nil {
			return err
		}
		if !q.MatchDoc(d) {
			return nil
		}
		if len(keys) > 0 {
			d = project(d, keys, found)
		}
		out, seqs = append(out, d), append(seqs, seq)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortBySeq(out, seqs)
	if err := taskdb.CheckKeys(keys, found, func(k string) (bool, error) { return db.carries(ctx, k) }); err != nil {
		return nil, err
	}
	return out, nil
}

// sync is the read barrier: it returns once the writes acknowledged
// before it are applied, so every read sees them. During an outage it
// fails at once with ErrUnavailable.
func (db *DB) sync(ctx context.Context) error {
	if err := db.check(ctx); err != nil {
		return err
	}
	return db.q.Sync(ctx)
}

// everything is the filter a nil *query.Filter stands for.
var everything = query.MustParse(`{}`)

// scan runs a find and calls fn with each document the server returns.
func (db *DB) scan(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder, fn func(bson.Raw) error) error {
	cur, err := db.coll.Find(ctx, filter, opts)
	if err != nil {
		return db.readErr(ctx, err)
	}
	defer cur.Close(context.Background())
	for cur.Next(ctx) {
		if err := fn(cur.Current); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return db.readErr(ctx, err)
	}
	return nil
}

// project returns msg_id and keys of d: a schema key always (its default
// if d lacks it), another key where d has it, which it marks in found.
func project(d taskdb.Doc, keys []string, found map[string]bool) taskdb.Doc {
	out := make(taskdb.Doc, 0, len(keys)+1)
	out = append(out, taskdb.Field{Key: taskdb.KeyMsgID, Value: d.Get(taskdb.KeyMsgID)})
	for _, f := range d {
		if f.Key != taskdb.KeyMsgID && slices.Contains(keys, f.Key) {
			out = append(out, f)
			found[f.Key] = true
		}
	}
	for _, k := range keys {
		if taskdb.IsSchemaKey(k) && k != taskdb.KeyMsgID {
			if _, ok := out.Lookup(k); !ok {
				out = append(out, taskdb.Field{Key: k, Value: taskdb.Default(k)})
			}
		}
	}
	if !slices.IsSortedFunc(out, compareFields) {
		slices.SortFunc(out, compareFields)
	}
	return out
}

// sortBySeq sorts ds by their parallel insertion sequences.
func sortBySeq(ds []taskdb.Doc, seqs []int64) {
	if slices.IsSorted(seqs) {
		return
	}
	idx := make([]int, len(ds))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(seqs[a], seqs[b]) })
	sorted := make([]taskdb.Doc, len(ds))
	for i, j := range idx {
		sorted[i] = ds[j]
	}
	copy(ds, sorted)
}

// carries reports whether some record has the key k, null or not.
func (db *DB) carries(ctx context.Context, k string) (bool, error) {
	ok, err := db.any(ctx, bson.D{{Key: escapeKey(k), Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil {
		return false, db.readErr(ctx, err)
	}
	return ok, nil
}

// any reports whether some document matches filter.
func (db *DB) any(ctx context.Context, filter bson.D) (bool, error) {
	err := db.coll.FindOne(ctx, filter, options.FindOne().SetProjection(bson.D{{Key: fieldID, Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}

// History returns the msg_ids of records with a submitted time, ordered by
// it, ties in insertion order. It returns ErrUnavailable, ErrClosed or
// ctx's error.
func (db *DB) History(ctx context.Context) ([]string, error) {
	if err := db.sync(ctx); err != nil {
		return nil, fmt.Errorf("mongodb: history: %w", err)
	}
	type entry struct {
		id       string
		sub, seq int64
	}
	var es []entry
	filter := bson.D{{Key: taskdb.KeySubmitted, Value: bson.D{{Key: "$type", Value: "date"}}}}
	opts := options.Find().SetProjection(bson.D{{Key: fieldID, Value: 1}, {Key: taskdb.KeySubmitted, Value: 1}, {Key: fieldSeq, Value: 1}})
	err := db.scan(ctx, filter, opts, func(raw bson.Raw) error {
		id, ok1 := raw.Lookup(fieldID).StringValueOK()
		sub, ok2 := raw.Lookup(taskdb.KeySubmitted).DateTimeOK()
		seq, ok3 := raw.Lookup(fieldSeq).AsInt64OK()
		if !ok1 || !ok2 || !ok3 {
			return fmt.Errorf("record %s lacks _id, submitted or _seq", raw.Lookup(fieldID))
		}
		es = append(es, entry{id, sub, seq})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mongodb: history: %w", err)
	}
	slices.SortFunc(es, func(a, b entry) int { return cmp.Or(cmp.Compare(a.sub, b.sub), cmp.Compare(a.seq, b.seq)) })
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.id
	}
	return ids, nil
}
