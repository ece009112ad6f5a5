package sqlitedb

import (
	"bytes"
	"database/sql/driver"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/internal/codec"
	"github.com/taskhub/taskhub/taskdb/query"
)

// TestEncodeNormalizes checks that a row encodes values outside the
// canonical model as their normalized form, and canonical ones as is.
func TestEncodeNormalizes(t *testing.T) {
	type name string
	at := time.Date(2024, 5, 6, 7, 8, 9, 123_456_789, time.FixedZone("x", 3600))
	for _, v := range append([]any{nil, int64(1), "s", []byte{1}, time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC), map[string]any{"b": 1.5, "a": []any{}}},
		int(3), int32(-4), []string{"a"}, map[string]string{"k": "v"}, name("n"), at,
		map[string]any{"n": int(1), "t": at, "l": []any{uint8(2)}}, [][]byte{{1}}) {
		norm, err := query.Normalize(v)
		if err != nil {
			t.Fatal(err)
		}
		want, err := codec.Encode(norm)
		if err != nil {
			t.Fatalf("encode %#v: %v", norm, err)
		}
		var r row
		if err := r.put("k", v); err != nil {
			t.Fatalf("put %#v: %v", v, err)
		}
		if got := r.fields(nil, r.buf)[0].raw; !bytes.Equal(got, want) {
			t.Errorf("put %#v encodes % x, want % x", v, got, want)
		}
	}
	var r row
	if err := r.put("k", struct{}{}); !errors.Is(err, taskdb.ErrInvalidRecord) {
		t.Errorf("put of a struct: %v, want ErrInvalidRecord", err)
	}
}

// TestColumnArg checks the typed columns' values, shortcuts included:
// times become UTC microseconds whatever their offset, strings stay
// strings, other values are normalized and encoded, and values a column
// cannot hold are invalid.
func TestColumnArg(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123_456_789, time.FixedZone("x", 3600))
	three, _ := codec.Encode(int64(3))
	for _, c := range []struct {
		key  string
		v    any
		want any // nil with bad: an error
		bad  bool
	}{
		{"submitted", at, at.Truncate(time.Microsecond).UnixMicro(), false},
		{"submitted", nil, nil, false},
		{"submitted", "2024-05-06", nil, true},
		{"submitted", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), nil, true},
		{"completed", int64(5), nil, true},
		{"client_uuid", "\xff\xfe", "\xff\xfe", false},
		{"client_uuid", int(3), three, false},
		{"client_uuid", at, mustEncode(t, at.UTC().Truncate(time.Microsecond)), false},
		{"msg_id", "m", "m", false},
	} {
		var r row
		err := r.put(c.key, c.v)
		if c.bad {
			if !errors.Is(err, taskdb.ErrInvalidRecord) {
				t.Errorf("put(%s, %#v) = %v, want ErrInvalidRecord", c.key, c.v, err)
			}
			continue
		}
		if got := r.cols[columnIndex[c.key]]; err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("put(%s, %#v): %#v, %v; want %#v", c.key, c.v, got, err, c.want)
		}
	}
}

func mustEncode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := codec.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeRow checks that stored bytes never make the doc column's
// readers (decodeRow, docFields, mergeDoc) panic or over-allocate; that a
// doc decodeRow reads splits into fields; and that a decoded map stored
// as a doc reads back and merges with itself unchanged.
func FuzzDecodeRow(f *testing.F) {
	w := dbtest.NewWorkload()
	var patch []field
	for _, rec := range []taskdb.Record{w.Record(1), w.Result(1)} {
		var r row
		if err := r.putRecord(w.ID(1), rec); err != nil {
			f.Fatal(err)
		}
		f.Add(appendDoc(nil, r.fields(nil, r.buf)))
		patch = r.patch()
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := decodeRow([]int{colSeq, colDoc}, []driver.Value{int64(1), bytes.Clone(b)}, nil, &carver{}); err == nil {
			if _, err := docFields(nil, b); err != nil {
				t.Fatalf("decodeRow reads % x, docFields fails: %v", b, err)
			}
		}
		mergeDoc(nil, b, patch) //nolint:errcheck // must not panic

		v, err := codec.Decode(b)
		m, ok := v.(map[string]any)
		if err != nil || !ok {
			return
		}
		var r row
		for k, x := range m {
			if _, typed := columnIndex[k]; !typed {
				if err := r.put(k, x); err != nil {
					t.Fatalf("put %q: %v", k, err)
				}
			}
		}
		fs := r.fields(nil, r.buf)
		doc := appendDoc(nil, fs)
		if _, err := decodeRow([]int{colSeq, colDoc}, []driver.Value{int64(1), doc}, nil, &carver{}); err != nil {
			t.Fatalf("doc of %#v does not read back: %v", m, err)
		}
		merged, err := mergeDoc(nil, doc, fs)
		if err != nil || !bytes.Equal(merged, doc) {
			t.Fatalf("merging a doc with itself: %v\n% x\n% x", err, merged, doc)
		}
	})
}

