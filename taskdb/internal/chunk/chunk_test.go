package chunk

import (
	"bytes"
	"testing"

	"github.com/taskhub/taskhub/taskdb"
)

// Values handed out never overlap: filling each to its capacity leaves
// the others intact, before and after planning.
func TestAllocDisjoint(t *testing.T) {
	var a Alloc
	var docs []taskdb.Doc
	var arrays [][]any
	var clones [][]byte
	for i := range 2000 {
		n := i % 9
		d := a.Doc(n)
		if d == nil || len(d) != 0 || cap(d) != n {
			t.Fatalf("Doc(%d): %#v, cap %d", n, d, cap(d))
		}
		for range n {
			d = append(d, taskdb.Field{Key: "k", Value: i})
		}
		docs = append(docs, d)
		s := a.Array(n)
		if s == nil || len(s) != n || cap(s) != n {
			t.Fatalf("Array(%d): %#v, cap %d", n, s, cap(s))
		}
		for j := range s {
			s[j] = i
		}
		arrays = append(arrays, s)
		src := bytes.Repeat([]byte{byte(i)}, n)
		c := a.Clone(src)
		if c == nil || !bytes.Equal(c, src) || cap(c) != n {
			t.Fatalf("Clone(% x) = %#v, cap %d", src, c, cap(c))
		}
		clones = append(clones, c)
		if i == 9 {
			a.Plan(10, 10)
		}
	}
	for i := range docs {
		for _, f := range docs[i] {
			if f.Value != i {
				t.Fatalf("doc %d was overwritten: %v", i, docs[i])
			}
		}
		for _, v := range arrays[i] {
			if v != i {
				t.Fatalf("array %d was overwritten: %v", i, arrays[i])
			}
		}
		for _, c := range clones[i] {
			if c != byte(i) {
				t.Fatalf("clone %d was overwritten: % x", i, clones[i])
			}
		}
	}
	if a.fields.size == 0 || a.fields.size > maxFields || a.bytes.size > maxBytes {
		t.Errorf("planned chunks of %d fields, %d bytes", a.fields.size, a.bytes.size)
	}
}

var sink taskdb.Doc

// Before Plan every value is its own exact allocation; after it, values
// share chunks.
func TestAllocPlan(t *testing.T) {
	var a Alloc
	if n := testing.AllocsPerRun(10, func() { sink = a.Doc(3) }); n != 1 {
		t.Errorf("unplanned Doc: %v allocations, want 1", n)
	}
	a.Plan(1, 1)
	if n := testing.AllocsPerRun(100, func() { sink = a.Doc(3) }); n >= 0.5 {
		t.Errorf("planned Doc: %v allocations, want chunks shared by several", n)
	}
	big := make([]byte, maxBytes)
	if c := a.Clone(big); &c[0] == &big[0] || len(c) != len(big) {
		t.Error("Clone of a chunk-sized byte string did not copy it")
	}
}
