package dbtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// TimePrecision is implemented by backends that store times more coarsely
// than the value model's microsecond (MongoDB keeps milliseconds). The
// suite truncates the times it expects back to that precision.
type TimePrecision interface {
	TimePrecision() time.Duration
}

// Run runs the conformance suite against a backend. open must return an
// empty DB whose limits do not cull the suite's records (it stores at most
// 1,000 records and 1 MB of buffers). Each subtest opens its own DB and
// closes it when done.
func Run(t *testing.T, open func(t *testing.T) taskdb.DB) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, taskdb.DB)
	}{
		{"AddGet", testAddGet},
		{"AddDefaults", testAddDefaults},
		{"AddDuplicate", testAddDuplicate},
		{"AddInvalid", testAddInvalid},
		{"Normalize", testNormalize},
		{"GetMissing", testGetMissing},
		{"Update", testUpdate},
		{"UpdateInvalid", testUpdateInvalid},
		{"UpdateMissing", testUpdateMissing},
		{"Drop", testDrop},
		{"DropMatching", testDropMatching},
		{"Isolation", testIsolation},
		{"EmptyValues", testEmptyValues},
		{"History", testHistory},
		{"Find", testFind},
		{"FindAfterUpdate", testFindAfterUpdate},
		{"FindManyIDs", testFindManyIDs},
		{"Projection", testProjection},
		{"ReferenceDefects", testReferenceDefects},
		{"Independent", func(t *testing.T, db taskdb.DB) { testIndependent(t, db, open(t)) }},
		{"Canceled", testCanceled},
		{"Concurrent", testConcurrent},
		{"Closed", testClosed},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := open(t)
			t.Cleanup(func() { db.Close() })
			c.fn(t, db)
		})
	}
}

// RunBlackHole checks a backend that stores nothing, like nodb: writes
// and drops succeed, reads fail with ErrNoData.
func RunBlackHole(t *testing.T, open func(t *testing.T) taskdb.DB) {
	ctx := t.Context()
	db := open(t)
	t.Cleanup(func() { db.Close() })
	rec := taskdb.Record{"submitted": t0}
	for i, err := range []error{
		db.AddRecord(ctx, "a", rec),
		db.AddRecord(ctx, "a", rec),
		db.UpdateRecord(ctx, "a", taskdb.Record{"stdout": "x"}),
		db.UpdateRecord(ctx, "missing", taskdb.Record{"stdout": "x"}),
		db.DropRecord(ctx, "a"),
		db.DropMatchingRecords(ctx, query.MustParse(`{}`)),
	} {
		if err != nil {
			t.Errorf("write %d: %v, want nil", i, err)
		}
	}
	_, err := db.GetRecord(ctx, "a")
	checkNoData(t, "GetRecord", err)
	_, err = db.FindRecords(ctx, query.MustParse(`{}`), nil)
	checkNoData(t, "FindRecords", err)
	_, err = db.History(ctx)
	checkNoData(t, "History", err)
}

func checkNoData(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, taskdb.ErrNoData) {
		t.Errorf("%s: %v, want ErrNoData", what, err)
		return
	}
	if !strings.Contains(err.Error(), "db.backend: dict") {
		t.Errorf("%s: %q does not say how to enable storage (db.backend: dict)", what, err)
	}
}

// t0 is the base time of the fixtures: whole milliseconds, so backends
// with millisecond precision store it exactly.
var t0 = time.Date(2024, 1, 2, 3, 4, 5, 123_000_000, time.UTC)

func at(seconds int) time.Time { return t0.Add(time.Duration(seconds) * time.Second) }

// precision returns how coarsely db stores times.
func precision(db taskdb.DB) time.Duration {
	if p, ok := db.(TimePrecision); ok && p.TimePrecision() > time.Microsecond {
		return p.TimePrecision()
	}
	return time.Microsecond
}

func mustAdd(t testing.TB, db taskdb.DB, id string, rec taskdb.Record) {
	t.Helper()
	if err := db.AddRecord(context.Background(), id, rec); err != nil {
		t.Fatalf("AddRecord(%s): %v", id, err)
	}
}

