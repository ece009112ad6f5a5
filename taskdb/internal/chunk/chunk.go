package chunk

import "github.com/taskhub/taskhub/taskdb"

// Largest chunks, in elements: 128 KiB of fields, 16 KiB of interfaces,
// 32 KiB of bytes.
const (
	maxFields = 4096
	maxAnys   = 1024
	maxBytes  = 32 << 10
)

// An Alloc carves the values of one read out of its chunks. Until Plan
// is called it allocates each value exactly, so a read of one result
// wastes nothing; Plan then sizes chunks for the results to come from
// what the first ones took, and chunks double from there. Results share
// chunks, so one result kept alive keeps its neighbours' memory too. The
// zero Alloc is ready to use; it is not safe for concurrent use.
type Alloc struct {
	fields pool[taskdb.Field]
	anys   pool[any]
	bytes  pool[byte]
	boxes  boxes
}

// Plan prepares the chunks for n more results like the done results so
// far. A reader that does not know how many results follow calls
// Plan(1, 1) after the first: chunks then double as it reads on.
func (a *Alloc) Plan(done, n int) {
	a.fields.plan(done, n, maxFields)
	a.anys.plan(done, n, maxAnys)
	a.bytes.plan(done, n, maxBytes)
	a.boxes.plan(done, n)
}

// Doc returns an empty, non-nil Doc with room for n fields.
func (a *Alloc) Doc(n int) taskdb.Doc { return a.fields.take(n, maxFields)[:0] }

// Array returns a non-nil array of n nil elements.
func (a *Alloc) Array(n int) []any { return a.anys.take(n, maxAnys) }

// Clone returns a non-nil copy of b.
func (a *Alloc) Clone(b []byte) []byte { return cloneOf(a, b) }

// CloneString returns s as a non-nil byte string.
func (a *Alloc) CloneString(s string) []byte { return cloneOf(a, s) }

func cloneOf[S ~string | ~[]byte](a *Alloc, b S) []byte {
	c := a.bytes.take(len(b), maxBytes)
	copy(c, b)
	return c
}

// pool hands out slices of one type from a shared allocation.
type pool[T any] struct {
	free []T
	size int // of the next allocation; 0 before plan: exact allocations
	used int // elements handed out
}

// take returns n elements, with capacity n.
func (p *pool[T]) take(n, limit int) []T {
	if n == 0 {
		return []T{} // not nil: an empty value is not a null one
	}
	p.used += n
	if len(p.free) < n {
		if n >= p.size {
			return make([]T, n) // too big to share, or not planned yet
		}
		p.free = make([]T, p.size)
		p.size = min(2*p.size, limit)
	}
	s := p.free[:n:n]
	p.free = p.free[n:]
	return s
}

// plan sizes the next allocation for n more reads taking what the ones
// so far took on average.
func (p *pool[T]) plan(reads, n, limit int) {
	if reads > 0 && p.used > 0 {
		p.size = min(p.used/reads*n+1, limit)
	}
}
