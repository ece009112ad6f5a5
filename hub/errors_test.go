package hub

import (
	"errors"
	"fmt"
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
	"github.com/taskhub/taskhub/wire"
)

func TestToWire(t *testing.T) {
	for _, c := range []struct {
		err  error
		name string
	}{
		{&wire.Error{Name: "Custom"}, "Custom"},
		{fmt.Errorf("x: %w", taskdb.ErrNoData), "NoData"},
		{fmt.Errorf("x: %w", taskdb.ErrCulled), "KeyError"},
		{fmt.Errorf("find: %w", query.ErrInvalid), "InvalidQuery"},
		{fmt.Errorf("postgres: add a: %w: write queue full", taskdb.ErrUnavailable), "DBUnavailable"},
		{errors.New("boom"), "InternalError"},
	} {
		if got := toWire(c.err); got.Name != c.name {
			t.Errorf("toWire(%v).Name = %q, want %q", c.err, got.Name, c.name)
		}
	}
	if we := toWire(fmt.Errorf("%w: connection refused", taskdb.ErrUnavailable)); we.Value != "taskdb: database unavailable: connection refused" {
		t.Errorf("DBUnavailable value %q does not say why", we.Value)
	}
}
