package taskdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taskhub/taskhub/taskdb/query"
)

// Record is a task record, or a set of fields to merge into one. It is a
// document: string keys, values from the value model described in the
// package documentation.
type Record map[string]any

// DB stores task records keyed by msg_id. Implementations must be safe for
// concurrent use by any number of goroutines.
//
// Records are written as Records and read as Docs. Every Doc a DB returns
// is a deep copy holding only canonical types (nested documents as Docs);
// records passed in are copied, so callers may reuse them after the call.
type DB interface {
	// AddRecord stores a copy of rec under msgID, filling every missing
	// schema key with its default. It returns ErrExists if msgID is taken
	// and ErrInvalidRecord if a value is outside the value model, a
	// timestamp key holds anything but null or a time, or rec's msg_id
	// differs from msgID.
	AddRecord(ctx context.Context, msgID string, rec Record) error

	// GetRecord returns a deep copy of the record. It returns ErrNotFound,
	// or ErrCulled (which wraps ErrNotFound) if the record was removed by
	// the size or count limits, or ErrNoData if the backend stores nothing.
	GetRecord(ctx context.Context, msgID string) (Doc, error)

	// UpdateRecord merges fields into the record, replacing top-level keys.
	// It returns ErrNotFound, ErrCulled, or ErrInvalidRecord (as for
	// AddRecord; msg_id cannot be changed).
	UpdateRecord(ctx context.Context, msgID string, fields Record) error

	// DropRecord removes the record. It returns ErrNotFound (or ErrCulled)
	// if there is no such record; callers that only want the record gone
	// may ignore that error.
	DropRecord(ctx context.Context, msgID string) error

	// DropMatchingRecords removes every record q matches.
	DropMatchingRecords(ctx context.Context, q *query.Filter) error

	// FindRecords returns deep copies of the records q matches, in
	// insertion order. With keys empty, records are complete; otherwise
	// each holds msg_id plus exactly the keys listed (a schema key always,
	// null when unset; an extra key only on records that carry it), in the
	// order a complete record has them (see Doc). A key
	// that is neither a schema key nor carried by any stored record gives
	// ErrInvalidQuery. A backend that stores nothing returns ErrNoData.
	FindRecords(ctx context.Context, q *query.Filter, keys []string) ([]Doc, error)

	// History returns the msg_ids of records with a submitted time,
	// ordered by it, ties in insertion order. ErrNoData if the backend
	// stores nothing.
	History(ctx context.Context) ([]string, error)

	// Close releases the backend's resources. Calls after Close fail.
	Close() error
}

// Errors returned by every backend, wrapped with context. Test them with
// errors.Is.
var (
	ErrNotFound = errors.New("taskdb: record not found")
	ErrExists   = errors.New("taskdb: record already exists")
	// ErrCulled wraps ErrNotFound.
	ErrCulled = fmt.Errorf("%w: culled by the record count or buffer size limits", ErrNotFound)
	// ErrNoData is returned by the reads of a backend that stores nothing.
	ErrNoData = errors.New("taskdb: the nodb backend stores no task records; set db.backend: dict to keep them")
	// ErrInvalidRecord reports a record value outside the value model.
	ErrInvalidRecord = errors.New("taskdb: invalid record")
	// ErrInvalidQuery is query.ErrInvalid: every query parse or projection
	// error wraps it.
	ErrInvalidQuery = query.ErrInvalid
	// ErrClosed is returned by calls on a closed DB.
	ErrClosed = errors.New("taskdb: database closed")
	// ErrUnavailable is returned by a remote backend that cannot reach its
	// database: by reads, and by writes once its bounded write queue is
	// full. It is wrapped with the cause.
	ErrUnavailable = errors.New("taskdb: database unavailable")
)

// UnknownKeyError is the ErrInvalidQuery of a projection on key, a key
// that is neither a schema key nor carried by any stored record.
func UnknownKeyError(key string) error {
	return &query.SyntaxError{Field: key, Msg: "is neither a schema key nor a key any stored record carries"}
}

