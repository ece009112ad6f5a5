package mongodb

import (
	"bytes"
	"math"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/taskhub/taskhub/taskdb"
)

func TestEscapeKey(t *testing.T) {
	for _, c := range []struct{ key, stored string }{
		{"stdout", "stdout"},
		{"a.b", "a%2Eb"},
		{"$set", "%24set"},
		{"50%", "50%25"},
		{"_id", "%5Fid"},
		{"a_b", "a_b"},
		{"nul\x00", "nul%00"},
		{"", ""},
	} {
		if got := escapeKey(c.key); got != c.stored {
			t.Errorf("escapeKey(%q) = %q, want %q", c.key, got, c.stored)
		}
		if got, err := unescapeKey(c.stored); err != nil || got != c.key {
			t.Errorf("unescapeKey(%q) = %q, %v; want %q", c.stored, got, err, c.key)
		}
	}
	for _, bad := range []string{"%", "%2", "%zz"} {
		if _, err := unescapeKey(bad); err == nil {
			t.Errorf("unescapeKey(%q) succeeded", bad)
		}
	}
}

// TestRoundTrip checks that every value of the model comes back as it was
// stored, ints as ints and floats as floats, times to the millisecond,
// and that the Doc is ordered as taskdb.DocOf orders a record.
func TestRoundTrip(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 123_456_000, time.UTC)
	rec := taskdb.Record{
		"submitted": t0, "stdout": "out", "buffers": []any{[]byte("b"), []byte{}},
		"header": map[string]any{"z": int64(1), "a.b": 2.0, "$k": nil, "_x": []any{int64(3), 3.0, true}},
		"n":      int64(math.MaxInt64), "f": 1.0, "neg0": math.Copysign(0, -1), "t": []any{t0},
		"_seq": "not ours", "zz": map[string]any{}, "a%b": "", "é": false,
	}
	r, err := stored("m1", rec)
	if err != nil {
		t.Fatal(err)
	}
	r[fieldSeq] = int64(42)
	raw, err := bson.Marshal(newDocument("m1", r))
	if err != nil {
		t.Fatal(err)
	}
	got, seq, err := decodeRecord(raw)
	if err != nil || seq != 42 {
		t.Fatalf("decodeRecord: seq %d, %v", seq, err)
	}
	want := taskdb.EmptyRecord("m1")
	for k, v := range rec {
		want[k] = v
	}
	want["submitted"] = t0.Truncate(time.Millisecond)
	want["t"] = []any{t0.Truncate(time.Millisecond)}
	if !reflect.DeepEqual(got, taskdb.DocOf(want)) {
		t.Errorf("round trip:\n got %v\nwant %v", got, taskdb.DocOf(want))
	}
	if f := got.Get("neg0").(float64); !math.Signbit(f) {
		t.Error("-0.0 lost its sign")
	}
}

// FuzzDecodeRecord feeds arbitrary bytes to the decoder, which must fail
// cleanly, and checks that what it accepts encodes, decodes and encodes
// again to the same bytes (NaN and -0 included).
func FuzzDecodeRecord(f *testing.F) {
	for _, d := range []bson.D{
		{{Key: "_id", Value: "m"}, {Key: "_seq", Value: int64(1)}, {Key: "a%2Eb", Value: bson.A{int32(1), 2.5, nil, bson.Binary{Data: []byte("x")}}}},
		{{Key: "_id", Value: "m"}, {Key: "header", Value: bson.D{{Key: "z", Value: true}, {Key: "a", Value: bson.DateTime(5)}}}},
		{{Key: "_id", Value: int32(1)}},
		{{Key: "x", Value: bson.ObjectID{}}},
	} {
		b, err := bson.Marshal(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, seq, err := decodeRecord(bson.Raw(b))
		if err != nil {
			return
		}
		rec := d.Record()
		id, _ := rec[taskdb.KeyMsgID].(string)
		for _, k := range taskdb.SchemaKeys {
			if _, ok := rec[k]; !ok {
				rec[k] = taskdb.Default(k)
			}
		}
		raw := encode(t, id, rec, seq)
		again, seq2, err := decodeRecord(raw)
		if err != nil || seq2 != seq {
			t.Fatalf("re-decoding %v: seq %d, %v", d, seq2, err)
		}
		if raw2 := encode(t, id, again.Record(), seq); !bytes.Equal(raw, raw2) {
			t.Fatalf("%v re-decoded as %v", d, again)
		}
	})
}

func encode(t *testing.T, id string, rec taskdb.Record, seq int64) bson.Raw {
	t.Helper()
	r, err := stored(id, rec)
	if err != nil {
		t.Fatalf("%v does not encode: %v", rec, err)
	}
	r[fieldSeq] = seq
	raw, err := bson.Marshal(newDocument(id, r))
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return raw
}
