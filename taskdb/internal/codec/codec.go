package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/internal/chunk"
)

// maxDepth bounds the nesting of stored values, as in dictdb.
const maxDepth = 100

var errDepth = errors.New("nested deeper than 100 levels")

// ErrNotCanonical reports a value outside the canonical value model: the
// caller normalizes it (taskdb.Normalize) and encodes it again.
var ErrNotCanonical = errors.New("not a canonical value")

// Encode returns v, a value in the canonical value model, as msgpack
// (see Append).
func Encode(v any) ([]byte, error) { return Append(nil, v) }

// Append appends v, a value in the canonical value model, as msgpack:
// times are msgpack timestamps, []byte is bin, integers and floats keep
// their type, and map keys are sorted, so that a map decodes into a
// taskdb.Doc in key order. A taskdb.Doc is written in its own order,
// which must be sorted too. For any value outside the canonical model
// (another type, a time below microseconds or outside years 1-9999, a Doc
// out of order) it returns ErrNotCanonical, so that callers can encode
// canonical values without copying them first.
func Append(b []byte, v any) ([]byte, error) { return appendValue(b, v, 0) }

// AppendDoc appends a record Doc (fields in record order: see
// CompareKeys) as a msgpack map, for DecodeDoc.
func AppendDoc(b []byte, d taskdb.Doc) ([]byte, error) {
	b = AppendMapLen(b, len(d))
	var err error
	for i, f := range d {
		if i > 0 && CompareKeys(d[i-1].Key, f.Key) >= 0 {
			return b, fmt.Errorf("%w: key %q out of record order", ErrNotCanonical, f.Key)
		}
		if b, err = appendValue(AppendString(b, f.Key), f.Value, 1); err != nil {
			return b, fmt.Errorf("key %q: %w", f.Key, err)
		}
	}
	return b, nil
}

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
		return AppendString(b, x), nil
	case []byte:
		b = appendLen(b, len(x), 0, 0, msgpcode.Bin8, msgpcode.Bin16, msgpcode.Bin32)
		return append(b, x...), nil
	case time.Time:
		if y := x.UTC().Year(); y < 1 || y > 9999 || x.Nanosecond()%1000 != 0 {
			return b, ErrNotCanonical
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
	case taskdb.Doc:
		b = AppendMapLen(b, len(x))
		var err error
		for i, f := range x {
			if i > 0 && x[i-1].Key >= f.Key {
				return b, ErrNotCanonical
			}
			if b, err = appendValue(AppendString(b, f.Key), f.Value, depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case map[string]any:
		b = AppendMapLen(b, len(x))
		var small [16]string
		keys := small[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var err error
		for _, k := range keys {
			b = AppendString(b, k)
			if b, err = appendValue(b, x[k], depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	}
	return b, ErrNotCanonical
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

// AppendMapLen appends the header of a map of n entries.
func AppendMapLen(b []byte, n int) []byte {
	return appendLen(b, n, msgpcode.FixedMapLow, 16, 0, msgpcode.Map16, msgpcode.Map32)
}

// AppendString appends s as a msgpack str.
func AppendString(b []byte, s string) []byte {
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

// ExtraRank is the rank of every key that is not a schema key: after
// the schema keys.
const ExtraRank = len(taskdb.SchemaKeys)

// schemaIndex maps a schema key to its index in taskdb.SchemaKeys.
var schemaIndex = func() map[string]int {
	m := make(map[string]int, len(taskdb.SchemaKeys))
	for i, k := range taskdb.SchemaKeys {
		m[k] = i
	}
	return m
}()

// Rank returns k's index in taskdb.SchemaKeys, or ExtraRank.
func Rank(k string) int {
	if i, ok := schemaIndex[k]; ok {
		return i
	}
	return ExtraRank
}

// CompareKeys orders keys as a record Doc does: schema keys in SchemaKeys
// order, then the others sorted.
func CompareKeys(a, b string) int { return CompareRanked(Rank(a), a, Rank(b), b) }

// CompareRanked is CompareKeys for keys of known ranks.
func CompareRanked(ra int, a string, rb int, b string) int {
	if ra != rb || ra != ExtraRank {
		return ra - rb
	}
	return strings.Compare(a, b)
}

// Decode is the inverse of Encode, with maps as map[string]any: it
// reads the msgpack subset Append writes, straight from b, and shares
// nothing with b. Malformed input gives an error, never a panic or an
// allocation larger than the input.
func Decode(b []byte) (any, error) {
	d := Decoder{b: b}
	v, err := d.Value()
	if err == nil {
		err = d.End()
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// DecodeDoc is the inverse of AppendDoc: it returns the record Doc, its
// Docs and arrays carved out of a's chunks, its strings substrings of one
// copy of b and its byte strings copied, so b may be reused. Keys out of
// record order (nested: out of sorted order) are an error.
func DecodeDoc(b []byte, a *chunk.Alloc) (taskdb.Doc, error) {
	d := DocDecoder(b, a)
	d.copyBytes = true
	n, err := d.MapLen()
	if err != nil {
		return nil, err
	}
	doc := a.Doc(n)[:n]
	for i := range doc {
		k, err := d.Key()
		if err != nil {
			return nil, err
		}
		if i > 0 && CompareKeys(doc[i-1].Key, k) >= 0 {
			return nil, fmt.Errorf("key %q out of record order", k)
		}
		doc[i].Key = k
		if doc[i].Value, err = d.Value(); err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
	}
	if err := d.End(); err != nil {
		return nil, err
	}
	return doc, nil
}

var errShort = errors.New("truncated value")

// A Decoder reads msgpack values from a byte slice, one after the other.
// Its zero value reads nothing; see DocDecoder.
type Decoder struct {
	b         []byte
	s         string // with docs, a copy of b
	i         int
	docs      bool
	copyBytes bool         // with docs: byte strings are copied, not shared
	a         *chunk.Alloc // with docs
}

// DocDecoder returns a Decoder of b with maps as taskdb.Docs, whose keys
// must be sorted (as Append writes them) and unique. The values it returns
// share b: its strings are substrings of one copy of b (one allocation for
// every string of a row), and its byte strings are slices of b itself, so
// the caller must not change or reuse b. Its Docs and arrays are carved
// out of a's chunks.
func DocDecoder(b []byte, a *chunk.Alloc) Decoder {
	return Decoder{b: b, s: string(b), docs: true, a: a}
}

// KeyDecoder returns a Decoder of b for reading map keys and skipping or
// slicing values (MapLen, Key, Raw, Skip, End) without copying b: the
// keys it returns alias b, so they are valid only while b is unchanged.
func KeyDecoder(b []byte) Decoder {
	return Decoder{b: b, s: unsafe.String(unsafe.SliceData(b), len(b)), docs: true}
}

// End returns an error if bytes are left after the values read.
func (d *Decoder) End() error {
	if d.i != len(d.b) {
		return fmt.Errorf("%d trailing bytes", len(d.b)-d.i)
	}
	return nil
}

// take returns the next n bytes.
func (d *Decoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.i {
		return nil, errShort
	}
	p := d.b[d.i : d.i+n]
	d.i += n
	return p, nil
}

// uint reads a big-endian unsigned integer of n bytes.
func (d *Decoder) uint(n int) (uint64, error) {
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
func (d *Decoder) length(n int) (int, error) {
	u, err := d.uint(n)
	if err != nil {
		return 0, err
	}
	if u > uint64(len(d.b)-d.i) { // every element or byte takes at least one byte
		return 0, fmt.Errorf("length %d exceeds the %d bytes left", u, len(d.b)-d.i)
	}
	return int(u), nil
}

// MapLen reads a map header and returns its number of entries.
func (d *Decoder) MapLen() (int, error) {
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

// Key reads a map key, which must be a string.
func (d *Decoder) Key() (string, error) {
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
func (d *Decoder) string(n int) (string, error) {
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

// Raw moves past one value without decoding it and returns its encoding,
// a slice of b.
func (d *Decoder) Raw() ([]byte, error) {
	start := d.i
	if err := d.skip(0); err != nil {
		return nil, err
	}
	return d.b[start:d.i:d.i], nil
}

// Skip moves past one value without decoding it.
func (d *Decoder) Skip() error { return d.skip(0) }

// skip moves past one value without decoding it.
func (d *Decoder) skip(depth int) error {
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

// Value reads one value.
func (d *Decoder) Value() (any, error) { return d.value(0) }

func (d *Decoder) value(depth int) (any, error) {
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
		switch {
		case !d.docs:
			return slices.Clone(p), err
		case d.copyBytes:
			return d.a.Clone(p), err
		}
		return p[:n:n], err
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

func (d *Decoder) str(n int) (any, error) {
	s, err := d.string(n)
	return s, err
}

func (d *Decoder) array(n, depth int) (any, error) {
	if n > len(d.b)-d.i {
		return nil, errShort
	}
	var a []any
	if d.docs {
		a = d.a.Array(n)
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

func (d *Decoder) dict(n, depth int) (any, error) {
	if 2*n > len(d.b)-d.i {
		return nil, errShort
	}
	if d.docs {
		doc := d.a.Doc(n)[:n]
		for i := range doc {
			k, err := d.Key()
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
		k, err := d.Key()
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
func (d *Decoder) time(n int) (any, error) {
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
