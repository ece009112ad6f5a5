package mongodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/internal/batch"
	"github.com/taskhub/taskhub/taskdb/query"
)

// AddRecord queues rec for storing under msgID and returns once it is
// acknowledged (see package batch). It returns ErrExists,
// ErrInvalidRecord, ErrUnavailable (queue full during an outage),
// ErrClosed or ctx's error.
func (db *DB) AddRecord(ctx context.Context, msgID string, rec taskdb.Record) error {
	if err := db.check(ctx); err != nil {
		return err
	}
	r, err := stored(msgID, rec)
	if err != nil {
		return fmt.Errorf("mongodb: add %s: %w", msgID, err)
	}
	r[fieldSeq] = db.nextSeq()
	if err := db.q.Enqueue(ctx, batch.Op{Kind: batch.Add, ID: msgID, Record: r}); err != nil {
		return fmt.Errorf("mongodb: add: %w", err)
	}
	return nil
}

// UpdateRecord queues setting the top-level keys of fields in the record.
// It returns ErrNotFound, ErrInvalidRecord, ErrUnavailable, ErrClosed or
// ctx's error.
func (db *DB) UpdateRecord(ctx context.Context, msgID string, fields taskdb.Record) error {
	if err := db.check(ctx); err != nil {
		return err
	}
	r, err := stored(msgID, fields)
	if err != nil {
		return fmt.Errorf("mongodb: update %s: %w", msgID, err)
	}
	if err := db.q.Enqueue(ctx, batch.Op{Kind: batch.Update, ID: msgID, Record: r}); err != nil {
		return fmt.Errorf("mongodb: update: %w", err)
	}
	return nil
}

// DropRecord queues removing the record. It returns ErrNotFound,
// ErrUnavailable, ErrClosed or ctx's error.
func (db *DB) DropRecord(ctx context.Context, msgID string) error {
	if err := db.check(ctx); err != nil {
		return err
	}
	if err := db.q.Enqueue(ctx, batch.Op{Kind: batch.Drop, ID: msgID}); err != nil {
		return fmt.Errorf("mongodb: drop: %w", err)
	}
	return nil
}

// DropMatchingRecords queues removing every record q matches. It returns
// ErrUnavailable, ErrClosed or ctx's error.
func (db *DB) DropMatchingRecords(ctx context.Context, q *query.Filter) error {
	ds, err := db.find(ctx, q, []string{taskdb.KeyMsgID})
	if err != nil {
		return fmt.Errorf("mongodb: drop matching: %w", err)
	}
	for _, d := range ds {
		id := d.Get(taskdb.KeyMsgID).(string)
		// A record dropped meanwhile is gone, as asked.
		if err := db.q.Enqueue(ctx, batch.Op{Kind: batch.Drop, ID: id}); err != nil && !errors.Is(err, taskdb.ErrNotFound) {
			return fmt.Errorf("mongodb: drop matching: %w", err)
		}
	}
	return nil
}

// stored returns the form of rec that the write queue holds: normalized,
// top-level keys escaped, without msg_id (which must be msgID if
// present). AddRecord adds _seq.
func stored(msgID string, rec taskdb.Record) (taskdb.Record, error) {
	out := make(taskdb.Record, len(rec)+1)
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
		out[escapeKey(k)] = v
	}
	return out, nil
}

// apply writes a batch as one ordered bulk write: order matters, since a
// batch holds the add and the updates of a record, and the queue resumes
// after the last write applied. It implements batch.Apply.
func (db *DB) apply(ctx context.Context, ops []batch.Op) (int, error) {
	models := make([]mongo.WriteModel, 0, len(ops))
	opOf := make([]int, 0, len(ops)) // the op of each model
	for i, op := range ops {
		filter := bson.D{{Key: fieldID, Value: op.ID}}
		switch op.Kind {
		case batch.Add:
			models = append(models, mongo.NewInsertOneModel().SetDocument(newDocument(op.ID, op.Record)))
		case batch.Update:
			if len(op.Record) == 0 {
				continue // nothing to set; the queue checked the record exists
			}
			models = append(models, mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(bson.D{{Key: "$set", Value: setFields(op.Record)}}))
		case batch.Drop:
			models = append(models, mongo.NewDeleteOneModel().SetFilter(filter))
		}
		opOf = append(opOf, i)
	}
	if len(models) == 0 {
		return len(ops), nil
	}
	_, err := db.coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true))
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 {
		// Ordered: the models before the first failed one were applied.
		first := slices.MinFunc(bwe.WriteErrors, func(a, b mongo.BulkWriteError) int { return a.Index - b.Index })
		return opOf[first.Index], rejected{first}
	}
	return 0, err
}

// rejected is a write the server refused (a duplicate msg_id, a document
// too large): retrying it cannot help.
type rejected struct{ mongo.BulkWriteError }

func (r rejected) Error() string { return r.BulkWriteError.Error() }

// exists reports whether the collection holds msgID. It implements
// batch.Options.Exists.
func (db *DB) exists(ctx context.Context, msgID string) (bool, error) {
	return db.any(ctx, bson.D{{Key: fieldID, Value: msgID}})
}

// unavailable reports whether err means the server cannot be reached or
// cannot serve now (retry later), rather than that it refused the write.
func unavailable(err error) bool {
	var r rejected
	switch {
	case errors.As(err, &r), errors.Is(err, context.Canceled):
		return false
	case mongo.IsNetworkError(err), mongo.IsTimeout(err):
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		// Elections, shutdowns and the like; the driver labels them, but
		// only where retryable writes are on (not on a standalone).
		if se.HasErrorLabel("RetryableWriteError") || se.HasErrorLabel("TransientTransactionError") {
			return true
		}
		// The retryable writes spec's codes.
		for _, c := range []int{6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436} {
			if se.HasErrorCode(c) {
				return true
			}
		}
		return false
	}
	var wce mongo.WriteException
	return errors.As(err, &wce) && wce.WriteConcernError != nil
}

// newDocument returns the document of a new record in its stored form
// (see stored): _id, _seq, every schema key (its default when rec lacks
// it) and rec's other keys sorted.
func newDocument(msgID string, rec taskdb.Record) bson.D {
	d := make(bson.D, 0, 2+len(taskdb.SchemaKeys)+len(rec))
	d = append(d, bson.E{Key: fieldID, Value: msgID}, bson.E{Key: fieldSeq, Value: rec[fieldSeq]})
	for _, k := range taskdb.SchemaKeys[1:] {
		d = append(d, bson.E{Key: k, Value: taskdb.Default(k)})
	}
	extra := len(d)
	for k, v := range rec {
		if r, ok := schemaRank[k]; ok {
			d[r+1].Value = encodeValue(v) // schema key r sits at r+1, after _seq
			continue
		}
		if k != fieldSeq {
			d = append(d, bson.E{Key: k, Value: encodeValue(v)})
		}
	}
	slices.SortFunc(d[extra:], func(a, b bson.E) int { return strings.Compare(a.Key, b.Key) })
	return d
}

// setFields returns the $set document of an update in its stored form.
func setFields(fields taskdb.Record) bson.D {
	set := make(bson.D, 0, len(fields))
	for k, v := range fields {
		set = append(set, bson.E{Key: k, Value: encodeValue(v)})
	}
	return set
}
