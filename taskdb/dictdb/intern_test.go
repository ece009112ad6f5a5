package dictdb

import (
	"math"
	"testing"
)

func TestEncodeSmall(t *testing.T) {
	docs := []doc{
		{{"a", int64(5)}},
		{{"a", 5.0}},
		{{"a", "5"}},
		{{"a", true}},
		{{"a", false}},
		{{"a", nil}},
		{{"a", math.NaN()}},
		{{"a5", nil}},
		{{"a", int64(5)}, {"b", "x"}},
		{{"a", "\x01bs"}},
		{{"a\x01b", "s"}},
		{{"status", "ok"}},
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
		{{"a", []any{}}},
		{{"a", doc{}}},
		{{"a", []byte("x")}},
		{{"long", string(make([]byte, internBytes))}},
	} {
		if _, ok := encodeSmall(nil, d); ok {
			t.Errorf("%v encoded, want refused", d)
		}
	}
}

func TestInternShares(t *testing.T) {
	db := New(Options{})
	a, b := doc{{"status", "ok"}}, doc{{"status", "ok"}}
	x, y := db.intern(a), db.intern(b)
	if &x.(doc)[0] != &y.(doc)[0] {
		t.Error("equal small documents are not shared")
	}
	if z := db.intern(doc{{"status", "error"}}); &z.(doc)[0] == &x.(doc)[0] {
		t.Error("different documents shared")
	}
	big := doc{{"a", int64(1)}, {"b", int64(2)}, {"c", int64(3)}}
	if got := db.intern(big); &got.(doc)[0] != &big[0] {
		t.Error("a document over internFields was replaced")
	}
}
