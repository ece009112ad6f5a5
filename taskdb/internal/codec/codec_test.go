package codec

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/internal/chunk"
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

// Append refuses what is outside the canonical model, so that callers
// normalize it, and writes sorted Docs as the maps they stand for.
func TestAppendCanonical(t *testing.T) {
	for _, v := range []any{
		int(1), float32(1), []string{"a"}, map[string]string{}, struct{}{},
		time.Date(2024, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		taskdb.Doc{{Key: "b"}, {Key: "a"}}, taskdb.Doc{{Key: "a"}, {Key: "a"}},
		[]any{map[string]any{"x": int(1)}},
	} {
		if b, err := Encode(v); !errors.Is(err, ErrNotCanonical) {
			t.Errorf("Encode(%#v) = % x, %v; want ErrNotCanonical", v, b, err)
		}
	}
	m := map[string]any{"b": int64(1), "a": []any{"x"}}
	want, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Encode(taskdb.Doc{{Key: "a", Value: []any{"x"}}, {Key: "b", Value: int64(1)}}); err != nil || !bytes.Equal(got, want) {
		t.Errorf("Encode of a Doc = % x, %v; want % x", got, err, want)
	}
}

// A record Doc comes back from DecodeDoc as it went in, and reads as
// the map it stands for with Decode.
func TestDecodeDoc(t *testing.T) {
	w := dbtest.NewWorkload()
	for _, r := range []taskdb.Record{w.Record(1), w.Result(1), {"msg_id": "x", "extra": map[string]any{"b": int64(1), "a": []any{map[string]any{"z": 1.5, "y": nil}}}}} {
		d := taskdb.DocOf(r)
		b, err := AppendDoc(nil, d)
		if err != nil {
			t.Fatal(err)
		}
		raw := bytes.Clone(b)
		got, err := DecodeDoc(raw, &chunk.Alloc{})
		if err != nil {
			t.Fatal(err)
		}
		clear(raw) // DecodeDoc's result must not share it
		if !reflect.DeepEqual(got, d) {
			t.Errorf("DecodeDoc(AppendDoc(%v)) = %v", d, got)
		}
		if m, err := Decode(b); err != nil || !reflect.DeepEqual(taskdb.Record(m.(map[string]any)), d.Record()) {
			t.Errorf("Decode of a stored Doc = %v, %v; want the map %v", m, err, d.Record())
		}
	}
	if _, err := AppendDoc(nil, taskdb.Doc{{Key: "stdout"}, {Key: "msg_id"}}); !errors.Is(err, ErrNotCanonical) {
		t.Errorf("AppendDoc of keys out of record order: %v, want ErrNotCanonical", err)
	}
	for _, bad := range []taskdb.Doc{
		{{Key: "stdout"}, {Key: "msg_id"}},
		{{Key: "b"}, {Key: "a"}},
		{{Key: "x", Value: taskdb.Doc{{Key: "a"}, {Key: "a"}}}},
	} {
		b := AppendMapLen(nil, len(bad)) // written without AppendDoc's checks
		for _, f := range bad {
			b = AppendString(b, f.Key)
			if v, ok := f.Value.(taskdb.Doc); ok {
				b = AppendMapLen(b, len(v))
				for _, g := range v {
					b = append(AppendString(b, g.Key), 0xc0)
				}
			} else {
				b = append(b, 0xc0)
			}
		}
		if d, err := DecodeDoc(b, &chunk.Alloc{}); err == nil {
			t.Errorf("DecodeDoc of %v out of order = %v", bad, d)
		}
	}
	// Empty values decoded first, from fresh chunks, are not null.
	b, err := AppendDoc(nil, taskdb.Doc{{Key: "a", Value: taskdb.Doc{}}, {Key: "b", Value: []any{}}, {Key: "c", Value: []byte{}}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeDoc(b, &chunk.Alloc{})
	if err != nil || d.Get("a").(taskdb.Doc) == nil || d.Get("b").([]any) == nil || d.Get("c").([]byte) == nil {
		t.Errorf("DecodeDoc of empty values = %#v, %v; want them empty, not null", d, err)
	}
	if _, err := DecodeDoc([]byte{0x01}, &chunk.Alloc{}); err == nil {
		t.Error("DecodeDoc of an integer succeeded")
	}
}

// decodeDocValue decodes b with maps as Docs.
func decodeDocValue(b []byte) (any, error) {
	d := DocDecoder(b, &chunk.Alloc{})
	v, err := d.Value()
	if err == nil {
		err = d.End()
	}
	return v, err
}

// FuzzDecode checks that stored bytes never make the decoders panic or
// over-allocate; that Skip agrees with Decode on where a value ends; that
// the Doc decoder accepts only what Decode accepts; that whatever decodes
// re-encodes to an equal value, in both forms; and that a record Doc
// DecodeDoc reads encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, v := range codecValues() {
		b, err := Encode(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := DecodeDoc(bytes.Clone(b), &chunk.Alloc{}); err == nil {
			if b2, err := AppendDoc(nil, d); err != nil || !bytes.Equal(b2, b) && !sameValue(mustDecode(t, b2), mustDecode(t, b)) {
				t.Fatalf("record doc %#v does not encode back: %v\n% x\n% x", d, err, b, b2)
			}
		}
		// KeyDecoder reads what DocDecoder reads, errors included.
		kk, kr, kerr := readTop(KeyDecoder(b))
		dk, dr, derr := readTop(DocDecoder(b, nil))
		if (kerr == nil) != (derr == nil) || !reflect.DeepEqual(kk, dk) || !reflect.DeepEqual(kr, dr) {
			t.Fatalf("KeyDecoder read %q %x (%v), DocDecoder %q %x (%v)", kk, kr, kerr, dk, dr, derr)
		}
		v, err := Decode(b)
		d := Decoder{b: b}
		if serr := d.Skip(); err == nil && (serr != nil || d.i != len(b)) {
			t.Fatalf("skip: %v at %d of %d, but the value decodes", serr, d.i, len(b))
		}
		dv, derr := decodeDocValue(b)
		if derr == nil && err != nil {
			t.Fatalf("decodes as Docs (%v) but not as maps: %v", dv, err)
		}
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
		dv2, err := decodeDocValue(b2)
		if err != nil || derr == nil && !sameValue(dv, dv2) {
			t.Fatalf("round trip as Docs: %v\n%#v\n%#v", err, dv, dv2)
		}
		if derr == nil {
			if b3, err := Encode(dv); err != nil || !bytes.Equal(b3, b2) {
				t.Fatalf("Docs encode as % x, %v; maps as % x", b3, err, b2)
			}
		}
	})
}

func mustDecode(t *testing.T, b []byte) any {
	v, err := Decode(b)
	if err != nil {
		t.Fatalf("decode % x: %v", b, err)
	}
	return v
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

// BenchmarkDecode decodes a stored result document as maps.
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

// BenchmarkDecodeDoc decodes a complete workload record, result
// included, as the postgres read path does.
func BenchmarkDecodeDoc(b *testing.B) {
	w := dbtest.NewWorkload()
	r := w.Record(1)
	for k, v := range w.Result(1) {
		r[k] = v
	}
	raw, err := AppendDoc(nil, taskdb.DocOf(r))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	var a chunk.Alloc
	for b.Loop() {
		if _, err := DecodeDoc(raw, &a); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}

// TestKeyDecoder checks that KeyDecoder reads a map's keys and raw
// values as DocDecoder does, without allocating.
// readTop reads b as a map of keys and raw values, as the backends'
// merges do.
func readTop(d Decoder) (keys []string, raws [][]byte, err error) {
	n, err := d.MapLen()
	if err != nil {
		return nil, nil, err
	}
	for range n {
		k, err := d.Key()
		if err != nil {
			return keys, raws, err
		}
		raw, err := d.Raw()
		if err != nil {
			return keys, raws, err
		}
		keys, raws = append(keys, k), append(raws, raw)
	}
	return keys, raws, d.End()
}

func TestKeyDecoder(t *testing.T) {
	b, err := Encode(map[string]any{"a": int64(1), "b": map[string]any{"c": []any{"d", 2.5}}, "e": []byte{7}})
	if err != nil {
		t.Fatal(err)
	}
	type kv struct {
		k   string
		raw []byte
	}
	read := func(d Decoder) []kv {
		t.Helper()
		n, err := d.MapLen()
		if err != nil {
			t.Fatal(err)
		}
		var out []kv
		for range n {
			k, err := d.Key()
			if err != nil {
				t.Fatal(err)
			}
			raw, err := d.Raw()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, kv{k, raw})
		}
		if err := d.End(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got, want := read(KeyDecoder(b)), read(DocDecoder(b, nil)); !reflect.DeepEqual(got, want) {
		t.Errorf("KeyDecoder reads %v, DocDecoder %v", got, want)
	}
	allocs := testing.AllocsPerRun(100, func() {
		d := KeyDecoder(b)
		n, _ := d.MapLen()
		for range n {
			d.Key()  //nolint:errcheck // read above
			d.Skip() //nolint:errcheck // read above
		}
	})
	if allocs != 0 {
		t.Errorf("KeyDecoder allocates %v times per map", allocs)
	}
}
