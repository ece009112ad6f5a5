package dictdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/internal/chunk"
	"github.com/taskhub/taskhub/taskdb/query"
)

// Stored values are "frozen": immutable copies in the value model where
// every document is a doc, a compact slice of fields. Scalars (strings,
// numbers, times) are immutable already and shared with the caller.

// field is one key of a doc.
type field = taskdb.Field

// doc is a frozen document. Its fields are sorted by key. It has the
// layout of a taskdb.Doc, so thawing one is a copy. Stored values hold
// documents as *doc (see newDoc); rec.more is a doc too.
type doc []field

// newDoc returns a document of n fields. Up to 8 fields, the slice
// header and the fields share one allocation: an interface holds a *doc
// as it is, where a doc would need a box of its own, one more object for
// the collector to mark and for reads to chase.
func newDoc(n int) *doc {
	if n > 0 && n < len(fusedDocs) {
		return fusedDocs[n]()
	}
	d := make(doc, n)
	return &d
}

// fusedDoc is a document's slice header and fields in one allocation.
type fusedDoc[A any] struct {
	d doc
	a A
}

func fuse[A any](fields func(*A) []field) *doc {
	p := new(fusedDoc[A])
	p.d = fields(&p.a)
	return &p.d
}

var fusedDocs = [...]func() *doc{
	1: func() *doc { return fuse(func(a *[1]field) []field { return a[:] }) },
	2: func() *doc { return fuse(func(a *[2]field) []field { return a[:] }) },
	3: func() *doc { return fuse(func(a *[3]field) []field { return a[:] }) },
	4: func() *doc { return fuse(func(a *[4]field) []field { return a[:] }) },
	5: func() *doc { return fuse(func(a *[5]field) []field { return a[:] }) },
	6: func() *doc { return fuse(func(a *[6]field) []field { return a[:] }) },
	7: func() *doc { return fuse(func(a *[7]field) []field { return a[:] }) },
	8: func() *doc { return fuse(func(a *[8]field) []field { return a[:] }) },
}

// docLinear is the size up to which doc lookups scan instead of bisecting.
const docLinear = 16

// Lookup implements query.Doc.
func (d doc) Lookup(key string) (any, bool) {
	if len(d) <= docLinear {
		for i := range d {
			if d[i].Key == key {
				return d[i].Value, true
			}
		}
		return nil, false
	}
	i, ok := slices.BinarySearchFunc(d, key, func(f field, k string) int { return strings.Compare(f.Key, k) })
	if !ok {
		return nil, false
	}
	return d[i].Value, true
}

// Len implements query.Doc.
func (d doc) Len() int { return len(d) }

// with returns a copy of d with key set to v, keeping d unchanged.
func (d doc) with(key string, v any) doc {
	i, ok := slices.BinarySearchFunc(d, key, func(f field, k string) int { return strings.Compare(f.Key, k) })
	out := make(doc, len(d), len(d)+1)
	copy(out, d)
	if ok {
		out[i].Value = v
		return out
	}
	return slices.Insert(out, i, field{Key: key, Value: v})
}

// sortFields sorts a small doc by key; insertion sort beats the generic
// sort for the handful of keys message headers have.
func sortFields(d doc) {
	if len(d) > docLinear {
		slices.SortFunc(d, func(a, b field) int { return strings.Compare(a.Key, b.Key) })
		return
	}
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j].Key < d[j-1].Key; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

// freeze returns an immutable copy of v for storage under key. Canonical
// values are copied directly; other Go types go through taskdb.Normalize
// first.
func freeze(key string, v any) (any, error) {
	return freezeDepth(key, v, 0)
}

// maxDepth bounds the nesting of stored values.
const maxDepth = 100

func freezeDepth(key string, v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: key %q: nested deeper than %d levels", taskdb.ErrInvalidRecord, key, maxDepth)
	}
	switch x := v.(type) {
	case nil, bool, int64, float64, string:
		return x, nil
	case time.Time:
		if x.Location() == time.UTC && x.Nanosecond()%1000 == 0 {
			if y := x.Year(); y >= 1 && y <= 9999 {
				return v, nil // share the caller's box: times are immutable
			}
		}
		t, err := query.CanonicalTime(x)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", taskdb.ErrInvalidRecord, key, err)
		}
		return t, nil
	case []byte:
		return bytes.Clone(x), nil
	case []any:
		if x == nil {
			return x, nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			f, err := freezeDepth(key, e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = f
		}
		return out, nil
	case map[string]any:
		return freezeMap(key, x, depth)
	case taskdb.Record:
		return freezeMap(key, x, depth)
	}
	c, err := taskdb.Normalize(key, v)
	if err != nil {
		return nil, err
	}
	return freezeDepth(key, c, depth)
}

