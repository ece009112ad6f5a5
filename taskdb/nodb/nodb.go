package nodb

import (
	"context"
	"fmt"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// DB stores nothing. The zero value is ready to use and safe for
// concurrent use.
type DB struct{}

var _ taskdb.DB = DB{}

// New returns a DB.
func New() DB { return DB{} }

// AddRecord discards rec.
func (DB) AddRecord(context.Context, string, taskdb.Record) error { return nil }

// GetRecord returns taskdb.ErrNoData.
func (DB) GetRecord(_ context.Context, msgID string) (taskdb.Doc, error) {
	return nil, fmt.Errorf("nodb: get %s: %w", msgID, taskdb.ErrNoData)
}

// UpdateRecord discards fields.
func (DB) UpdateRecord(context.Context, string, taskdb.Record) error { return nil }

// DropRecord does nothing.
func (DB) DropRecord(context.Context, string) error { return nil }

// DropMatchingRecords does nothing.
func (DB) DropMatchingRecords(context.Context, *query.Filter) error { return nil }

// FindRecords returns taskdb.ErrNoData.
func (DB) FindRecords(context.Context, *query.Filter, []string) ([]taskdb.Doc, error) {
	return nil, fmt.Errorf("nodb: find: %w", taskdb.ErrNoData)
}

// History returns taskdb.ErrNoData.
func (DB) History(context.Context) ([]string, error) {
	return nil, fmt.Errorf("nodb: history: %w", taskdb.ErrNoData)
}

// Close does nothing.
func (DB) Close() error { return nil }
