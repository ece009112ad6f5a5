package codec

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/taskhub/taskhub/taskdb"
)

// maxDepth bounds the nesting of stored values, as in dictdb.
const maxDepth = 100

var errDepth = errors.New("nested deeper than 100 levels")

// encoder is a pooled msgpack encoder writing into its own buffer.
type encoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}

// Encode returns v, a value in the canonical value model, as
// msgpack. Times are msgpack timestamps; []byte is bin; integers and
// floats keep their type.
func Encode(v any) ([]byte, error) {
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	e.buf.Reset()
	if err := encodeTo(e.enc, v, 0); err != nil {
		return nil, err
	}
	return bytes.Clone(e.buf.Bytes()), nil
}

func encodeTo(e *msgpack.Encoder, v any, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	switch x := v.(type) {
	case nil:
		return e.EncodeNil()
	case bool:
		return e.EncodeBool(x)
	case int64:
		return e.EncodeInt(x)
	case float64:
		return e.EncodeFloat64(x)
	case string:
		return e.EncodeString(x)
	case []byte:
		// EncodeBytes writes nil for a nil slice; a byte string is never null.
		if err := e.EncodeBytesLen(len(x)); err != nil {
			return err
		}
		_, err := e.Writer().Write(x)
		return err
	case time.Time:
		return e.EncodeTime(x)
	case []any:
		if err := e.EncodeArrayLen(len(x)); err != nil {
			return err
		}
		for _, el := range x {
			if err := encodeTo(e, el, depth+1); err != nil {
				return err
			}
		}
		return nil
	case taskdb.Doc:
		if err := e.EncodeMapLen(len(x)); err != nil {
			return err
		}
		for _, f := range x {
			if err := e.EncodeString(f.Key); err != nil {
				return err
			}
			if err := encodeTo(e, f.Value, depth+1); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if err := e.EncodeMapLen(len(x)); err != nil {
			return err
		}
		for k, el := range x {
			if err := e.EncodeString(k); err != nil {
				return err
			}
			if err := encodeTo(e, el, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("cannot store a %T", v)
}

// Decode is the inverse of Encode: it reads the msgpack subset
// Encode writes, straight from b. Malformed input gives an error,
// never a panic or an allocation larger than the input.
func Decode(b []byte) (any, error) {
	d := decoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.i != len(b) {
		return nil, fmt.Errorf("%d trailing bytes", len(b)-d.i)
	}
	return v, nil
}

// DecodeDoc is Decode for a value Encode wrote from a taskdb.Doc: it
// returns the document with its fields, and those of nested documents, in
// stored order, so a Doc stored in canonical order (taskdb.DocOf) comes
// back as it was without a map or a sort.
func DecodeDoc(b []byte) (taskdb.Doc, error) {
	d := decoder{b: b, docs: true}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.i != len(b) {
		return nil, fmt.Errorf("%d trailing bytes", len(b)-d.i)
	}
	doc, ok := v.(taskdb.Doc)
	if !ok {
		return nil, fmt.Errorf("stored value is a %T, not a document", v)
	}
	return doc, nil
}

var errShort = errors.New("truncated value")

// decoder reads msgpack from b, at i, with maps as Docs if docs is set.
type decoder struct {
	b    []byte
	i    int
	docs bool
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
	p, err := d.take(n)
	return string(p), err
}

func (d *decoder) array(n, depth int) (any, error) {
	if n > len(d.b)-d.i {
		return nil, errShort
	}
	a := make([]any, n)
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
		return d.doc(n, depth)
	}
	m := make(map[string]any, n)
	for range n {
		ks, err := d.key()
		if err != nil {
			return nil, err
		}
		if m[ks], err = d.value(depth + 1); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// key reads a map key, which must be a string; common keys are interned,
// which saves an allocation for most keys of a record.
func (d *decoder) key() (string, error) {
	p, err := d.take(1)
	if err != nil {
		return "", err
	}
	var n int
	switch c := p[0]; {
	case c >= msgpcode.FixedStrLow && c <= msgpcode.FixedStrHigh:
		n = int(c & msgpcode.FixedStrMask)
	case c == msgpcode.Str8 || c == msgpcode.Str16 || c == msgpcode.Str32:
		if n, err = d.length(1 << (c - msgpcode.Str8)); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("map key with msgpack code %#x is not a string", c)
	}
	b, err := d.take(n)
	if err != nil {
		return "", err
	}
	if k, ok := commonKeys[string(b)]; ok {
		return k, nil
	}
	return string(b), nil
}

// commonKeys are the keys of records and of ipyparallel's headers,
// metadata and contents.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range taskdb.SchemaKeys {
		m[k] = k
	}
	for _, k := range []string{
		"msg_type", "username", "session", "date", "version", "status", "engine",
		"started", "engine_id", "dependencies_met", "is_broadcast", "is_coalescing",
		"after", "follow", "timeout", "targets", "retries", "data", "ename", "evalue",
		"traceback", "execution_count", "name", "text",
	} {
		m[k] = k
	}
	return m
}()

func (d *decoder) doc(n, depth int) (any, error) {
	doc := make(taskdb.Doc, n)
	for i := range doc {
		ks, err := d.key()
		if err != nil {
			return nil, err
		}
		doc[i].Key = ks
		if doc[i].Value, err = d.value(depth + 1); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// time reads the type byte and n-byte payload of a msgpack timestamp
// (extension -1) as EncodeTime writes it: 4, 8 or 12 bytes.
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
	if nsec >= 1e9 {
		return nil, fmt.Errorf("timestamp with %d nanoseconds", nsec)
	}
	return time.Unix(sec, nsec).UTC(), nil
}
