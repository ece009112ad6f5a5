package chunk

import (
	"bytes"

	"github.com/taskhub/taskhub/taskdb"
)

// Chunk sizes: the first chunk holds a record or two, later ones double
// up to maxChunk fields (128 KiB).
const (
	minChunk = 64
	maxChunk = 4096
)

// An Alloc carves the values of one read out of its chunks. Results
// share chunks, so one result kept alive keeps its neighbours' memory
// too. The zero Alloc is ready to use; it is not safe for concurrent use.
type Alloc struct {
	fields []taskdb.Field
	anys   []any
	bytes  []byte
	next   int // size of the next field chunk
}

// Doc returns an empty Doc with room for n fields.
func (a *Alloc) Doc(n int) taskdb.Doc {
	if len(a.fields) < n {
		a.next = min(max(2*a.next, minChunk), maxChunk)
		a.fields = make([]taskdb.Field, max(n, a.next))
	}
	d := a.fields[:0:n]
	a.fields = a.fields[n:]
	return d
}

// Array returns an array of n nil elements.
func (a *Alloc) Array(n int) []any {
	if len(a.anys) < n {
		a.anys = make([]any, max(n, a.next/4, minChunk))
	}
	s := a.anys[:n:n]
	a.anys = a.anys[n:]
	return s
}

// Clone returns a copy of b; byte strings longer than a chunk get their
// own allocation.
func (a *Alloc) Clone(b []byte) []byte {
	n := len(b)
	if len(a.bytes) < n {
		if n > maxChunk {
			return bytes.Clone(b)
		}
		a.bytes = make([]byte, max(n, 8*a.next, minChunk))
	}
	c := a.bytes[:n:n]
	a.bytes = a.bytes[n:]
	copy(c, b)
	return c
}
