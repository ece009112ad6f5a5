package mongodb

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// AddRecord stores rec under msgID. It returns ErrExists,
// ErrInvalidRecord, ErrClosed or ctx's error.
func (db *DB) AddRecord(ctx context.Context, msgID string, rec taskdb.Record) error {
	if err := db.check(ctx); err != nil {
		return err
	}
	doc, err := newDocument(msgID, rec, db.nextSeq())
	if err != nil {
		return fmt.Errorf("mongodb: add %s: %w", msgID, err)
	}
	if _, err := db.coll.InsertOne(ctx, doc); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("mongodb: add %s: %w", msgID, taskdb.ErrExists)
		}
		return fmt.Errorf("mongodb: add %s: %w", msgID, db.opErr(ctx, err))
	}
	return nil
}

// UpdateRecord sets the top-level keys of fields in the record. It
// returns ErrNotFound, ErrInvalidRecord, ErrClosed or ctx's error.
func (db *DB) UpdateRecord(ctx context.Context, msgID string, fields taskdb.Record) error {
	if err := db.check(ctx); err != nil {
		return err
	}
	set, err := setFields(msgID, fields)
	if err != nil {
		return fmt.Errorf("mongodb: update %s: %w", msgID, err)
	}
	filter := bson.D{{Key: fieldID, Value: msgID}}
	var matched int64
	if len(set) == 0 {
		matched, err = db.coll.CountDocuments(ctx, filter, options.Count().SetLimit(1))
	} else {
		var res *mongo.UpdateResult
		res, err = db.coll.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: set}})
		if res != nil {
			matched = res.MatchedCount
		}
	}
	if err != nil {
		return fmt.Errorf("mongodb: update %s: %w", msgID, db.opErr(ctx, err))
	}
	if matched == 0 {
		return fmt.Errorf("mongodb: update %s: %w", msgID, taskdb.ErrNotFound)
	}
	return nil
}

// DropRecord removes the record. It returns ErrNotFound, ErrClosed or
// ctx's error.
func (db *DB) DropRecord(ctx context.Context, msgID string) error {
	if err := db.check(ctx); err != nil {
		return err
	}
	res, err := db.coll.DeleteOne(ctx, bson.D{{Key: fieldID, Value: msgID}})
	if err != nil {
		return fmt.Errorf("mongodb: drop %s: %w", msgID, db.opErr(ctx, err))
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongodb: drop %s: %w", msgID, taskdb.ErrNotFound)
	}
	return nil
}

// dropChunk bounds the msg_ids of one delete command.
const dropChunk = 10_000

// DropMatchingRecords removes every record q matches. It returns
// ErrClosed or ctx's error.
func (db *DB) DropMatchingRecords(ctx context.Context, q *query.Filter) error {
	ds, err := db.find(ctx, q, []string{taskdb.KeyMsgID})
	if err != nil {
		return fmt.Errorf("mongodb: drop matching: %w", err)
	}
	for c := range slices.Chunk(ds, dropChunk) {
		ids := make(bson.A, len(c))
		for i, d := range c {
			ids[i] = d.Get(taskdb.KeyMsgID)
		}
		_, err := db.coll.DeleteMany(ctx, bson.D{{Key: fieldID, Value: bson.D{{Key: "$in", Value: ids}}}})
		if err != nil {
			return fmt.Errorf("mongodb: drop matching: %w", db.opErr(ctx, err))
		}
	}
	return nil
}

// newDocument returns the stored form of a new record: _id, _seq, every
// schema key (its default when rec lacks it) and rec's other keys sorted.
func newDocument(msgID string, rec taskdb.Record, seq int64) (bson.D, error) {
	d := make(bson.D, 0, 2+len(taskdb.SchemaKeys)+len(rec))
	d = append(d, bson.E{Key: fieldID, Value: msgID}, bson.E{Key: fieldSeq, Value: seq})
	for _, k := range taskdb.SchemaKeys[1:] {
		d = append(d, bson.E{Key: k, Value: taskdb.Default(k)})
	}
	extra := len(d)
	for k, v := range rec {
		v, err := taskdb.Normalize(k, v)
		if err != nil {
			return nil, err
		}
		if k == taskdb.KeyMsgID {
			if v != msgID {
				return nil, fmt.Errorf("%w: msg_id %v differs from the record's id", taskdb.ErrInvalidRecord, v)
			}
			continue
		}
		if r, ok := schemaRank[k]; ok {
			d[r+1].Value = encodeValue(v) // schema key r sits at r+1, after _seq
			continue
		}
		d = append(d, bson.E{Key: escapeKey(k), Value: encodeValue(v)})
	}
	slices.SortFunc(d[extra:], func(a, b bson.E) int { return strings.Compare(a.Key, b.Key) })
	return d, nil
}

// setFields returns the $set document of an update, without msg_id.
func setFields(msgID string, fields taskdb.Record) (bson.D, error) {
	set := make(bson.D, 0, len(fields))
	for k, v := range fields {
		v, err := taskdb.Normalize(k, v)
		if err != nil {
			return nil, err
		}
		if k == taskdb.KeyMsgID {
			if v != msgID {
				return nil, fmt.Errorf("%w: msg_id cannot change (got %v)", taskdb.ErrInvalidRecord, v)
			}
			continue
		}
		set = append(set, bson.E{Key: escapeKey(k), Value: encodeValue(v)})
	}
	return set, nil
}
