package sqlitedb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/taskhub/taskhub/taskdb"
)

// maxDepth bounds the nesting of stored values, as in dictdb.
const maxDepth = 100

var errDepth = errors.New("nested deeper than 100 levels")

// errNotCanonical reports a value outside the canonical value model: the
// caller normalizes it (query.Normalize) and encodes it again.
var errNotCanonical = errors.New("not a canonical value")

// encodeValue returns v, a value in the canonical value model, as
// msgpack: times are msgpack timestamps, []byte is bin, integers and
// floats keep their type, and map keys are sorted, so that a map decodes
// into a taskdb.Doc in key order.
func encodeValue(v any) ([]byte, error) { return appendValue(nil, v, 0) }

// appendValue appends v as encodeValue encodes it. For any value outside
// the canonical model (another type, a time below microseconds or outside
// years 1-9999) it returns errNotCanonical, so that callers can encode
// canonical values without copying them first.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, errDepth
	}
	switch x := v.(type) {
	case nil:
		return append(b, msgpcode.Nil), nil
	case bool:
		if x {
			return append(b, msgpcode.True), nil
		}
		return append(b, msgpcode.False), nil
	case int64:
		return appendInt(b, x), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(b, msgpcode.Double), math.Float64bits(x)), nil
	case string:
		return appendString(b, x), nil
	case []byte:
		b = appendLen(b, len(x), 0, 0, msgpcode.Bin8, msgpcode.Bin16, msgpcode.Bin32)
		return append(b, x...), nil
	case time.Time:
		if y := x.UTC().Year(); y < 1 || y > 9999 || x.Nanosecond()%1000 != 0 {
			return b, errNotCanonical
		}
		return appendTime(b, x), nil
	case []any:
		b = appendLen(b, len(x), msgpcode.FixedArrayLow, 16, 0, msgpcode.Array16, msgpcode.Array32)
		var err error
		for _, el := range x {
			if b, err = appendValue(b, el, depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case map[string]any:
		b = appendMapLen(b, len(x))
		var small [16]string
		keys := small[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var err error
		for _, k := range keys {
			b = appendString(b, k)
			if b, err = appendValue(b, x[k], depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	}
	return b, errNotCanonical
}

// appendLen appends the header of a str, bin, array or map of n
// elements: the fix form (fix|n) when n < fixMax, else the 8-bit form
// (c8, if not 0), else the 16-bit or 32-bit form.
func appendLen(b []byte, n int, fix byte, fixMax int, c8, c16, c32 byte) []byte {
	switch {
	case n < fixMax:
		return append(b, fix|byte(n))
	case n <= math.MaxUint8 && c8 != 0:
		return append(b, c8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, c16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, c32), uint32(n))
}

func appendMapLen(b []byte, n int) []byte {
	return appendLen(b, n, msgpcode.FixedMapLow, 16, 0, msgpcode.Map16, msgpcode.Map32)
}

func appendString(b []byte, s string) []byte {
	b = appendLen(b, len(s), msgpcode.FixedStrLow, 32, msgpcode.Str8, msgpcode.Str16, msgpcode.Str32)
	return append(b, s...)
}

// appendInt writes x in the shortest msgpack form.
func appendInt(b []byte, x int64) []byte {
	switch {
	case x >= 0 && x <= int64(msgpcode.PosFixedNumHigh):
		return append(b, byte(x))
	case x < 0 && x >= -32:
		return append(b, byte(int8(x)))
	case x >= math.MinInt8 && x <= math.MaxInt8:
		return append(b, msgpcode.Int8, byte(int8(x)))
	case x >= math.MinInt16 && x <= math.MaxInt16:
		return binary.BigEndian.AppendUint16(append(b, msgpcode.Int16), uint16(int16(x)))
	case x >= math.MinInt32 && x <= math.MaxInt32:
		return binary.BigEndian.AppendUint32(append(b, msgpcode.Int32), uint32(int32(x)))
	}
	return binary.BigEndian.AppendUint64(append(b, msgpcode.Int64), uint64(x))
}

// appendTime writes a msgpack timestamp (extension -1): 4 bytes for whole
// seconds from 1970 to 2106, 8 for other times in that range, else 12.
func appendTime(b []byte, t time.Time) []byte {
	sec, nsec := uint64(t.Unix()), uint64(t.Nanosecond())
	switch {
	case sec>>34 != 0:
		b = append(b, msgpcode.Ext8, 12, 0xff)
		return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(b, uint32(nsec)), sec)
	case nsec == 0 && sec>>32 == 0:
		return binary.BigEndian.AppendUint32(append(b, msgpcode.FixExt4, 0xff), uint32(sec))
	}
	return binary.BigEndian.AppendUint64(append(b, msgpcode.FixExt8, 0xff), nsec<<34|sec)
}

// A doc is the msgpack map in a row's doc column: the record's keys that
// have no typed column, in taskdb.Doc order (schema keys in SchemaKeys
// order, then extra keys sorted). Schema keys at their default value are
// left out; extra keys are always kept.

// schemaIndex maps a schema key to its index in taskdb.SchemaKeys.
var schemaIndex = func() map[string]int {
	m := make(map[string]int, len(taskdb.SchemaKeys))
	for i, k := range taskdb.SchemaKeys {
		m[k] = i
	}
	return m
}()

// extraRank is the rank of every extra key: after the schema keys.
const extraRank = len(taskdb.SchemaKeys)

// rank returns k's index in taskdb.SchemaKeys, or extraRank.
func rank(k string) int {
	if i, ok := schemaIndex[k]; ok {
		return i
	}
	return extraRank
}

// docCompare orders keys as a taskdb.Doc does.
func docCompare(a, b string) int { return compareRanked(rank(a), a, rank(b), b) }

// compareRanked orders keys of known ranks as a taskdb.Doc does.
func compareRanked(ra int, a string, rb int, b string) int {
	if ra != rb || ra != extraRank {
		return ra - rb
	}
	return strings.Compare(a, b)
}

// field is a key, its rank and its encoded value.
type field struct {
	key  string
	rank int
	raw  []byte
}

func (f field) compare(g field) int { return compareRanked(f.rank, f.key, g.rank, g.key) }

// isDefault reports whether f is a schema key holding its default value
// (null, or "" for stdout and stderr), which a doc leaves out.
func (f field) isDefault() bool {
	switch {
	case f.rank == extraRank:
		return false
	case taskdb.Default(f.key) == "":
		return len(f.raw) == 1 && f.raw[0] == msgpcode.FixedStrLow
	}
	return len(f.raw) == 1 && f.raw[0] == msgpcode.Nil
}

// appendDoc appends fs, sorted in Doc order without repeated keys, as a
// doc: schema keys at their default are left out.
func appendDoc(b []byte, fs []field) []byte { return appendMap(b, fs, false) }

// appendFields appends fs, sorted in Doc order without repeated keys, as
// a patch for mergeDoc: schema keys at their default are kept, since they
// reset the stored value.
func appendFields(b []byte, fs []field) []byte { return appendMap(b, fs, true) }

func appendMap(b []byte, fs []field, defaults bool) []byte {
	n := 0
	for _, f := range fs {
		if defaults || !f.isDefault() {
			n++
		}
	}
	b = appendMapLen(b, n)
	for _, f := range fs {
		if defaults || !f.isDefault() {
			b = append(appendString(b, f.key), f.raw...)
		}
	}
	return b
}

// docFields splits a doc (or a patch: any msgpack map with string keys in
// Doc order) into its fields, without decoding the values.
func docFields(b []byte) ([]field, error) {
	d := decoder{b: b, s: string(b), docs: true} // keys are substrings of s
	n, err := d.mapLen()
	if err != nil {
		return nil, err
	}
	fs := make([]field, 0, n)
	for range n {
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		f := field{key: k, rank: rank(k)}
		if len(fs) > 0 && fs[len(fs)-1].compare(f) >= 0 {
			return nil, fmt.Errorf("key %q out of order", k)
		}
		start := d.i
		if err := d.skip(0); err != nil {
			return nil, err
		}
		f.raw = d.b[start:d.i]
		fs = append(fs, f)
	}
	if d.i != len(b) {
		return nil, fmt.Errorf("%d trailing bytes", len(b)-d.i)
	}
	return fs, nil
}

// mergeDoc returns the doc old with the fields of patch (a doc that may
// hold schema keys at their default) set.
func mergeDoc(old, patch []byte) ([]byte, error) {
	a, err := docFields(old)
	if err != nil {
		return nil, fmt.Errorf("stored doc: %w", err)
	}
	p, err := docFields(patch)
	if err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	out := make([]field, 0, len(a)+len(p))
	i, j := 0, 0
	for i < len(a) || j < len(p) {
		switch {
		case j == len(p):
			out, i = append(out, a[i]), i+1
		case i == len(a):
			out, j = append(out, p[j]), j+1
		default:
			switch c := a[i].compare(p[j]); {
			case c < 0:
				out, i = append(out, a[i]), i+1
			case c > 0:
				out, j = append(out, p[j]), j+1
			default:
				out, i, j = append(out, p[j]), i+1, j+1
			}
		}
	}
	return appendDoc(make([]byte, 0, len(old)+len(patch)), out), nil
}

// decodeValue is the inverse of encodeValue, with maps as map[string]any
// in any key order: it reads the msgpack subset encodeValue writes,
// straight from b. Malformed input gives an error, never a panic or an
// allocation larger than the input.
func decodeValue(b []byte) (any, error) { return decodeAll(decoder{b: b}) }

// docDecoder returns a decoder like decodeValue's, but with maps as
// taskdb.Docs, whose keys must be sorted (as encodeValue writes them) and
// unique. The values it returns share b: its strings are substrings of one
// copy of b (one allocation for every string of a row), and its byte
// strings are slices of b itself, so the caller must not change or reuse
// b. Its Docs and arrays are carved out of c's chunks.
func docDecoder(b []byte, c *carver) decoder { return decoder{b: b, s: string(b), docs: true, c: c} }

// carver hands out the Docs and arrays of one read from a few growing
// chunks instead of allocating each on its own: a record is a dozen small
// objects, and allocating and collecting those dominates large reads.
// Results share chunks, so one result kept alive keeps its neighbours'
// memory too.
type carver struct {
	fields  []taskdb.Field
	anys    []any
	next    int        // size of the next chunk, in fields
	scratch taskdb.Doc // where decodeRow builds a record
}

// Chunk sizes: the first chunk holds a record or two, later ones double
// up to maxChunk fields (128 KiB).
const (
	minChunk = 64
	maxChunk = 4096
)

// doc returns an empty Doc with room for n fields.
func (c *carver) doc(n int) taskdb.Doc {
	if len(c.fields) < n {
		c.next = min(max(2*c.next, minChunk), maxChunk)
		c.fields = make([]taskdb.Field, max(n, c.next))
	}
	d := c.fields[:0:n]
	c.fields = c.fields[n:]
	return d
}

// array returns an array of n elements.
func (c *carver) array(n int) []any {
	if len(c.anys) < n {
		c.anys = make([]any, max(n, c.next/4, minChunk))
	}
	a := c.anys[:n:n]
	c.anys = c.anys[n:]
	return a
}

func decodeAll(d decoder) (any, error) {
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.i != len(d.b) {
		return nil, fmt.Errorf("%d trailing bytes", len(d.b)-d.i)
	}
	return v, nil
}

var errShort = errors.New("truncated value")

// decoder reads msgpack from b, at i. With docs, maps decode into
// taskdb.Docs, strings are substrings of s (a copy of b) and byte strings
// share b.
type decoder struct {
	b    []byte
	s    string
	i    int
	docs bool
	c    *carver // with docs
}

// take returns the next n bytes.
func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.i {
		return nil, errShort
	}
	p := d.b[d.i : d.i+n]
	d.i += n
	return p, nil
}

// uint reads a big-endian unsigned integer of n bytes.
func (d *decoder) uint(n int) (uint64, error) {
	p, err := d.take(n)
	if err != nil {
		return 0, err
	}
	var u uint64
	for _, c := range p {
		u = u<<8 | uint64(c)
	}
	return u, nil
}

// length reads the n-byte length that follows a str, bin, array, map or
// ext code.
func (d *decoder) length(n int) (int, error) {
	u, err := d.uint(n)
	if err != nil {
		return 0, err
	}
	if u > uint64(len(d.b)-d.i) { // every element or byte takes at least one byte
		return 0, fmt.Errorf("length %d exceeds the %d bytes left", u, len(d.b)-d.i)
	}
	return int(u), nil
}

// mapLen reads a map header.
func (d *decoder) mapLen() (int, error) {
	p, err := d.take(1)
	if err != nil {
		return 0, err
	}
	switch c := p[0]; {
	case c >= msgpcode.FixedMapLow && c <= msgpcode.FixedMapHigh:
		return int(c & msgpcode.FixedMapMask), nil
	case c == msgpcode.Map16 || c == msgpcode.Map32:
		return d.length(2 << (c - msgpcode.Map16))
	default:
		return 0, fmt.Errorf("msgpack code %#x is not a map", c)
	}
}

// key reads a map key, which must be a string.
func (d *decoder) key() (string, error) {
	p, err := d.take(1)
	if err != nil {
		return "", err
	}
	c, n := p[0], 0
	switch {
	case c >= msgpcode.FixedStrLow && c <= msgpcode.FixedStrHigh:
		n = int(c & msgpcode.FixedStrMask)
	case c == msgpcode.Str8 || c == msgpcode.Str16 || c == msgpcode.Str32:
		if n, err = d.length(1 << (c - msgpcode.Str8)); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("map key with msgpack code %#x is not a string", c)
	}
	return d.string(n)
}

// string reads n bytes as a string.
func (d *decoder) string(n int) (string, error) {
	i := d.i
	p, err := d.take(n)
	if err != nil {
		return "", err
	}
	if d.docs {
		return d.s[i : i+n], nil
	}
	return string(p), nil
}

// skip moves past one value without decoding it.
func (d *decoder) skip(depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	p, err := d.take(1)
	if err != nil {
		return err
	}
	c := p[0]
	n, items := 0, 0 // bytes and nested values that follow
	switch {
	case c <= msgpcode.PosFixedNumHigh || c >= msgpcode.NegFixedNumLow:
	case c >= msgpcode.FixedStrLow && c <= msgpcode.FixedStrHigh:
		n = int(c & msgpcode.FixedStrMask)
	case c >= msgpcode.FixedArrayLow && c <= msgpcode.FixedArrayHigh:
		items = int(c & msgpcode.FixedArrayMask)
	case c >= msgpcode.FixedMapLow && c <= msgpcode.FixedMapHigh:
		items = 2 * int(c&msgpcode.FixedMapMask)
	default:
		switch c {
		case msgpcode.Nil, msgpcode.False, msgpcode.True:
		case msgpcode.Uint8, msgpcode.Uint16, msgpcode.Uint32, msgpcode.Uint64:
			n = 1 << (c - msgpcode.Uint8)
		case msgpcode.Int8, msgpcode.Int16, msgpcode.Int32, msgpcode.Int64:
			n = 1 << (c - msgpcode.Int8)
		case msgpcode.Float:
			n = 4
		case msgpcode.Double:
			n = 8
		case msgpcode.Str8, msgpcode.Str16, msgpcode.Str32:
			n, err = d.length(1 << (c - msgpcode.Str8))
		case msgpcode.Bin8, msgpcode.Bin16, msgpcode.Bin32:
			n, err = d.length(1 << (c - msgpcode.Bin8))
		case msgpcode.Array16, msgpcode.Array32:
			items, err = d.length(2 << (c - msgpcode.Array16))
		case msgpcode.Map16, msgpcode.Map32:
			items, err = d.length(2 << (c - msgpcode.Map16))
			items *= 2
		case msgpcode.FixExt4, msgpcode.FixExt8:
			n = 1 + 4<<(c-msgpcode.FixExt4)
		case msgpcode.Ext8:
			n, err = d.length(1)
			n++
		default:
			return fmt.Errorf("unsupported msgpack code %#x", c)
		}
	}
	if err != nil {
		return err
	}
	if _, err := d.take(n); err != nil {
		return err
	}
	for range items {
		if err := d.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	p, err := d.take(1)
	if err != nil {
		return nil, err
	}
	c := p[0]
	switch {
	case c <= msgpcode.PosFixedNumHigh:
		return int64(c), nil
	case c >= msgpcode.NegFixedNumLow:
		return int64(int8(c)), nil
	case c >= msgpcode.FixedStrLow && c <= msgpcode.FixedStrHigh:
		return d.str(int(c & msgpcode.FixedStrMask))
	case c >= msgpcode.FixedArrayLow && c <= msgpcode.FixedArrayHigh:
		return d.array(int(c&msgpcode.FixedArrayMask), depth)
	case c >= msgpcode.FixedMapLow && c <= msgpcode.FixedMapHigh:
		return d.dict(int(c&msgpcode.FixedMapMask), depth)
	}
	switch c {
	case msgpcode.Nil:
		return nil, nil
	case msgpcode.False:
		return false, nil
	case msgpcode.True:
		return true, nil
	case msgpcode.Uint8, msgpcode.Uint16, msgpcode.Uint32, msgpcode.Uint64:
		u, err := d.uint(1 << (c - msgpcode.Uint8))
		if err != nil {
			return nil, err
		}
		if u > math.MaxInt64 {
			return nil, fmt.Errorf("integer %d overflows int64", u)
		}
		return int64(u), nil
	case msgpcode.Int8, msgpcode.Int16, msgpcode.Int32, msgpcode.Int64:
		n := 1 << (c - msgpcode.Int8)
		u, err := d.uint(n)
		if err != nil {
			return nil, err
		}
		shift := 64 - 8*n // sign-extend
		return int64(u<<shift) >> shift, nil
	case msgpcode.Float:
		u, err := d.uint(4)
		return float64(math.Float32frombits(uint32(u))), err
	case msgpcode.Double:
		u, err := d.uint(8)
		return math.Float64frombits(u), err
	case msgpcode.Str8, msgpcode.Str16, msgpcode.Str32:
		n, err := d.length(1 << (c - msgpcode.Str8))
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case msgpcode.Bin8, msgpcode.Bin16, msgpcode.Bin32:
		n, err := d.length(1 << (c - msgpcode.Bin8))
		if err != nil {
			return nil, err
		}
		p, err := d.take(n)
		if d.docs {
			return p[:n:n], err
		}
		return bytes.Clone(p), err
	case msgpcode.Array16, msgpcode.Array32:
		n, err := d.length(2 << (c - msgpcode.Array16))
		if err != nil {
			return nil, err
		}
		return d.array(n, depth)
	case msgpcode.Map16, msgpcode.Map32:
		n, err := d.length(2 << (c - msgpcode.Map16))
		if err != nil {
			return nil, err
		}
		return d.dict(n, depth)
	case msgpcode.FixExt4, msgpcode.FixExt8:
		return d.time(4 << (c - msgpcode.FixExt4))
	case msgpcode.Ext8:
		n, err := d.length(1)
		if err != nil {
			return nil, err
		}
		return d.time(n)
	}
	return nil, fmt.Errorf("unsupported msgpack code %#x", c)
}

func (d *decoder) str(n int) (any, error) {
	s, err := d.string(n)
	return s, err
}

func (d *decoder) array(n, depth int) (any, error) {
	if n > len(d.b)-d.i {
		return nil, errShort
	}
	var a []any
	if d.docs {
		a = d.c.array(n)
	} else {
		a = make([]any, n)
	}
	for i := range a {
		var err error
		if a[i], err = d.value(depth + 1); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (d *decoder) dict(n, depth int) (any, error) {
	if 2*n > len(d.b)-d.i {
		return nil, errShort
	}
	if d.docs {
		doc := d.c.doc(n)[:n]
		for i := range doc {
			k, err := d.key()
			if err != nil {
				return nil, err
			}
			if i > 0 && k <= doc[i-1].Key {
				return nil, fmt.Errorf("map key %q not sorted or repeated", k)
			}
			doc[i].Key = k
			if doc[i].Value, err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return doc, nil
	}
	m := make(map[string]any, n)
	for range n {
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		if m[k], err = d.value(depth + 1); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// time reads the type byte and n-byte payload of a msgpack timestamp
// (extension -1): 4, 8 or 12 bytes, holding a canonical time.
func (d *decoder) time(n int) (any, error) {
	p, err := d.take(1)
	if err != nil {
		return nil, err
	}
	if int8(p[0]) != -1 {
		return nil, fmt.Errorf("msgpack extension %d is not a timestamp", int8(p[0]))
	}
	var sec, nsec int64
	switch n {
	case 4:
		u, err := d.uint(4)
		if err != nil {
			return nil, err
		}
		sec = int64(u)
	case 8:
		u, err := d.uint(8)
		if err != nil {
			return nil, err
		}
		sec, nsec = int64(u&(1<<34-1)), int64(u>>34)
	case 12:
		u, err := d.uint(4)
		if err != nil {
			return nil, err
		}
		s, err := d.uint(8)
		if err != nil {
			return nil, err
		}
		sec, nsec = int64(s), int64(u)
	default:
		return nil, fmt.Errorf("timestamp of %d bytes", n)
	}
	if nsec >= 1e9 || nsec%1000 != 0 {
		return nil, fmt.Errorf("timestamp with %d nanoseconds", nsec)
	}
	t := time.Unix(sec, nsec).UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("timestamp in year %d", y)
	}
	return t, nil
}