// Empty documents, shared so that storing {} allocates nothing.
var (
	nilDoc   any = new(doc)
	emptyDoc any = &doc{}
)

func freezeMap(key string, m map[string]any, depth int) (any, error) {
	if m == nil {
		return nilDoc, nil
	}
	if len(m) == 0 {
		return emptyDoc, nil
	}
	p := newDoc(len(m))
	d := (*p)[:0]
	for k, e := range m {
		f, err := freezeDepth(key, e, depth+1)
		if err != nil {
			return nil, err
		}
		d = append(d, field{Key: k, Value: f})
	}
	sortFields(d)
	*p = d
	return p, nil
}

// thawer copies frozen values out for one read, carving the results'
// documents, arrays and byte strings out of a few chunks (see
// chunk.Alloc): a record is a dozen small objects, and allocating and
// collecting those one by one dominated large reads.
type thawer struct{ chunk.Alloc }

// thaw returns a deep copy of a frozen value for a result: documents
// become taskdb.Docs.
func (t *thawer) thaw(v any) any {
	switch x := v.(type) {
	case *doc:
		if *x == nil {
			return taskdb.Doc(nil)
		}
		d := t.Doc(len(*x))
		for _, f := range *x {
			d = append(d, field{Key: f.Key, Value: t.thaw(f.Value)})
		}
		return d
	case []any:
		if x == nil {
			return x
		}
		out := t.Array(len(x))
		for i, e := range x {
			out[i] = t.thaw(e)
		}
		return out
	case []byte:
		return t.Clone(x)
	case blobs:
		out := t.Array(x.count())
		for i := range out {
			var b []byte
			b, x = x.cut()
			out[i] = t.Clone(b)
		}
		return out
	}
	return v
}

// bufferBytes is the size a buffers or result_buffers value counts toward
// the size limit: the total length of its byte strings.
func bufferBytes(v any) int64 {
	switch x := v.(type) {
	case []byte:
		return int64(len(x))
	case []any:
		var n int64
		for _, e := range x {
			if b, ok := e.([]byte); ok {
				n += int64(len(b))
			}
		}
		return n
	case blobs:
		var n int64
		for len(x) > 0 {
			var b []byte
			b, x = x.cut()
			n += int64(len(b))
		}
		return n
	}
	return 0
}

// blobs is a frozen non-empty list of byte strings, the usual value of
// buffers and result_buffers, packed as each string's uvarint length and
// bytes: one allocation the collector never scans, where []any{[]byte}
// takes four that it scans and reads must chase. Only those two slots
// hold blobs; rec.Lookup and thaw present them as []any.
type blobs []byte

// packBlobs packs v if it is a non-empty list of byte strings.
func packBlobs(v any) (blobs, bool) {
	n := 0
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			b, ok := e.([]byte)
			if !ok {
				return nil, false
			}
			n += uvarintLen(len(b)) + len(b)
		}
	case [][]byte:
		for _, b := range x {
			n += uvarintLen(len(b)) + len(b)
		}
	default:
		return nil, false
	}
	if n == 0 {
		return nil, false
	}
	out := make(blobs, 0, n)
	add := func(b []byte) {
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	if x, ok := v.([]any); ok {
		for _, e := range x {
			add(e.([]byte))
		}
	} else {
		for _, b := range v.([][]byte) {
			add(b)
		}
	}
	return out, true
}

func uvarintLen(n int) int { return (bits.Len64(uint64(n)|1) + 6) / 7 }

// cut returns b's first byte string, sharing b's memory, and the rest.
func (b blobs) cut() ([]byte, blobs) {
	n, k := binary.Uvarint(b)
	b = b[k:]
	return b[:n:n], b[n:]
}

func (b blobs) count() int {
	n := 0
	for ; len(b) > 0; n++ {
		_, b = b.cut()
	}
	return n
}

// list returns b as []any, sharing b's memory: for matching only.
func (b blobs) list() []any {
	out := make([]any, 0, b.count())
	for len(b) > 0 {
		var e []byte
		e, b = b.cut()
		out = append(out, e)
	}
	return out
}