func mustUpdate(t testing.TB, db taskdb.DB, id string, rec taskdb.Record) {
	t.Helper()
	if err := db.UpdateRecord(context.Background(), id, rec); err != nil {
		t.Fatalf("UpdateRecord(%s): %v", id, err)
	}
}

func mustGet(t testing.TB, db taskdb.DB, id string) taskdb.Record {
	t.Helper()
	d, err := db.GetRecord(context.Background(), id)
	if err != nil {
		t.Fatalf("GetRecord(%s): %v", id, err)
	}
	return record(t, d, true)
}

func mustFind(t testing.TB, db taskdb.DB, q string, keys ...string) []taskdb.Record {
	t.Helper()
	f, err := query.ParseJSON([]byte(q))
	if err != nil {
		t.Fatalf("ParseJSON(%s): %v", q, err)
	}
	ds, err := db.FindRecords(context.Background(), f, keys)
	if err != nil {
		t.Fatalf("FindRecords(%s, %q): %v", q, keys, err)
	}
	rs := make([]taskdb.Record, len(ds))
	for i, d := range ds {
		rs[i] = record(t, d, len(keys) == 0)
	}
	return rs
}

// record checks that d keeps the Doc contract and returns it as a Record:
// msg_id first, schema keys in SchemaKeys order (all of them when full),
// then extra keys sorted, no key twice, nested documents as Docs.
func record(t testing.TB, d taskdb.Doc, full bool) taskdb.Record {
	t.Helper()
	if len(d) == 0 || d[0].Key != taskdb.KeyMsgID {
		t.Fatalf("record %v does not start with msg_id", d)
	}
	next, schema := 0, 0 // next schema key allowed; schema keys seen
	for i, f := range d {
		if j := slices.Index(taskdb.SchemaKeys[:], f.Key); j >= 0 {
			if j < next || i > schema {
				t.Fatalf("record %v: schema key %q out of order", d, f.Key)
			}
			next, schema = j+1, schema+1
		} else if i > schema && f.Key <= d[i-1].Key {
			t.Fatalf("record %v: extra key %q not sorted or repeated", d, f.Key)
		}
		checkDocValue(t, d, f.Value)
	}
	if full && schema != len(taskdb.SchemaKeys) {
		t.Fatalf("record %v has %d schema keys, want all %d", d, schema, len(taskdb.SchemaKeys))
	}
	return d.Record()
}

// checkDocValue fails if v holds a map: nested documents in a Doc are
// Docs, without repeated keys.
func checkDocValue(t testing.TB, rec taskdb.Doc, v any) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any, taskdb.Record:
		t.Fatalf("record %v: nested document is a %T, want a taskdb.Doc", rec, v)
	case taskdb.Doc:
		for i, f := range x {
			if slices.ContainsFunc(x[:i], func(g taskdb.Field) bool { return g.Key == f.Key }) {
				t.Fatalf("record %v: nested key %q repeated", rec, f.Key)
			}
			checkDocValue(t, rec, f.Value)
		}
	case []any:
		for _, e := range x {
			checkDocValue(t, rec, e)
		}
	}
}

func ids(rs []taskdb.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i], _ = r["msg_id"].(string)
	}
	return out
}

func docIDs(ds []taskdb.Doc) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i], _ = d.Get(taskdb.KeyMsgID).(string)
	}
	return out
}

// same reports whether two values in the value model are equal, with
// times compared as instants. Unlike reflect.DeepEqual it also checks the
// types are canonical.
func same(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, int64, string:
		return a == b
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y) && x.Location() == time.UTC && y.Location() == time.UTC
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !same(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && sameMap(x, y)
	case taskdb.Record:
		y, ok := b.(taskdb.Record)
		return ok && sameMap(x, y)
	}
	return false
}

func sameMap(x, y map[string]any) bool {
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		w, ok := y[k]
		if !ok || !same(v, w) {
			return false
		}
	}
	return true
}

// diff describes how got differs from want, key by key.
func diff(got, want taskdb.Record) string {
	var b strings.Builder
	keys := make([]string, 0, len(got)+len(want))
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		g, gok := got[k]
		w, wok := want[k]
		if gok != wok || !same(g, w) {
			fmt.Fprintf(&b, "\n  %s: got %#v (present %v), want %#v (present %v)", k, g, gok, w, wok)
		}
	}
	return b.String()
}