// CheckKeys returns the UnknownKeyError of the first of a projection's
// keys that is neither a schema key, nor in found (the keys the results
// held), nor carried by a stored record, which carries tells; or
// carries' error. Backends call it after reading the results.
func CheckKeys(keys []string, found map[string]bool, carries func(key string) (bool, error)) error {
	for _, k := range keys {
		if IsSchemaKey(k) || found[k] {
			continue
		}
		carried, err := carries(k)
		if err != nil {
			return err
		}
		if !carried {
			return UnknownKeyError(k)
		}
	}
	return nil
}

// Schema keys: the 22 keys of ipyparallel's init_record, present on every
// stored record.
const (
	KeyMsgID          = "msg_id"
	KeyHeader         = "header"
	KeyMetadata       = "metadata"
	KeyContent        = "content"
	KeyBuffers        = "buffers"
	KeySubmitted      = "submitted"
	KeyClientUUID     = "client_uuid"
	KeyEngineUUID     = "engine_uuid"
	KeyStarted        = "started"
	KeyCompleted      = "completed"
	KeyResubmitted    = "resubmitted"
	KeyReceived       = "received"
	KeyResultHeader   = "result_header"
	KeyResultMetadata = "result_metadata"
	KeyResultContent  = "result_content"
	KeyResultBuffers  = "result_buffers"
	KeyQueue          = "queue"
	KeyExecuteInput   = "execute_input"
	KeyExecuteResult  = "execute_result"
	KeyError          = "error"
	KeyStdout         = "stdout"
	KeyStderr         = "stderr"
)

// SchemaKeys lists the schema keys in ipyparallel's order. Do not modify.
var SchemaKeys = [...]string{
	KeyMsgID, KeyHeader, KeyMetadata, KeyContent, KeyBuffers,
	KeySubmitted, KeyClientUUID, KeyEngineUUID, KeyStarted, KeyCompleted,
	KeyResubmitted, KeyReceived, KeyResultHeader, KeyResultMetadata,
	KeyResultContent, KeyResultBuffers, KeyQueue, KeyExecuteInput,
	KeyExecuteResult, KeyError, KeyStdout, KeyStderr,
}

// TimeKeys lists the schema keys whose value must be null or a time.
var TimeKeys = [...]string{KeySubmitted, KeyStarted, KeyCompleted, KeyReceived}

// IsSchemaKey reports whether key is one of SchemaKeys.
func IsSchemaKey(key string) bool {
	for _, k := range SchemaKeys {
		if k == key {
			return true
		}
	}
	return false
}

// IsTimeKey reports whether key is one of TimeKeys.
func IsTimeKey(key string) bool {
	switch key {
	case KeySubmitted, KeyStarted, KeyCompleted, KeyReceived:
		return true
	}
	return false
}

// Default returns the value a schema key has when unset: "" for stdout and
// stderr, nil otherwise.
func Default(key string) any {
	if key == KeyStdout || key == KeyStderr {
		return ""
	}
	return nil
}

// EmptyRecord returns a record holding every schema key at its default,
// with msg_id set.
func EmptyRecord(msgID string) Record {
	r := make(Record, len(SchemaKeys))
	for _, k := range SchemaKeys {
		r[k] = Default(k)
	}
	r[KeyMsgID] = msgID
	return r
}

// Normalize returns a deep copy of v in the canonical value model,
// converting the Go inputs the hub passes (sized ints, uints, float32,
// []string, [][]byte, map[string]string, Record, Doc, non-UTC times). A value
// that cannot be converted gives an error wrapping ErrInvalidRecord.
func Normalize(key string, v any) (any, error) {
	c, err := query.Normalize(toMap(v))
	if err != nil {
		return nil, fmt.Errorf("%w: key %q: %v", ErrInvalidRecord, key, err)
	}
	if IsTimeKey(key) {
		if _, ok := c.(time.Time); !ok && c != nil {
			return nil, fmt.Errorf("%w: key %q: want null or a time, got %T", ErrInvalidRecord, key, v)
		}
	}
	return c, nil
}
