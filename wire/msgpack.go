package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// msgpackPacker packs like Python's msgpack.packb/unpackb defaults (msgpack
// 1.0): str as str, bytes as bin, the smallest int format (unsigned for
// non-negative ints), float64 for floats. Unpacking accepts only string map
// keys (strict_map_key), str in valid UTF-8 (raw=False) and no extension
// types. Go strings that are not valid UTF-8 are sent with U+FFFD in place
// of the invalid bytes.
type msgpackPacker struct{}

func (msgpackPacker) packName() string   { return "msgpack.packb" }
func (msgpackPacker) unpackName() string { return "msgpack.unpackb" }

// msgpackEmitter appends packed values to b.
type msgpackEmitter struct{ b []byte }

var msgpackEmitters = sync.Pool{New: func() any { return &msgpackEmitter{} }}

func (msgpackPacker) appendPack(dst []byte, v any) ([]byte, error) {
	m := msgpackEmitters.Get().(*msgpackEmitter)
	m.b = dst
	err := walk(m, v, 0)
	dst, m.b = m.b, nil
	msgpackEmitters.Put(m)
	return dst, err
}

func (m *msgpackEmitter) null() error { m.b = append(m.b, mpNil); return nil }
func (m *msgpackEmitter) boolean(b bool) error {
	c := byte(mpFalse)
	if b {
		c = mpTrue
	}
	m.b = append(m.b, c)
	return nil
}

// int packs n in the smallest format, unsigned when n >= 0, as msgpack
// 1.0's packb does.
func (m *msgpackEmitter) int(n int64) error {
	switch {
	case n >= 0:
		return m.uint(uint64(n))
	case n >= -32:
		m.b = append(m.b, byte(n)) // negative fixint
	case n >= math.MinInt8:
		m.b = append(m.b, mpInt8, byte(n))
	case n >= math.MinInt16:
		m.b = binary.BigEndian.AppendUint16(append(m.b, mpInt16), uint16(n))
	case n >= math.MinInt32:
		m.b = binary.BigEndian.AppendUint32(append(m.b, mpInt32), uint32(n))
	default:
		m.b = binary.BigEndian.AppendUint64(append(m.b, mpInt64), uint64(n))
	}
	return nil
}

func (m *msgpackEmitter) uint(n uint64) error {
	switch {
	case n <= math.MaxInt8:
		m.b = append(m.b, byte(n)) // positive fixint
	case n <= math.MaxUint8:
		m.b = append(m.b, mpUint8, byte(n))
	case n <= math.MaxUint16:
		m.b = binary.BigEndian.AppendUint16(append(m.b, mpUint16), uint16(n))
	case n <= math.MaxUint32:
		m.b = binary.BigEndian.AppendUint32(append(m.b, mpUint32), uint32(n))
	default:
		m.b = binary.BigEndian.AppendUint64(append(m.b, mpUint64), n)
	}
	return nil
}

func (m *msgpackEmitter) float(f float64) error {
	m.b = binary.BigEndian.AppendUint64(append(m.b, mpFloat64), math.Float64bits(f))
	return nil
}

func (m *msgpackEmitter) str(s string) error {
	s = validUTF8(s)
	m.b = append(m.head(len(s), mpFixStr, 32, mpStr8, mpStr16, mpStr32), s...)
	return nil
}

func (m *msgpackEmitter) bin(b []byte) error { // nil too: Python has no nil bytes
	m.b = append(m.head(len(b), 0, 0, mpBin8, mpBin16, mpBin32), b...)
	return nil
}

func (m *msgpackEmitter) beginArray(n int) error {
	m.b = m.head(n, mpFixArray, 16, 0, mpArray16, mpArray32)
	return nil
}
func (m *msgpackEmitter) elem(int) error  { return nil }
func (m *msgpackEmitter) endArray() error { return nil }
func (m *msgpackEmitter) beginMap(n int) error {
	m.b = m.head(n, mpFixMap, 16, 0, mpMap16, mpMap32)
	return nil
}
func (m *msgpackEmitter) key(_ int, k string) error { return m.str(k) }
func (m *msgpackEmitter) endMap() error             { return nil }

