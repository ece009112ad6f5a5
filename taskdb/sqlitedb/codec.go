package sqlitedb

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
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

// encodeValue returns v, a value in the canonical value model, as
// msgpack. Times are msgpack timestamps; []byte is bin; integers and
// floats keep their type.
func encodeValue(v any) ([]byte, error) {
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

// decoder is a pooled msgpack decoder reading from its own reader.
type decoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var decoders = sync.Pool{New: func() any {
	d := &decoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

// decodeValue is the inverse of encodeValue. Malformed input gives an
// error, never a panic or an allocation larger than the input.
func decodeValue(b []byte) (any, error) {
	dec := decoders.Get().(*decoder)
	defer decoders.Put(dec)
	r, d := &dec.r, dec.dec
	r.Reset(b)
	d.Reset(r)
	v, err := decodeFrom(d, r, 0)
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes", r.Len())
	}
	return v, nil
}

func decodeFrom(d *msgpack.Decoder, r *bytes.Reader, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	if n, ok := payloadLen(r, c); ok && n > r.Len() {
		// msgpack allocates what the header claims: refuse lies first.
		return nil, fmt.Errorf("value of %d bytes in %d", n, r.Len())
	}
	switch {
	case c == msgpcode.Nil:
		return nil, d.DecodeNil()
	case c == msgpcode.False || c == msgpcode.True:
		return d.DecodeBool()
	case msgpcode.IsFixedNum(c), c == msgpcode.Int8, c == msgpcode.Int16, c == msgpcode.Int32,
		c == msgpcode.Int64, c == msgpcode.Uint8, c == msgpcode.Uint16, c == msgpcode.Uint32:
		return d.DecodeInt64()
	case c == msgpcode.Uint64:
		n, err := d.DecodeUint64()
		if err != nil {
			return nil, err
		}
		if n > 1<<63-1 {
			return nil, fmt.Errorf("integer %d overflows int64", n)
		}
		return int64(n), nil
	case c == msgpcode.Float, c == msgpcode.Double:
		return d.DecodeFloat64()
	case msgpcode.IsString(c):
		return d.DecodeString()
	case msgpcode.IsBin(c):
		b, err := d.DecodeBytes()
		if b == nil && err == nil {
			b = []byte{}
		}
		return b, err
	case msgpcode.IsExt(c):
		t, err := d.DecodeTime()
		if err != nil {
			return nil, err
		}
		return t.UTC(), nil
	case msgpcode.IsFixedArray(c), c == msgpcode.Array16, c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		if n < 0 || n > r.Len() { // every element takes at least one byte
			return nil, fmt.Errorf("array of %d elements in %d bytes", n, r.Len())
		}
		a := make([]any, n)
		for i := range a {
			if a[i], err = decodeFrom(d, r, depth+1); err != nil {
				return nil, err
			}
		}
		return a, nil
	case msgpcode.IsFixedMap(c), c == msgpcode.Map16, c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		if n < 0 || 2*n > r.Len() {
			return nil, fmt.Errorf("map of %d entries in %d bytes", n, r.Len())
		}
		m := make(map[string]any, n)
		for range n {
			kc, err := d.PeekCode()
			if err != nil {
				return nil, err
			}
			if !msgpcode.IsString(kc) {
				return nil, fmt.Errorf("map key of code %#x is not a string", kc)
			}
			k, err := d.DecodeString()
			if err != nil {
				return nil, err
			}
			if m[k], err = decodeFrom(d, r, depth+1); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	return nil, fmt.Errorf("unsupported msgpack code %#x", c)
}

// payloadLen returns the payload length that the str, bin or ext header
// starting at r's position declares, without consuming it.
func payloadLen(r *bytes.Reader, c byte) (int, bool) {
	var size int
	switch c {
	case msgpcode.Str8, msgpcode.Bin8, msgpcode.Ext8:
		size = 1
	case msgpcode.Str16, msgpcode.Bin16, msgpcode.Ext16:
		size = 2
	case msgpcode.Str32, msgpcode.Bin32, msgpcode.Ext32:
		size = 4
	default:
		return 0, false
	}
	var hdr [5]byte
	if n, _ := r.ReadAt(hdr[:1+size], r.Size()-int64(r.Len())); n < 1+size {
		return r.Len() + 1, true // truncated header
	}
	n := 0
	for _, b := range hdr[1 : 1+size] {
		n = n<<8 | int(b)
	}
	return n, true
}
