package dictdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// A record's values other than its times are packed into its buf, after
// the msg_id, in a binary form private to this package; the buf is
// appended to a block of bytes shared with other records (see store).
// Reads decode it:
// into results (thaw) or, for matching, into views that decode nested
// documents lazily. Strings read out of it are substrings, shared rather
// than copied; strings are immutable, so sharing them is safe.
//
// A value is a tag byte and its payload:
const (
	tagNil       byte = iota
	tagFalse          // false
	tagTrue           // true
	tagInt            // varint
	tagFloat          // 8 bytes, IEEE 754, little endian
	tagString         // uvarint length, bytes
	tagWord           // uvarint index into words
	tagRef            // the record's msg_id
	tagTime           // varint microseconds since the Unix epoch
	tagBytes          // uvarint length, bytes
	tagArray          // uvarint count, 4-byte length of the elements, elements
	tagDoc            // uvarint count, 4-byte length of the fields, fields sorted by key
	tagNullArray      // []any(nil)
	tagNullDoc        // a null document
	tagExternal       // one byte: the value is store.ext[seq][byte]
)

// maxInline is the longest buffers or result_buffers value stored in a
// record's buf; longer ones are kept in store.ext, so that an update
// (stdout streaming in, say) does not copy a task's megabytes of
// buffers, and strings read out of the record do not keep them alive.
const maxInline = 1 << 10

// A field of a document is its key then its value. A key is a uvarint
// x: x/2 indexes words if x is even; otherwise x/2 bytes of key follow.
//
// A record's data is a sequence of entries, one per key that is not at
// its default: the schema key's index in taskdb.SchemaKeys as one byte,
// or extraSlot then the key; then the value. Schema keys come first, in
// SchemaKeys order, then extra keys sorted.
const extraSlot = 0xff

// Strings of a value equal to the record's msg_id (message headers repeat
// it) are stored as tagRef.

// words are keys and values common in ipyparallel's messages, stored as
// their index.
var words = [...]string{
	"", "msg_id", "msg_type", "username", "session", "date", "version",
	"status", "engine", "started", "dependencies_met", "after", "follow",
	"timeout", "targets", "retries", "is_broadcast", "is_coalescing",
	"original_msg_id", "engine_uuid", "engine_id", "ename", "evalue",
	"traceback", "execution_count", "data", "metadata", "name", "text",
	"code", "silent", "source", "apply_request", "apply_reply",
	"execute_request", "execute_reply", "execute_input", "execute_result",
	"error", "stream", "display_data", "stdout", "stderr", "5.3", "ok",
	"aborted", "task", "mux",
}

var (
	// wordValues are the words boxed once, so reads share them.
	wordValues = func() (v [len(words)]any) {
		for i, w := range words {
			v[i] = w
		}
		return v
	}()
	wordTable = newStrTable(words[:])
)

// strTable is an open-addressing hash table of the indexes of a few
// short strings in their list: cheaper than a map or a string switch.
type strTable struct {
	list    []string
	longest int
	t       [256]uint8 // index in list plus one, at the slot of the hash
}

func newStrTable(list []string) *strTable {
	x := &strTable{list: list}
	for i, s := range list {
		if _, ok := x.index(s); ok {
			panic("dictdb: duplicate in a string table: " + s)
		}
		x.longest = max(x.longest, len(s))
		h := strHash(s)
		for x.t[h] != 0 {
			h++
		}
		x.t[h] = uint8(i + 1)
	}
	return x
}

func strHash(s string) uint8 {
	if s == "" {
		return 0
	}
	return uint8(len(s)*29 + int(s[0])*7 + int(s[len(s)-1])*3)
}

// index returns the index of s in the list, if it is there.
func (x *strTable) index(s string) (int, bool) {
	if len(s) > x.longest {
		return 0, false // ids and uuids, mostly: no probe
	}
	for h := strHash(s); x.t[h] != 0; h++ {
		if i := int(x.t[h] - 1); x.list[i] == s {
			return i, true
		}
	}
	return 0, false
}

// errTooLarge reports a document or array whose encoding exceeds 4 GiB.
var errTooLarge = errors.New("value larger than 4 GiB")

