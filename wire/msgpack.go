package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// msgpackPacker packs like Python's msgpack.packb/unpackb defaults (msgpack
// 1.0): str as str, bytes as bin, the smallest int format (unsigned for
// non-negative ints), float64 for floats. Unpacking accepts only string map
// keys (strict_map_key) and no extension types.
type msgpackPacker struct{}

func (msgpackPacker) packName() string   { return "msgpack.packb" }
func (msgpackPacker) unpackName() string { return "msgpack.unpackb" }

// appendWriter lets msgpack.Encoder append to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *appendWriter) WriteByte(c byte) error      { w.b = append(w.b, c); return nil }

type msgpackEmitter struct {
	w   appendWriter
	enc *msgpack.Encoder
}

var msgpackEmitters = sync.Pool{New: func() any {
	m := &msgpackEmitter{}
	m.enc = msgpack.NewEncoder(&m.w)
	m.enc.UseCompactInts(true)
	return m
}}

func (msgpackPacker) appendPack(dst []byte, v any) ([]byte, error) {
	m := msgpackEmitters.Get().(*msgpackEmitter)
	m.w.b = dst
	err := walk(m, v, 0)
	dst, m.w.b = m.w.b, nil
	msgpackEmitters.Put(m)
	return dst, err
}

func (m *msgpackEmitter) null() error            { return m.enc.EncodeNil() }
func (m *msgpackEmitter) boolean(b bool) error   { return m.enc.EncodeBool(b) }
func (m *msgpackEmitter) int(n int64) error      { return m.enc.EncodeInt(n) }
func (m *msgpackEmitter) uint(n uint64) error    { return m.enc.EncodeUint(n) }
func (m *msgpackEmitter) float(f float64) error  { return m.enc.EncodeFloat64(f) }
func (m *msgpackEmitter) str(s string) error     { return m.enc.EncodeString(s) }
func (m *msgpackEmitter) bin(b []byte) error     { return m.enc.EncodeBytes(b) }
func (m *msgpackEmitter) beginArray(n int) error { return m.enc.EncodeArrayLen(n) }
func (m *msgpackEmitter) elem(int) error         { return nil }
func (m *msgpackEmitter) endArray() error        { return nil }
func (m *msgpackEmitter) beginMap(n int) error   { return m.enc.EncodeMapLen(n) }
func (m *msgpackEmitter) key(_ int, k string) error {
	return m.enc.EncodeString(k)
}
func (m *msgpackEmitter) endMap() error { return nil }

type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var msgpackDecoders = sync.Pool{New: func() any {
	d := &msgpackDecoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

var (
	errMapKey   = errors.New("map key is not a string")
	errTrailing = errors.New("trailing bytes after the value")
)

func (msgpackPacker) unpack(b []byte) (any, error) {
	d := msgpackDecoders.Get().(*msgpackDecoder)
	defer msgpackDecoders.Put(d)
	d.r.Reset(b)
	d.dec.Reset(&d.r)
	v, err := d.value(0)
	if err == nil && d.r.Len() != 0 {
		err = errTrailing
	}
	d.r.Reset(nil)
	return v, err
}

// value decodes one msgpack object into the value model.
func (d *msgpackDecoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	c, err := d.dec.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case c == msgpcode.Nil:
		return nil, d.dec.DecodeNil()
	case c == msgpcode.False || c == msgpcode.True:
		return d.dec.DecodeBool()
	case c == msgpcode.Uint64:
		n, err := d.dec.DecodeUint64()
		if n > math.MaxInt64 {
			return float64(n), err
		}
		return int64(n), err
	case msgpcode.IsFixedNum(c), c >= msgpcode.Uint8 && c <= msgpcode.Int64:
		return d.dec.DecodeInt64()
	case c == msgpcode.Float || c == msgpcode.Double:
		return d.dec.DecodeFloat64()
	case msgpcode.IsString(c):
		return d.dec.DecodeString()
	case msgpcode.IsBin(c):
		b, err := d.dec.DecodeBytes()
		if b == nil && err == nil {
			b = []byte{}
		}
		return b, err
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.dec.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		a := make([]any, 0, min(n, d.r.Len())) // each element takes a byte at least
		for range n {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.dec.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, min(n, d.r.Len()/2)) // a key and a value take 2 bytes at least
		for range n {
			c, err := d.dec.PeekCode()
			if err != nil {
				return nil, err
			}
			if !msgpcode.IsString(c) {
				return nil, errMapKey
			}
			k, err := d.dec.DecodeString()
			if err != nil {
				return nil, err
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	}
	return nil, fmt.Errorf("unsupported msgpack type 0x%02x", c)
}