// BenchmarkDecodeRow decodes the columns of a complete workload record,
// result included, into a Doc: the read path's cost per row after the
// driver.
func BenchmarkDecodeRow(b *testing.B) {
	w := dbtest.NewWorkload()
	rec := w.Record(1)
	maps.Copy(rec, w.Result(1))
	var r row
	if err := r.putRecord(w.ID(1), rec); err != nil {
		b.Fatal(err)
	}
	args := r.insertArgs(w.ID(1))
	args[0] = int64(1)
	var vals []driver.Value
	for _, v := range args {
		vals = append(vals, v)
	}
	b.SetBytes(int64(len(vals[len(vals)-1].([]byte))))
	c := &carver{}
	for b.Loop() {
		row := slices.Clone(vals)
		row[len(row)-1] = bytes.Clone(vals[len(vals)-1].([]byte)) // the driver's fresh copy
		if _, err := decodeRow(allColumns, row, nil, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkMergeDoc merges a workload result into a stored record's doc,
// as the writer's UPDATE does for each UpdateRecord.
func BenchmarkMergeDoc(b *testing.B) {
	w := dbtest.NewWorkload()
	var rec, res row
	if err := rec.putRecord(w.ID(1), w.Record(1)); err != nil {
		b.Fatal(err)
	}
	if err := res.putRecord(w.ID(1), w.Result(1)); err != nil {
		b.Fatal(err)
	}
	doc := appendDoc(nil, rec.fields(nil, rec.buf))
	patch := res.patch()
	var out []byte // reused, as the writer does
	for b.Loop() {
		var err error
		if out, err = mergeDoc(out[:0], doc, patch); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMergeAcrossDBs updates records of several DBs at once: their
// writers lend their patches to the one process-wide merge function,
// and each must merge its own.
func TestMergeAcrossDBs(t *testing.T) {
	const dbs, n = 3, 200
	w := dbtest.NewWorkload()
	var wg sync.WaitGroup
	for d := range dbs {
		db := open(t, Options{FlushInterval: time.Millisecond})
		load(t, db, n)
		wg.Go(func() {
			for i := range n {
				u := taskdb.Record{"result_content": map[string]any{"db": int64(d), "i": int64(i)}, "stdout": fmt.Sprint(d)}
				if err := db.UpdateRecord(t.Context(), w.ID(i), u); err != nil {
					t.Error(err)
					return
				}
			}
			if err := db.sync(t.Context()); err != nil {
				t.Error(err)
				return
			}
			for i := range n {
				r, err := db.GetRecord(t.Context(), w.ID(i))
				if err != nil {
					t.Error(err)
					return
				}
				want := taskdb.Doc{{Key: "db", Value: int64(d)}, {Key: "i", Value: int64(i)}}
				if got := r.Get("result_content"); !reflect.DeepEqual(got, want) || r.Get("stdout") != fmt.Sprint(d) || r.Get("header") == nil {
					t.Errorf("db %d record %d: result_content %v, stdout %v", d, i, got, r.Get("stdout"))
					return
				}
			}
		})
	}
	wg.Wait()
}
