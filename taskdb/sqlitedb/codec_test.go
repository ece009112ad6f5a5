package sqlitedb

import (
	"bytes"
	"database/sql/driver"
	"errors"
	"maps"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/query"
)

func codecValues() []any {
	w := dbtest.NewWorkload()
	r := w.Record(1)
	return []any{
		nil, true, false, int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64),
		1.5, math.Inf(-1), "", "héllo", []byte{}, []byte{0, 1, 2},
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999_999_000, time.UTC),
		time.Date(1969, 7, 20, 20, 17, 0, 123_000, time.UTC),
		[]any{}, []any{nil, int64(1), []any{"x"}}, map[string]any{},
		r["header"], r["buffers"], map[string]any(w.Result(1)),
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, v := range codecValues() {
		b, err := encodeValue(v)
		if err != nil {
			t.Fatalf("encode %#v: %v", v, err)
		}
		got, err := decodeValue(b)
		if err != nil {
			t.Fatalf("decode %#v: %v", v, err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("round trip of %#v = %#v", v, got)
		}
	}
	deep := any(int64(1))
	for range maxDepth + 1 {
		deep = []any{deep}
	}
	if _, err := encodeValue(deep); err == nil {
		t.Error("a value nested deeper than maxDepth encoded")
	}
	for _, bad := range [][]byte{{}, {0xc1}, {0x92, 0x01}, {0xdd, 0xff, 0xff, 0xff, 0xff}, {0x81, 0x01, 0x01}, {0x01, 0x02}} {
		if v, err := decodeValue(bad); err == nil {
			t.Errorf("decode % x = %#v, want an error", bad, v)
		}
	}
}

// TestEncodeNormalizes checks that a row encodes values outside the
// canonical model as their normalized form, and canonical ones as is.
func TestEncodeNormalizes(t *testing.T) {
	type name string
	at := time.Date(2024, 5, 6, 7, 8, 9, 123_456_789, time.FixedZone("x", 3600))
	for _, v := range append(codecValues(),
		int(3), int32(-4), []string{"a"}, map[string]string{"k": "v"}, name("n"), at,
		map[string]any{"n": int(1), "t": at, "l": []any{uint8(2)}}, [][]byte{{1}}) {
		norm, err := query.Normalize(v)
		if err != nil {
			t.Fatal(err)
		}
		want, err := encodeValue(norm)
		if err != nil {
			t.Fatalf("encode %#v: %v", norm, err)
		}
		var r row
		if err := r.put("k", v); err != nil {
			t.Fatalf("put %#v: %v", v, err)
		}
		if got := r.fields()[0].raw; !bytes.Equal(got, want) {
			t.Errorf("put %#v encodes % x, want % x", v, got, want)
		}
	}
	var r row
	if err := r.put("k", struct{}{}); !errors.Is(err, taskdb.ErrInvalidRecord) {
		t.Errorf("put of a struct: %v, want ErrInvalidRecord", err)
	}
}

// decodeDocValue decodes b as the read path does, with maps as Docs.
func decodeDocValue(b []byte) (any, error) { return decodeAll(docDecoder(b, &carver{})) }

// FuzzDecode checks that stored bytes never make the decoders (values,
// rows, merges) panic or over-allocate; that skip agrees with decodeValue on where a value ends;
// that the Doc decoder accepts only what decodeValue accepts; that
// whatever decodes re-encodes to an equal value, in both forms; and that a
// decoded map stored as a doc reads back and merges with itself unchanged.
func FuzzDecode(f *testing.F) {
	for _, v := range codecValues() {
		b, err := encodeValue(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// As a stored doc: decodeRow and mergeDoc may fail, never panic,
		// and a doc decodeRow reads splits into fields.
		if _, err := decodeRow([]int{colSeq, colDoc}, []driver.Value{int64(1), bytes.Clone(b)}, nil, &carver{}); err == nil {
			if _, err := docFields(b); err != nil {
				t.Fatalf("decodeRow reads % x, docFields fails: %v", b, err)
			}
		}
		mergeDoc(b, b) //nolint:errcheck // must not panic

		v, err := decodeValue(b)
		d := decoder{b: b}
		if serr := d.skip(0); err == nil && (serr != nil || d.i != len(b)) {
			t.Fatalf("skip: %v at %d of %d, but the value decodes", serr, d.i, len(b))
		}
		dv, derr := decodeDocValue(b)
		if derr == nil && err != nil {
			t.Fatalf("decodes as Docs (%v) but not as maps: %v", dv, err)
		}
		if err != nil {
			return
		}
		b2, err := encodeValue(v)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", v, err)
		}
		v2, err := decodeValue(b2)
		if err != nil || !sameValue(v, v2) {
			t.Fatalf("round trip: %v\n%#v\n%#v", err, v, v2)
		}
		dv2, err := decodeDocValue(b2)
		if err != nil || derr == nil && !sameValue(dv, dv2) {
			t.Fatalf("round trip as Docs: %v\n%#v\n%#v", err, dv, dv2)
		}
		m, ok := v.(map[string]any)
		if !ok {
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
		fs := r.fields()
		doc := appendDoc(nil, fs)
		if _, err := decodeRow([]int{colSeq, colDoc}, []driver.Value{int64(1), doc}, nil, &carver{}); err != nil {
			t.Fatalf("doc of %#v does not read back: %v", m, err)
		}
		merged, err := mergeDoc(doc, appendFields(nil, fs))
		if err != nil || !bytes.Equal(merged, doc) {
			t.Fatalf("merging a doc with itself: %v\n% x\n% x", err, merged, doc)
		}
	})
}

// sameValue is reflect.DeepEqual with NaN equal to itself.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case taskdb.Doc:
		y, ok := b.(taskdb.Doc)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i].Key != y[i].Key || !sameValue(x[i].Value, y[i].Value) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
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
	vals := []driver.Value{int64(1)}
	for _, v := range r.insertArgs(w.ID(1)) {
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
	doc := appendDoc(nil, rec.fields())
	patch := appendFields(nil, res.fields())
	for b.Loop() {
		if _, err := mergeDoc(doc, patch); err != nil {
			b.Fatal(err)
		}
	}
}
