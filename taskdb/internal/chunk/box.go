package chunk

import (
	"time"
	"unsafe"

	"github.com/taskhub/taskhub/taskdb"
)

// Boxing. Storing a string, time, slice or Doc in an interface makes Go
// allocate a box for it: a full record read makes about twenty, as many
// allocations as the rest of the read together. The Box methods instead
// put the value in a chunk of its type and return an interface pointing
// at it, which is what the runtime does with its own allocation: an
// interface holding a value that is not a pointer is a type word and a
// pointer to an immutable copy of the value. The chunks are typed, so
// the collector scans them; a chunk lives while any interface points
// into it; nothing writes to a value once boxed. TestBoxLayout checks
// that interfaces have this layout.

// Largest box chunks, in values: about 16 KiB each.
const maxBoxes = 512

type boxes struct {
	strings pool[string]
	times   pool[time.Time]
	docs    pool[taskdb.Doc]
	arrays  pool[[]any]
	bytes   pool[[]byte]
}

func (b *boxes) plan(done, n int) {
	b.strings.plan(done, n, maxBoxes)
	b.times.plan(done, n, maxBoxes)
	b.docs.plan(done, n, maxBoxes)
	b.arrays.plan(done, n, maxBoxes)
	b.bytes.plan(done, n, maxBoxes)
}

// eface is the layout of an interface holding a value.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// typeWord returns the type word of v's dynamic type.
func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	stringType = typeWord("")
	timeType   = typeWord(time.Time{})
	docType    = typeWord(taskdb.Doc(nil))
	arrayType  = typeWord([]any(nil))
	bytesType  = typeWord([]byte(nil))
)

// box returns an interface of type typ holding v, copied into p.
func box[T any](typ unsafe.Pointer, p *pool[T], v T) any {
	s := p.take(1, maxBoxes)
	s[0] = v
	var x any
	e := (*eface)(unsafe.Pointer(&x))
	e.typ, e.data = typ, unsafe.Pointer(&s[0])
	return x
}

// BoxString returns s as an interface, without an allocation of its own.
func (a *Alloc) BoxString(s string) any { return box(stringType, &a.boxes.strings, s) }

// BoxTime returns t as an interface, without an allocation of its own.
func (a *Alloc) BoxTime(t time.Time) any { return box(timeType, &a.boxes.times, t) }

// BoxDoc returns d as an interface, without an allocation of its own.
func (a *Alloc) BoxDoc(d taskdb.Doc) any { return box(docType, &a.boxes.docs, d) }

// BoxArray returns v as an interface, without an allocation of its own.
func (a *Alloc) BoxArray(v []any) any { return box(arrayType, &a.boxes.arrays, v) }

// BoxBytes returns b as an interface, without an allocation of its own.
func (a *Alloc) BoxBytes(b []byte) any { return box(bytesType, &a.boxes.bytes, b) }
