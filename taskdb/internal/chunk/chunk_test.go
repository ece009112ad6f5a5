package chunk

import (
	"bytes"
	"testing"

	"github.com/taskhub/taskhub/taskdb"
)

// Values handed out never overlap: filling each to its capacity leaves
// the others intact.
func TestAllocDisjoint(t *testing.T) {
	var a Alloc
	var docs []taskdb.Doc
	var arrays [][]any
	var clones [][]byte
	for i := range 3 * maxChunk / 7 {
		n := i % 9
		d := a.Doc(n)
		if len(d) != 0 || cap(d) != n {
			t.Fatalf("Doc(%d): len %d cap %d", n, len(d), cap(d))
		}
		for range n {
			d = append(d, taskdb.Field{Key: "k", Value: i})
		}
		docs = append(docs, d)
		s := a.Array(n)
		if len(s) != n || cap(s) != n {
			t.Fatalf("Array(%d): len %d cap %d", n, len(s), cap(s))
		}
		for j := range s {
			s[j] = i
		}
		arrays = append(arrays, s)
		src := bytes.Repeat([]byte{byte(i)}, n)
		c := a.Clone(src)
		if !bytes.Equal(c, src) || cap(c) != n {
			t.Fatalf("Clone(% x) = % x, cap %d", src, c, cap(c))
		}
		clones = append(clones, c)
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
	big := make([]byte, maxChunk+1)
	if c := a.Clone(big); len(c) != len(big) || &c[0] == &big[0] {
		t.Error("Clone of a byte string larger than a chunk did not copy it")
	}
}