// head appends the code and length of a str, bin, array or map of n
// elements: the fix code (fix|n) when n < fixMax, else the 8-bit form
// (when the type has one, c8 != 0), the 16-bit or the 32-bit one.
func (m *msgpackEmitter) head(n int, fix byte, fixMax int, c8, c16, c32 byte) []byte {
	switch {
	case n < fixMax:
		return append(m.b, fix|byte(n))
	case c8 != 0 && n <= math.MaxUint8:
		return append(m.b, c8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(m.b, c16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(m.b, c32), uint32(n))
}

// validUTF8 replaces invalid UTF-8 by U+FFFD: Python's unpackb refuses it.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// msgpackDecoder reads one frame: b[i:] is what is left.
type msgpackDecoder struct {
	b []byte
	i int
}

var (
	errMapKey   = errors.New("map key is not a string")
	errTrailing = errors.New("trailing bytes after the value")
	errUTF8     = errors.New("str is not valid UTF-8")
)

func (msgpackPacker) unpack(b []byte) (v any, err error) {
	d := msgpackDecoder{b: b}
	if v, err = d.value(0); err == nil {
		err = d.end()
	}
	return v, err
}

// unpackHeader decodes a header straight into a Header, without the map
// and key strings unpack would build. It accepts exactly what
// HeaderFromMap(unpack(b)) accepts: unknown keys are decoded and dropped,
// and a repeated key counts only with its last value, as in a map.
func (msgpackPacker) unpackHeader(b []byte) (h Header, err error) {
	d := msgpackDecoder{b: b}
	if err = d.header(&h); err == nil {
		err = d.end()
	}
	return h, err
}

func (d *msgpackDecoder) header(h *Header) error {
	c, err := d.peek()
	if err != nil {
		return err
	}
	if !isMap(c) {
		return errNotMap
	}
	n, err := d.length()
	if err != nil {
		return err
	}
	var dateErr error
	var fieldErr [len(headerKeys)]error
	fields := h.fields()
	for range n {
		c, err := d.peek()
		if err != nil {
			return err
		}
		if !isStr(c) {
			return errMapKey
		}
		k, err := d.raw()
		if err != nil {
			return err
		}
		if !utf8.Valid(k) {
			return errUTF8
		}
		if c, err = d.peek(); err != nil {
			return err
		}
		isDate, i := string(k) == "date", headerField(k)
		var dst *string
		if i >= 0 {
			dst = fields[i]
		}
		switch {
		case isDate && isStr(c):
			v, err := d.raw()
			if err != nil {
				return err
			}
			var ok bool
			switch h.Date, ok = parseDate(v); {
			case ok:
				dateErr = nil
			case !utf8.Valid(v): // a date is ASCII; unpack refuses invalid UTF-8 whatever follows
				return errUTF8
			default:
				dateErr = errHeaderDate(string(v))
			}
		case dst != nil && isStr(c):
			if *dst, err = d.string(); err != nil {
				return err
			}
			fieldErr[i] = nil
		case (isDate || dst != nil) && c == mpNil:
			d.i++
			if isDate {
				h.Date, dateErr = time.Time{}, nil
			} else {
				*dst, fieldErr[i] = "", nil
			}
		default:
			v, err := d.value(1)
			if err != nil {
				return err
			}
			if isDate {
				dateErr = errHeaderType(string(k), v)
			} else if dst != nil {
				fieldErr[i] = errHeaderType(string(k), v)
			}
		}
	}
	if dateErr != nil {
		return dateErr
	}
	for _, err := range fieldErr {
		if err != nil {
			return err
		}
	}
	return nil
}

// key decodes a map key, sharing the strings of the protocol's usual keys
// instead of allocating them for every message.
func (d *msgpackDecoder) key() (string, error) {
	b, err := d.raw()
	if err != nil {
		return "", err
	}
	if k, ok := protocolKeys[string(b)]; ok {
		return k, nil
	}
	if !utf8.Valid(b) {
		return "", errUTF8
	}
	return string(b), nil
}

var protocolKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		// header
		"msg_id", "msg_type", "username", "session", "date", "version",
		// task metadata
		"after", "follow", "timeout", "targets", "retries", "started", "status", "engine",
		"dependencies_met", "is_broadcast", "is_coalescing", "original_msg_id", "engine_info",
		"engine_uuid", "engine_id", "method", "completed", "submitted", "received",
		// query and reply content
		"msg_ids", "status_only", "keys", "query", "verbose", "ename", "evalue", "traceback",
		"engines", "history", "records", "buffer_lens", "result_buffer_lens", "content",
		"header", "metadata", "buffers", "result_header", "result_content", "result_metadata",
		"result_buffers", "queue", "tasks", "unassigned", "pending", "execution_state", "uuid", "id",
	} {
		m[k] = k
	}
	return m
}()

// msgpack codes (the format's spec).
const (
	mpFixMap   = 0x80 // to 0x8f
	mpFixArray = 0x90 // to 0x9f
	mpFixStr   = 0xa0 // to 0xbf
	mpNil      = 0xc0
	mpFalse    = 0xc2
	mpTrue     = 0xc3
	mpBin8     = 0xc4
	mpBin16    = 0xc5
	mpBin32    = 0xc6
	mpFloat32  = 0xca
	mpFloat64  = 0xcb
	mpUint8    = 0xcc
	mpUint16   = 0xcd
	mpUint32   = 0xce
	mpUint64   = 0xcf
	mpInt8     = 0xd0
	mpInt16    = 0xd1
	mpInt32    = 0xd2
	mpInt64    = 0xd3
	mpStr8     = 0xd9
	mpStr16    = 0xda
	mpStr32    = 0xdb
	mpArray16  = 0xdc
	mpArray32  = 0xdd
	mpMap16    = 0xde
	mpMap32    = 0xdf
	mpNegFix   = 0xe0 // to 0xff
)

