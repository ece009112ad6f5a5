package dictdb

import (
	"math"
	"testing"
)

func TestEncodeSmall(t *testing.T) {
	docs := []doc{
		{{Key: "a", Value: int64(5)}},
		{{Key: "a", Value: 5.0}},
		{{Key: "a", Value: "5"}},
		{{Key: "a", Value: true}},
		{{Key: "a", Value: false}},
		{{Key: "a", Value: nil}},
		{{Key: "a", Value: math.NaN()}},
		{{Key: "a5", Value: nil}},
		{{Key: "a", Value: int64(5)}, {Key: "b", Value: "x"}},
		{{Key: "a", Value: "\x01bs"}},
		{{Key: "a\x01b", Value: "s"}},
		{{Key: "status", Value: "ok"}},
	}
	seen := map[string]int{}
	for i, d := range docs {
		key, ok := encodeSmall(nil, d)
		if !ok {
			t.Fatalf("doc %d %v not encodable", i, d)
		}
		if j, dup := seen[string(key)]; dup {
			t.Errorf("docs %d %v and %d %v share the key %q", j, docs[j], i, d, key)
		}
		seen[string(key)] = i
	}
	for _, d := range []doc{
		{{Key: "a", Value: []any{}}},
		{{Key: "a", Value: doc{}}},
		{{Key: "a", Value: []byte("x")}},
		{{Key: "long", Value: string(make([]byte, internBytes))}},
	} {
		if _, ok := encodeSmall(nil, d); ok {
			t.Errorf("%v encoded, want refused", d)
		}
	}
}

func TestInternShares(t *testing.T) {
	db := New(Options{})
	a, b := doc{{Key: "status", Value: "ok"}}, doc{{Key: "status", Value: "ok"}}
	x, y := db.intern(&a), db.intern(&b)
	if x != y {
		t.Error("equal small documents are not shared")
	}
	if z := db.intern(&doc{{Key: "status", Value: "error"}}); z == x {
		t.Error("different documents shared")
	}
	big := doc{{Key: "a", Value: int64(1)}, {Key: "b", Value: int64(2)}, {Key: "c", Value: int64(3)}}
	if got := db.intern(&big); got != any(&big) {
		t.Error("a document over internFields was replaced")
	}
}
