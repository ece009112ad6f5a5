package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// jsonPacker packs like jupyter_client's json_packer: json.dumps with
// ensure_ascii=False and allow_nan=False, Python's default separators
// (", " and ": ") and float repr, bytes as b2a_base64 strings (with their
// trailing newline). Invalid UTF-8 in a string is sent as U+FFFD; the
// unpacker replaces it likewise, as json_unpacker does.
type jsonPacker struct{}

func (jsonPacker) packName() string   { return "json" }
func (jsonPacker) unpackName() string { return "json" }

type jsonEmitter struct{ b []byte }

var jsonEmitters = sync.Pool{New: func() any { return &jsonEmitter{} }}

func (jsonPacker) appendPack(dst []byte, v any) ([]byte, error) {
	e := jsonEmitters.Get().(*jsonEmitter)
	e.b = dst
	err := walk(e, v, 0)
	dst, e.b = e.b, nil
	jsonEmitters.Put(e)
	return dst, err
}

func (e *jsonEmitter) null() error { e.b = append(e.b, "null"...); return nil }
func (e *jsonEmitter) boolean(v bool) error {
	e.b = strconv.AppendBool(e.b, v)
	return nil
}
func (e *jsonEmitter) int(n int64) error   { e.b = strconv.AppendInt(e.b, n, 10); return nil }
func (e *jsonEmitter) uint(n uint64) error { e.b = strconv.AppendUint(e.b, n, 10); return nil }
func (e *jsonEmitter) float(f float64) error {
	e.b = appendPyFloat(e.b, f)
	return nil
}
func (e *jsonEmitter) str(s string) error { e.b = appendPyString(e.b, s); return nil }
func (e *jsonEmitter) bin(p []byte) error {
	e.b = append(e.b, '"')
	e.b = base64.StdEncoding.AppendEncode(e.b, p)
	e.b = append(e.b, `\n"`...)
	return nil
}
func (e *jsonEmitter) beginArray(int) error { e.b = append(e.b, '['); return nil }
func (e *jsonEmitter) elem(i int) error {
	if i > 0 {
		e.b = append(e.b, ", "...)
	}
	return nil
}
func (e *jsonEmitter) endArray() error    { e.b = append(e.b, ']'); return nil }
func (e *jsonEmitter) beginMap(int) error { e.b = append(e.b, '{'); return nil }
func (e *jsonEmitter) key(i int, k string) error {
	if i > 0 {
		e.b = append(e.b, ", "...)
	}
	e.b = appendPyString(e.b, k)
	e.b = append(e.b, ": "...)
	return nil
}
func (e *jsonEmitter) endMap() error { e.b = append(e.b, '}'); return nil }

// appendPyFloat appends f as Python's repr does: the shortest digits that
// round-trip, positional for exponents in [-4, 16), with ".0" when
// integral, else d.ddde±XX.
func appendPyFloat(b []byte, f float64) []byte {
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // -d.ddddde±XX
	if s[0] == '-' {
		b = append(b, '-')
		s = s[1:]
	}
	ei := bytes.IndexByte(s, 'e')
	mant, exp := s[:ei], s[ei+1:]
	x, _ := strconv.Atoi(string(exp))
	digs := make([]byte, 0, 17)
	digs = append(digs, mant[0])
	if len(mant) > 2 {
		digs = append(digs, mant[2:]...)
	}
	if x < -4 || x >= 16 {
		b = append(b, digs[0])
		if len(digs) > 1 {
			b = append(b, '.')
			b = append(b, digs[1:]...)
		}
		b = append(b, 'e')
		if x < 0 {
			b = append(b, '-')
			x = -x
		} else {
			b = append(b, '+')
		}
		if x < 10 {
			b = append(b, '0')
		}
		return strconv.AppendInt(b, int64(x), 10)
	}
	if x < 0 {
		b = append(b, "0."...)
		for i := -1; i > x; i-- {
			b = append(b, '0')
		}
		return append(b, digs...)
	}
	// x >= 0: x+1 digits before the point.
	for i := 0; i <= x; i++ {
		if i < len(digs) {
			b = append(b, digs[i])
		} else {
			b = append(b, '0')
		}
	}
	b = append(b, '.')
	if x+1 < len(digs) {
		return append(b, digs[x+1:]...)
	}
	return append(b, '0')
}

// appendPyString appends s as a JSON string the way Python's json.dumps
// with ensure_ascii=False does: only '"', '\\' and control characters are
// escaped.
func appendPyString(b []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i++
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		default:
			b = append(b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

var errNumber = errors.New("number out of range")

func (jsonPacker) unpack(b []byte) (any, error) {
	if string(b) == "{}" { // parent, metadata or content of many messages
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if len(bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, errTrailing
	}
	return normalizeJSON(v)
}

func (p jsonPacker) unpackHeader(b []byte) (Header, error) {
	v, err := p.unpack(b)
	if err != nil {
		return Header{}, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return Header{}, errNotMap
	}
	return HeaderFromMap(m)
}

// normalizeJSON replaces json.Number in v, in place, by int64 (integer
// literals that fit) or float64.
func normalizeJSON(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		s := string(v)
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n, nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, errNumber
		}
		return f, nil
	case []any:
		for i, x := range v {
			y, err := normalizeJSON(x)
			if err != nil {
				return nil, err
			}
			v[i] = y
		}
	case map[string]any:
		for k, x := range v {
			if _, ok := x.(string); ok {
				continue
			}
			y, err := normalizeJSON(x)
			if err != nil {
				return nil, err
			}
			v[k] = y
		}
	}
	return v, nil
}
