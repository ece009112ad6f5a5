package dictdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// genValue builds a value in the value model from fuzz bytes: every tag
// of the encoding, nested, with words, the record's id and long strings.
func genValue(b *[]byte, depth int) any {
	next := func() byte {
		if len(*b) == 0 {
			return 0
		}
		c := (*b)[0]
		*b = (*b)[1:]
		return c
	}
	c := next()
	switch c % 14 {
	case 0:
		return nil
	case 1:
		return c&0x10 != 0
	case 2:
		return int64(binary.LittleEndian.Uint64(append(slices.Clone(*b), make([]byte, 8)...))) >> (next() % 64)
	case 3:
		return math.Float64frombits(binary.LittleEndian.Uint64(append(slices.Clone(*b), make([]byte, 8)...)))
	case 4:
		n := int(next() % 40)
		return strings.Repeat(string(rune('a'+c%26)), n)
	case 5:
		return words[int(next())%len(words)]
	case 6:
		return "m-1" // the record's id
	case 7:
		return time.UnixMicro(int64(next())<<32 | int64(next())<<8).UTC()
	case 8:
		return bytes.Repeat([]byte{c}, int(next())+int(next()))
	case 9:
		return []any(nil)
	case 10:
		return map[string]any(nil)
	}
	if depth > 4 {
		return int64(c)
	}
	n := int(next() % 5)
	if c%2 == 0 {
		a := make([]any, n)
		for i := range a {
			a[i] = genValue(b, depth+1)
		}
		return a
	}
	m := make(map[string]any, n)
	for range n {
		k := fmt.Sprint("k", next()%8)
		if next()%3 == 0 {
			k = words[int(next())%len(words)]
		}
		m[k] = genValue(b, depth+1)
	}
	return m
}

// sameValue reports whether a stored value read back (Docs) equals the
// value written (maps).
func sameValue(in, out any) bool {
	switch x := in.(type) {
	case map[string]any:
		d, ok := out.(taskdb.Doc)
		if !ok || (x == nil) != (d == nil) || len(x) != len(d) {
			return false
		}
		if !slices.IsSortedFunc(d, func(a, b taskdb.Field) int { return strings.Compare(a.Key, b.Key) }) {
			return false
		}
		for _, f := range d {
			if v, ok := x[f.Key]; !ok || !sameValue(v, f.Value) {
				return false
			}
		}
		return true
	case []any:
		a, ok := out.([]any)
		if !ok || (x == nil) != (a == nil) || len(x) != len(a) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], a[i]) {
				return false
			}
		}
		return true
	case []byte:
		b, ok := out.([]byte)
		return ok && b != nil && bytes.Equal(x, b)
	case float64:
		y, ok := out.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case time.Time:
		y, ok := out.(time.Time)
		return ok && x.Equal(y) && y.Location() == time.UTC
	}
	return in == out
}

// FuzzPack writes generated values under schema and extra keys, reads
// them back whole, projected and through an update, and matches them
// with $eq through the views.
func FuzzPack(f *testing.F) {
	for _, s := range []string{"", "\x0b\x03\x05\x02\x07\x06", "\x0c\x04\x01\x08\x10\x0d\x02\x05\x07", "\x05\x21\x06\x08\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := map[string]any{}
		for _, k := range []string{"header", "buffers", "result_content", "queue", "result_buffers", "stdout", "x_extra", "a"} {
			if len(data) == 0 {
				break
			}
			in[k] = genValue(&data, 0)
		}
		db := New(Options{})
		defer db.Close()
		ctx := t.Context()
		if err := db.AddRecord(ctx, "m-1", taskdb.Record(in)); err != nil {
			t.Fatalf("add %v: %v", in, err)
		}
		check := func(when string) {
			got, err := db.GetRecord(ctx, "m-1")
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range in {
				if !sameValue(v, got.Get(k)) {
					t.Fatalf("%s: %s = %#v, wrote %#v", when, k, got.Get(k), v)
				}
				p, err := db.FindRecords(ctx, nil, []string{k})
				if err != nil || len(p) != 1 || !sameValue(v, p[0].Get(k)) {
					t.Fatalf("%s: projected %s = %v (%v), wrote %#v", when, k, p, err, v)
				}
				q, err := query.Parse(map[string]any{k: map[string]any{"$eq": v}})
				if err != nil {
					continue // not every value is a valid operand (a null array, say)
				}
				if rs, err := db.FindRecords(ctx, q, nil); err != nil || len(rs) != 1 {
					if f, ok := v.(float64); !ok || !math.IsNaN(f) {
						t.Fatalf("%s: {%s: {$eq: %#v}} found %d records, %v", when, k, v, len(rs), err)
					}
				}
			}
		}
		check("added")
		upd := map[string]any{}
		for k := range in {
			if len(data) == 0 {
				break
			}
			upd[k] = genValue(&data, 0)
		}
		if err := db.UpdateRecord(ctx, "m-1", taskdb.Record(upd)); err != nil {
			t.Fatal(err)
		}
		for k, v := range upd {
			in[k] = v
		}
		check("updated")
	})
}
