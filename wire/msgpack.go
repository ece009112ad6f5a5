package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
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

func (m *msgpackEmitter) null() error           { return m.enc.EncodeNil() }
func (m *msgpackEmitter) boolean(b bool) error  { return m.enc.EncodeBool(b) }
func (m *msgpackEmitter) int(n int64) error     { return m.enc.EncodeInt(n) }
func (m *msgpackEmitter) uint(n uint64) error   { return m.enc.EncodeUint(n) }
func (m *msgpackEmitter) float(f float64) error { return m.enc.EncodeFloat64(f) }
func (m *msgpackEmitter) str(s string) error    { return m.enc.EncodeString(validUTF8(s)) }
func (m *msgpackEmitter) bin(b []byte) error { // nil too: Python has no nil bytes
	err := m.enc.EncodeBytesLen(len(b))
	m.w.b = append(m.w.b, b...)
	return err
}
func (m *msgpackEmitter) beginArray(n int) error { return m.enc.EncodeArrayLen(n) }
func (m *msgpackEmitter) elem(int) error         { return nil }
func (m *msgpackEmitter) endArray() error        { return nil }
func (m *msgpackEmitter) beginMap(n int) error   { return m.enc.EncodeMapLen(n) }
func (m *msgpackEmitter) key(_ int, k string) error {
	return m.enc.EncodeString(validUTF8(k))
}

// validUTF8 replaces invalid UTF-8 by U+FFFD: Python's unpackb refuses it.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
func (m *msgpackEmitter) endMap() error { return nil }

type msgpackDecoder struct {
	b   []byte       // the frame
	r   bytes.Reader // reads b; dec reads through it without buffering
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
	errUTF8     = errors.New("str is not valid UTF-8")
)

func (msgpackPacker) unpack(b []byte) (v any, err error) {
	err = withDecoder(b, func(d *msgpackDecoder) (err error) {
		v, err = d.value(0)
		return err
	})
	return v, err
}

// unpackHeader decodes a header straight into a Header, without the map
// and key strings unpack would build. It accepts exactly what
// HeaderFromMap(unpack(b)) accepts: unknown keys are decoded and dropped,
// and a repeated key counts only with its last value, as in a map.
func (msgpackPacker) unpackHeader(b []byte) (h Header, err error) {
	err = withDecoder(b, func(d *msgpackDecoder) error {
		c, err := d.dec.PeekCode()
		if err != nil {
			return err
		}
		if !isMap(c) {
			return errNotMap
		}
		n, err := d.dec.DecodeMapLen()
		if err != nil {
			return err
		}
		var dateErr error
		var fieldErr [len(headerKeys)]error
		fields := h.fields()
		for range n {
			c, err := d.dec.PeekCode()
			if err != nil {
				return err
			}
			if !msgpcode.IsString(c) {
				return errMapKey
			}
			k, err := d.raw()
			if err != nil {
				return err
			}
			if !utf8.Valid(k) {
				return errUTF8
			}
			if c, err = d.dec.PeekCode(); err != nil {
				return err
			}
			isDate, i := string(k) == "date", headerField(k)
			var dst *string
			if i >= 0 {
				dst = fields[i]
			}
			switch {
			case isDate && msgpcode.IsString(c):
				v, err := d.raw()
				if err != nil {
					return err
				}
				var ok bool
				if h.Date, ok = parseDate(v); ok {
					dateErr = nil
				} else {
					dateErr = errHeaderDate(string(v))
				}
			case dst != nil && msgpcode.IsString(c):
				if *dst, err = d.string(); err != nil {
					return err
				}
				fieldErr[i] = nil
			case (isDate || dst != nil) && c == msgpcode.Nil:
				if err := d.dec.DecodeNil(); err != nil {
					return err
				}
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
	})
	return h, err
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

// withDecoder runs fn on a pooled decoder reading the whole of b.
func withDecoder(b []byte, fn func(*msgpackDecoder) error) error {
	d := msgpackDecoders.Get().(*msgpackDecoder)
	defer msgpackDecoders.Put(d)
	d.b = b
	d.r.Reset(b)
	d.dec.Reset(&d.r)
	err := fn(d)
	if err == nil && d.r.Len() != 0 {
		err = errTrailing
	}
	d.b = nil
	d.r.Reset(nil)
	return err
}

func isMap(c byte) bool { return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32 }

// raw returns the payload of the str or bin that starts at the next code,
// as a sub-slice of the frame. It checks the announced length against the
// bytes left before anything is allocated: msgpack.Decoder would allocate
// a 4 GiB buffer for a 5-byte bin32 header.
func (d *msgpackDecoder) raw() ([]byte, error) {
	n, err := d.dec.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n > d.r.Len() {
		return nil, io.ErrUnexpectedEOF
	}
	start := len(d.b) - d.r.Len()
	if _, err := d.r.Seek(int64(n), io.SeekCurrent); err != nil {
		return nil, err
	}
	return d.b[start : start+n], nil
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
		return d.string()
	case msgpcode.IsBin(c):
		b, err := d.raw()
		if err != nil {
			return nil, err
		}
		return append([]byte{}, b...), nil
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
	case isMap(c):
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