// encoder packs values. Encoders are pooled: their buffers are reused.
type encoder struct {
	b        []byte     // encoded values
	out      []byte     // a record's data, being merged
	cs       []change   // the changes of one write to times and data
	keys     []string   // the extra keys of the changes
	order    []int      // the changes to data entries, in data order
	indexed  [2]indexed // the write's client_uuid and engine_uuid
	replaced [2]int     // where merge found their former values in the data, or -1
	adding   bool       // the write adds a record: fields at their default need no change
	id       string     // the msg_id of the record written: its strings equal to it are stored as tagRef
	key      string     // the top-level key being encoded, for errors
}

// indexed is the value a write gives client_uuid or engine_uuid.
type indexed struct {
	set bool
	v   any
}

type kv struct {
	k string
	v any
}

// maxPooled is the most buffer memory a pooled encoder keeps.
const maxPooled = 64 << 10

var encoders = sync.Pool{New: func() any { return new(encoder) }}

func getEncoder() *encoder { return encoders.Get().(*encoder) }

// put returns e to the pool, dropping what it references of the
// caller's, and its buffers if a large record grew them.
func (e *encoder) put() {
	if cap(e.b)+cap(e.out) > maxPooled {
		e.b, e.out = nil, nil
	}
	clear(e.keys)
	e.b, e.out, e.cs, e.keys, e.order = e.b[:0], e.out[:0], e.cs[:0], e.keys[:0], e.order[:0]
	e.indexed, e.id, e.key, e.adding = [2]indexed{}, "", "", false
	encoders.Put(e)
}

// value appends v, a value in the value model or a Go type
// taskdb.Normalize converts, or an error wrapping taskdb.ErrInvalidRecord.
func (e *encoder) value(v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: key %q: nested deeper than %d levels", taskdb.ErrInvalidRecord, e.key, maxDepth)
	}
	switch x := v.(type) {
	case nil:
		e.b = append(e.b, tagNil)
	case bool:
		if x {
			e.b = append(e.b, tagTrue)
		} else {
			e.b = append(e.b, tagFalse)
		}
	case int64:
		e.b = binary.AppendVarint(append(e.b, tagInt), x)
	case float64:
		e.b = binary.LittleEndian.AppendUint64(append(e.b, tagFloat), math.Float64bits(x))
	case string:
		e.str(x)
	case time.Time:
		us, err := micros(e.key, x)
		if err != nil {
			return err
		}
		e.b = binary.AppendVarint(append(e.b, tagTime), us)
	case []byte:
		e.bytes(x)
	case [][]byte:
		if x == nil {
			e.b = append(e.b, tagNullArray)
			return nil
		}
		start := e.open(tagArray, len(x))
		for _, b := range x {
			e.bytes(b)
		}
		return e.close(start)
	case []any:
		if x == nil {
			e.b = append(e.b, tagNullArray)
			return nil
		}
		start := e.open(tagArray, len(x))
		for _, el := range x {
			if err := e.value(el, depth+1); err != nil {
				return err
			}
		}
		return e.close(start)
	case map[string]any:
		return e.doc(x, depth)
	case taskdb.Record:
		return e.doc(x, depth)
	default:
		c, err := taskdb.Normalize(e.key, v)
		if err != nil {
			return err
		}
		return e.value(c, depth)
	}
	return nil
}

func (e *encoder) bytes(b []byte) {
	e.b = append(binary.AppendUvarint(append(e.b, tagBytes), uint64(len(b))), b...)
}

func (e *encoder) str(s string) {
	if len(s) == len(e.id) && s == e.id {
		e.b = append(e.b, tagRef)
		return
	}
	if w, ok := wordTable.index(s); ok {
		e.b = binary.AppendUvarint(append(e.b, tagWord), uint64(w))
		return
	}
	e.b = append(binary.AppendUvarint(append(e.b, tagString), uint64(len(s))), s...)
}

// appendKey appends a document or entry key to b.
func appendKey(b []byte, k string) []byte {
	if w, ok := wordTable.index(k); ok {
		return binary.AppendUvarint(b, 2*uint64(w))
	}
	return append(binary.AppendUvarint(b, 2*uint64(len(k))+1), k...)
}