func isMap(c byte) bool   { return c&0xf0 == mpFixMap || c == mpMap16 || c == mpMap32 }
func isArray(c byte) bool { return c&0xf0 == mpFixArray || c == mpArray16 || c == mpArray32 }
func isStr(c byte) bool   { return c&0xe0 == mpFixStr || c == mpStr8 || c == mpStr16 || c == mpStr32 }
func isBin(c byte) bool   { return c == mpBin8 || c == mpBin16 || c == mpBin32 }

// end reports an error unless the whole frame was read.
func (d *msgpackDecoder) end() error {
	if d.i != len(d.b) {
		return errTrailing
	}
	return nil
}

// peek returns the next code without consuming it.
func (d *msgpackDecoder) peek() (byte, error) {
	if d.i >= len(d.b) {
		return 0, io.ErrUnexpectedEOF
	}
	return d.b[d.i], nil
}

// next consumes n bytes.
func (d *msgpackDecoder) next(n int) ([]byte, error) {
	if n > len(d.b)-d.i {
		return nil, io.ErrUnexpectedEOF
	}
	p := d.b[d.i : d.i+n]
	d.i += n
	return p, nil
}

// uintN consumes a big-endian unsigned int of n (1, 2, 4 or 8) bytes.
func (d *msgpackDecoder) uintN(n int) (uint64, error) {
	p, err := d.next(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
	return binary.BigEndian.Uint64(p), nil
}

// length consumes the code of a str, bin, array or map and returns the
// element count (bytes for str and bin) it announces.
func (d *msgpackDecoder) length() (int, error) {
	c, err := d.peek()
	if err != nil {
		return 0, err
	}
	d.i++
	var size int // bytes of the length after the code
	switch c {
	case mpStr8, mpBin8:
		size = 1
	case mpStr16, mpBin16, mpArray16, mpMap16:
		size = 2
	case mpStr32, mpBin32, mpArray32, mpMap32:
		size = 4
	default:
		if c&0xe0 == mpFixStr {
			return int(c & 0x1f), nil
		}
		return int(c & 0x0f), nil // fixarray, fixmap
	}
	n, err := d.uintN(size)
	return int(n), err
}

// raw returns the payload of the str or bin that starts at the next code,
// as a sub-slice of the frame. It checks the announced length against the
// bytes left before anything is allocated.
func (d *msgpackDecoder) raw() ([]byte, error) {
	n, err := d.length()
	if err != nil {
		return nil, err
	}
	return d.next(n)
}

func (d *msgpackDecoder) string() (string, error) {
	b, err := d.raw()
	if err == nil && !utf8.Valid(b) {
		err = errUTF8
	}
	return string(b), err
}

// value decodes one msgpack object into the value model.
func (d *msgpackDecoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	c, err := d.peek()
	if err != nil {
		return nil, err
	}
	switch {
	case c <= 0x7f || c >= mpNegFix: // fixints
		d.i++
		return int64(int8(c)), nil
	case c == mpNil:
		d.i++
		return nil, nil
	case c == mpFalse || c == mpTrue:
		d.i++
		return c == mpTrue, nil
	case c >= mpUint8 && c <= mpInt64:
		d.i++
		n, err := d.uintN(1 << ((c - mpUint8) & 3))
		if err != nil {
			return nil, err
		}
		switch c {
		case mpUint64:
			if n > math.MaxInt64 {
				return float64(n), nil
			}
		case mpInt8:
			return int64(int8(n)), nil
		case mpInt16:
			return int64(int16(n)), nil
		case mpInt32:
			return int64(int32(n)), nil
		}
		return int64(n), nil
	case c == mpFloat32:
		d.i++
		n, err := d.uintN(4)
		return float64(math.Float32frombits(uint32(n))), err
	case c == mpFloat64:
		d.i++
		n, err := d.uintN(8)
		return math.Float64frombits(n), err
	case isStr(c):
		return d.string()
	case isBin(c):
		b, err := d.raw()
		if err != nil {
			return nil, err
		}
		return append([]byte{}, b...), nil
	case isArray(c):
		n, err := d.length()
		if err != nil {
			return nil, err
		}
		a := make([]any, 0, min(n, len(d.b)-d.i)) // each element takes a byte at least
		for range n {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	case isMap(c):
		n, err := d.length()
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, min(n, (len(d.b)-d.i)/2)) // a key and a value take 2 bytes at least
		for range n {
			c, err := d.peek()
			if err != nil {
				return nil, err
			}
			if !isStr(c) {
				return nil, errMapKey
			}
			k, err := d.key()
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
