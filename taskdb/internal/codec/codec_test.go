package codec

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
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
		b, err := Encode(v)
		if err != nil {
			t.Fatalf("encode %#v: %v", v, err)
		}
		got, err := Decode(b)
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
	if _, err := Encode(deep); err == nil {
		t.Error("a value nested deeper than maxDepth encoded")
	}
	for _, bad := range [][]byte{{}, {0xc1}, {0x92, 0x01}, {0xdd, 0xff, 0xff, 0xff, 0xff}, {0x81, 0x01, 0x01}, {0x01, 0x02}} {
		if v, err := Decode(bad); err == nil {
			t.Errorf("decode % x = %#v, want an error", bad, v)
		}
	}
}

// A Doc in canonical order comes back from DecodeDoc as it went in.
func TestDecodeDoc(t *testing.T) {
	w := dbtest.NewWorkload()
	for _, r := range []taskdb.Record{w.Record(1), w.Result(1), {"msg_id": "x", "extra": map[string]any{"b": int64(1), "a": []any{map[string]any{"z": 1.5, "y": nil}}}}} {
		d := taskdb.DocOf(r)
		b, err := Encode(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeDoc(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Errorf("DecodeDoc(Encode(%v)) = %v", d, got)
		}
		if m, err := Decode(b); err != nil || !reflect.DeepEqual(taskdb.Record(m.(map[string]any)), d.Record()) {
			t.Errorf("Decode of a stored Doc = %v, %v; want the map %v", m, err, d.Record())
		}
	}
	if _, err := DecodeDoc([]byte{0x01}); err == nil {
		t.Error("DecodeDoc of an integer succeeded")
	}
}

// FuzzDecode checks that stored bytes never make Decode panic or
// over-allocate, and that whatever decodes re-encodes to an equal value.
func FuzzDecode(f *testing.F) {
	for _, v := range codecValues() {
		b, err := Encode(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := DecodeDoc(b); err == nil {
			if _, err := Encode(d); err != nil {
				t.Fatalf("decoded %#v does not encode: %v", d, err)
			}
		}
		v, err := Decode(b)
		if err != nil {
			return
		}
		b2, err := Encode(v)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", v, err)
		}
		v2, err := Decode(b2)
		if err != nil || !sameValue(v, v2) {
			t.Fatalf("round trip: %v\n%#v\n%#v", err, v, v2)
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

// BenchmarkDecode decodes a stored result document.
func BenchmarkDecode(b *testing.B) {
	v := map[string]any(dbtest.NewWorkload().Result(1))
	raw, err := Encode(v)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
}