func (e *encoder) doc(m map[string]any, depth int) error {
	if m == nil {
		e.b = append(e.b, tagNullDoc)
		return nil
	}
	start := e.open(tagDoc, len(m))
	var buf [8]kv // on the stack: no write barriers for the usual small document
	kvs := buf[:0]
	for k, v := range m {
		kvs = append(kvs, kv{k, v})
	}
	sortKVs(kvs)
	for _, f := range kvs {
		e.b = appendKey(e.b, f.k)
		if err := e.value(f.v, depth+1); err != nil {
			return err
		}
	}
	return e.close(start)
}

// sortKVs sorts a document's fields by key; insertion sort beats the
// generic sort for the handful of keys message headers have.
func sortKVs(s []kv) {
	if len(s) > 12 {
		slices.SortFunc(s, func(a, b kv) int { return strings.Compare(a.k, b.k) })
		return
	}
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].k < s[j-1].k; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// open starts an array or document of n elements and returns where its
// body starts; close writes the body's length.
func (e *encoder) open(tag byte, n int) int {
	e.b = binary.AppendUvarint(append(e.b, tag), uint64(n))
	e.b = append(e.b, 0, 0, 0, 0)
	return len(e.b)
}

func (e *encoder) close(start int) error {
	n := len(e.b) - start
	if uint64(n) > math.MaxUint32 {
		return fmt.Errorf("%w: key %q: %w", taskdb.ErrInvalidRecord, e.key, errTooLarge)
	}
	binary.LittleEndian.PutUint32(e.b[start-4:], uint32(n))
	return nil
}

// Unix seconds of the first and last instants of years 1 and 9999.
var minSec, maxSec = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).Unix() - 1

// micros returns t in microseconds since the Unix epoch, truncated like
// query.CanonicalTime, or an error if t is outside years 1-9999.
func micros(key string, t time.Time) (int64, error) {
	if s := t.Unix(); s < minSec || s > maxSec {
		return 0, fmt.Errorf("%w: key %q: time %v: year outside 1-9999", taskdb.ErrInvalidRecord, key, t)
	}
	return t.UnixMicro(), nil
}

// Reading. The data was written by an encoder: it is trusted.

// bytes is the data being read: a record's, or an encoder's buffer.
type text interface{ ~string | ~[]byte }

func uvarint[S text](s S, i int) (uint64, int) {
	var x uint64
	for shift := 0; ; shift += 7 {
		c := s[i]
		i++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x, i
		}
	}
}

func varint(s string, i int) (int64, int) {
	u, i := uvarint(s, i)
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x, i
}

func uint32At[S text](s S, i int) int {
	return int(uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24)
}

// readKey returns the key at i and where its value starts.
func readKey(s string, i int) (string, int) {
	x, i := uvarint(s, i)
	if x&1 == 0 {
		return words[x/2], i
	}
	n := int(x / 2)
	return s[i : i+n], i + n
}

// body returns the element count of the array or document whose count
// starts at i, and its body's bounds.
func body[S text](s S, i int) (n, start, end int) {
	c, i := uvarint(s, i)
	return int(c), i + 4, i + 4 + uint32At(s, i)
}

// skip returns where the value at i ends.
func skip[S text](s S, i int) int {
	tag := s[i]
	i++
	switch tag {
	case tagInt, tagTime, tagWord:
		_, i = uvarint(s, i)
	case tagFloat:
		i += 8
	case tagExternal:
		i++
	case tagString, tagBytes:
		n, j := uvarint(s, i)
		i = j + int(n)
	case tagArray, tagDoc:
		_, _, i = body(s, i)
	}
	return i
}

// reader decodes values of record r: into results carved from t, or,
// with t nil, into views for matching.
type reader struct {
	s *store
	r *rec
	t *thawer
}

// value decodes the value at i and returns where it ends.
func (d *reader) value(s string, i int) (any, int) {
	tag := s[i]
	i++
	switch tag {
	case tagNil:
		return nil, i
	case tagFalse:
		return false, i
	case tagTrue:
		return true, i
	case tagInt:
		x, i := varint(s, i)
		return x, i
	case tagFloat:
		return math.Float64frombits(uint64(uint32At(s, i)) | uint64(uint32At(s, i+4))<<32), i + 8
	case tagString:
		n, i := uvarint(s, i)
		return d.str(s[i : i+int(n)]), i + int(n)
	case tagWord:
		w, i := uvarint(s, i)
		return wordValues[w], i
	case tagRef:
		return d.str(d.s.id(d.r)), i
	case tagExternal:
		x, _ := d.value(d.s.ext[d.r.seq][s[i]], 0)
		return x, i + 1
	case tagTime:
		us, i := varint(s, i)
		return d.time(us), i
	case tagBytes:
		n, i := uvarint(s, i)
		b := s[i : i+int(n)]
		if d.t != nil {
			return d.t.BoxBytes(d.t.CloneString(b)), i + int(n)
		}
		return []byte(b), i + int(n)
	case tagNullArray:
		return []any(nil), i
	case tagNullDoc:
		if d.t != nil {
			return taskdb.Doc(nil), i
		}
		return view{}, i
	case tagArray:
		n, i, end := body(s, i)
		if n == 0 && d.t != nil {
			return emptyArray, end
		}
		var out []any
		if d.t != nil {
			out = d.t.Array(n)
		} else {
			out = make([]any, n)
		}
		for j := range out {
			out[j], i = d.value(s, i)
		}
		if d.t != nil {
			return d.t.BoxArray(out), end
		}
		return out, end
	case tagDoc:
		n, i, end := body(s, i)
		if d.t == nil {
			return view{s: s[i:end], n: n, st: d.s, r: d.r}, end
		}
		if n == 0 {
			return emptyDoc, end
		}
		out := d.t.Doc(n)
		for range n {
			var k string
			var v any
			k, i = readKey(s, i)
			v, i = d.value(s, i)
			out = append(out, taskdb.Field{Key: k, Value: v})
		}
		return d.t.BoxDoc(out), end
	}
	panic(fmt.Sprintf("dictdb: corrupt record data: tag %d", tag))
}

// Empty results are shared: nothing can be stored in them, and boxing
// one per record (every record has metadata {}) cost an allocation.
var (
	emptyDoc   any = taskdb.Doc{}
	emptyArray any = []any{}
)

// str returns s as an interface: boxed in the read's chunks for a result.
func (d *reader) str(s string) any {
	if d.t != nil {
		return d.t.BoxString(s)
	}
	return s
}

// time returns us microseconds since the epoch as a time, or nil for
// noTime, as an interface: boxed in the read's chunks for a result.
func (d *reader) time(us int64) any {
	switch {
	case us == noTime:
		return nil
	case d.t != nil:
		return d.t.BoxTime(time.UnixMicro(us).UTC())
	}
	return time.UnixMicro(us).UTC()
}

// view is a packed document read for matching: it decodes fields as they
// are looked up.
type view struct {
	s  string // the fields
	n  int
	st *store
	r  *rec
}

var _ query.Doc = view{}

// Lookup implements query.Doc.
func (v view) Lookup(key string) (any, bool) {
	for i := 0; i < len(v.s); {
		k, j := readKey(v.s, i)
		if k == key {
			d := reader{s: v.st, r: v.r}
			x, _ := d.value(v.s, j)
			return x, true
		}
		i = skip(v.s, j)
	}
	return nil, false
}

// Len implements query.Doc.
func (v view) Len() int { return v.n }

// bufferBytes is what an encoded buffers or result_buffers value counts
// toward the size limit: the length of a byte string, or the total
// length of the byte strings of an array.
func bufferBytes[S text](s S, i int) int64 {
	switch s[i] {
	case tagBytes:
		n, _ := uvarint(s, i+1)
		return int64(n)
	case tagArray:
		var total int64
		_, j, end := body(s, i+1)
		for j < end {
			if s[j] == tagBytes {
				total += bufferBytes(s, j)
			}
			j = skip(s, j)
		}
		return total
	}
	return 0
}
