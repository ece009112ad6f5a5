package wire_test

import (
	"errors"
	"iter"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/taskhub/taskhub/wire"
)

type status string

// pairs is an Ordered document.
type pairs [][2]any

func (p pairs) Len() int { return len(p) }
func (p pairs) All() iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		for _, kv := range p {
			if !yield(kv[0].(string), kv[1]) {
				return
			}
		}
	}
}

// TestPackGoValues packs the Go values the hub builds and checks what a
// decoder gets back: the value model, in both packers.
func TestPackGoValues(t *testing.T) {
	d := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.FixedZone("", 3600))
	n := 7
	type row struct {
		name    string
		in      any
		msgpack any // decoded by the msgpack packer
		json    any // decoded by the json packer; nil: same as msgpack
	}
	for _, c := range []row{
		{"int", 5, int64(5), nil},
		{"negative int8", int8(-100), int64(-100), nil},
		{"uint32", uint32(1 << 31), int64(1 << 31), nil},
		{"max uint64", uint64(math.MaxUint64), float64(math.MaxUint64), nil},
		{"min int64", int64(math.MinInt64), int64(math.MinInt64), nil},
		{"float32", float32(0.5), 0.5, nil},
		{"integral float", 2.0, 2.0, nil},
		{"tiny float", 5e-324, 5e-324, nil},
		{"huge float", -1.7976931348623157e308, -1.7976931348623157e308, nil},
		{"string", "ü\x00\u2028", "ü\x00\u2028", nil},
		{"named string", status("ok"), "ok", nil},
		{"invalid utf-8", "a\xffb", "a\ufffdb", nil},
		{"bytes", []byte{0, 1, 2}, []byte{0, 1, 2}, "AAEC\n"},
		{"empty bytes", []byte{}, []byte{}, "\n"},
		{"byte array", [2]byte{1, 2}, []byte{1, 2}, "AQI=\n"},
		{"time", d, "2024-01-02T02:04:05.000006Z", nil},
		{"strings", []string{"a", "b"}, []any{"a", "b"}, nil},
		{"bufs", [][]byte{{1}, nil}, []any{[]byte{1}, []byte{}}, []any{"AQ==\n", "\n"}},
		{"map of ints", map[string]int{"b": 2, "a": 1}, map[string]any{"a": int64(1), "b": int64(2)}, nil},
		{"nested", map[string]any{"x": []map[string]time.Time{{"t": d}}}, map[string]any{"x": []any{map[string]any{"t": "2024-01-02T02:04:05.000006Z"}}}, nil},
		{"pointer", &n, int64(7), nil},
		{"nil pointer", (*int)(nil), nil, nil},
		{"nil map", map[string]any(nil), map[string]any{}, nil},
		{"header", wire.Header{MsgID: "m", Date: d}, map[string]any{"msg_id": "m", "msg_type": "", "username": "", "session": "", "date": "2024-01-02T02:04:05.000006Z", "version": ""}, nil},
		{"zero header", wire.Header{}, map[string]any{}, nil},
		{"ordered", pairs{{"b", 1}, {"a", pairs{{"t", d}}}}, map[string]any{"b": int64(1), "a": map[string]any{"t": "2024-01-02T02:04:05.000006Z"}}, nil},
		{"empty ordered", pairs(nil), map[string]any{}, nil},
		{"error content", (&wire.Error{Name: "KeyError", Value: "no such msg"}).Content(),
			map[string]any{"status": "error", "ename": "KeyError", "evalue": "no such msg", "traceback": []any{}, "engine_info": map[string]any{}}, nil},
	} {
		for _, packer := range []string{"msgpack", "json"} {
			t.Run(packer+"/"+c.name, func(t *testing.T) {
				s := newSession(t, wire.Config{Packer: packer})
				b, err := s.Pack(map[string]any{"v": c.in})
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.Unpack(b)
				if err != nil {
					t.Fatalf("unpack %q: %v", b, err)
				}
				want := c.msgpack
				if packer == "json" && c.json != nil {
					want = c.json
				}
				if !reflect.DeepEqual(got["v"], want) {
					t.Errorf("packed %q, got %#v, want %#v", b, got["v"], want)
				}
			})
		}
	}
}

// TestPackOrdered checks an Ordered document keeps its key order.
func TestPackOrdered(t *testing.T) {
	s := newSession(t, wire.Config{Packer: "json"})
	b, err := s.Pack(map[string]any{"v": pairs{{"z", 1}, {"a", 2}, {"m", 3}}})
	if want := `{"v": {"z": 1, "a": 2, "m": 3}}`; err != nil || string(b) != want {
		t.Errorf("Pack = %s, %v; want %s", b, err, want)
	}
}

func TestPackErrors(t *testing.T) {
	deep := any("x")
	for range 10001 {
		deep = []any{deep}
	}
	for _, c := range []struct {
		name string
		in   any
	}{
		{"NaN", math.NaN()},
		{"Inf", math.Inf(-1)},
		{"float32 Inf", float32(math.Inf(1))},
		{"int keys", map[int]string{1: "a"}},
		{"struct", struct{ A int }{1}},
		{"chan", make(chan int)},
		{"year 10000", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"too deep", deep},
	} {
		for _, packer := range []string{"msgpack", "json"} {
			t.Run(packer+"/"+c.name, func(t *testing.T) {
				s := newSession(t, wire.Config{Packer: packer})
				if b, err := s.Pack(map[string]any{"v": c.in}); err == nil {
					t.Fatalf("packed %q", b)
				}
				m := s.NewMessage("x", map[string]any{"v": c.in}, nil)
				if f, err := s.Encode(m); err == nil {
					t.Fatalf("encoded %q", f)
				}
			})
		}
	}
}

// TestUnpack covers what Python peers may send that Go never packs.
func TestUnpack(t *testing.T) {
	for _, c := range []struct {
		packer, name string
		in           string
		want         any // nil: an error wrapping ErrMalformed
	}{
		{"msgpack", "uint64 > MaxInt64", "\x81\xa1v\xcf\xff\xff\xff\xff\xff\xff\xff\xff", float64(math.MaxUint64)},
		{"msgpack", "uint64 fits", "\x81\xa1v\xcf\x00\x00\x00\x00\x00\x00\x00\x07", int64(7)},
		{"msgpack", "int8", "\x81\xa1v\xd0\x80", int64(-128)},
		{"msgpack", "float32", "\x81\xa1v\xca\x3f\xc0\x00\x00", 1.5},
		{"msgpack", "str16", "\x81\xa1v\xda\x00\x01x", "x"},
		{"msgpack", "bin8 empty", "\x81\xa1v\xc4\x00", []byte{}},
		{"msgpack", "map16", "\x81\xa1v\xde\x00\x01\xa1k\xc0", map[string]any{"k": nil}},
		{"msgpack", "array32", "\x81\xa1v\xdd\x00\x00\x00\x01\xc3", []any{true}},
		{"msgpack", "int key", "\x81\x01\xc0", nil},
		{"msgpack", "invalid utf-8 str", "\x81\xa1v\xa2a\xff", nil},
		{"msgpack", "invalid utf-8 key", "\x81\xa1\xff\xc0", nil},
		{"msgpack", "bin key", "\x81\xc4\x01k\xc0", nil},
		{"msgpack", "ext", "\x81\xa1v\xd4\x01\x00", nil},
		{"msgpack", "timestamp ext", "\x81\xa1v\xd6\xff\x00\x00\x00\x00", nil},
		{"msgpack", "reserved 0xc1", "\x81\xa1v\xc1", nil},
		{"msgpack", "truncated", "\x81\xa1v\xda\x00\x09x", nil},
		{"msgpack", "huge array, no data", "\x81\xa1v\xdd\xff\xff\xff\xff", nil},
		{"msgpack", "huge map, no data", "\x81\xa1v\xdf\xff\xff\xff\xff", nil},
		{"msgpack", "huge bin, no data", "\x81\xa1v\xc6\xff\xff\xff\xff", nil},
		{"msgpack", "empty", "", nil},
		{"msgpack", "not a map", "\xc0", nil},
		{"json", "whitespace", " \n{\"v\": 1}\n ", int64(1)},
		{"json", "int overflow", `{"v": 9223372036854775808}`, 9223372036854775808.0},
		{"json", "min int64", `{"v": -9223372036854775808}`, int64(math.MinInt64)},
		{"json", "exponent", `{"v": 1e3}`, 1000.0},
		{"json", "fraction", `{"v": 1.0}`, 1.0},
		{"json", "negative zero", `{"v": -0.0}`, math.Copysign(0, -1)},
		{"json", "invalid utf-8", "{\"v\": \"a\xffb\"}", "a\ufffdb"},
		{"json", "escapes", `{"v": "\u00e9\ud83d\ude00\n"}`, "é😀\n"},
		{"json", "NaN", `{"v": NaN}`, nil},
		{"json", "Infinity", `{"v": Infinity}`, nil},
		{"json", "out of range", `{"v": 1e400}`, nil},
		{"json", "trailing", `{"v": 1} {}`, nil},
		{"json", "truncated", `{"v": `, nil},
		{"json", "not a map", `[]`, nil},
		{"json", "empty", ``, nil},
	} {
		t.Run(c.packer+"/"+c.name, func(t *testing.T) {
			s := newSession(t, wire.Config{Packer: c.packer})
			got, err := s.Unpack([]byte(c.in))
			if c.want == nil {
				if !errors.Is(err, wire.ErrMalformed) {
					t.Fatalf("Unpack = %#v, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got["v"], c.want) {
				t.Errorf("got %#v, want %#v", got["v"], c.want)
			}
		})
	}
}

func TestHeaderMap(t *testing.T) {
	d := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	h := wire.Header{MsgID: "m", MsgType: "t", Username: "u", Session: "s", Date: d, Version: "5.3"}
	m := h.Map()
	want := map[string]any{"msg_id": "m", "msg_type": "t", "username": "u", "session": "s", "date": d, "version": "5.3"}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("Map = %#v", m)
	}
	if back, err := wire.HeaderFromMap(m); err != nil || back != h {
		t.Errorf("HeaderFromMap(Map()) = %+v, %v", back, err)
	}
	if m := (wire.Header{MsgID: "m"}).Map(); m["date"] != nil || len(m) != 6 {
		t.Errorf("Map without date = %#v: want all keys, date nil", m)
	}
	if m := (wire.Header{}).Map(); len(m) != 0 {
		t.Errorf("zero Map = %#v", m)
	}
	for _, bad := range []map[string]any{
		{"msg_id": int64(1)},
		{"date": "yesterday"},
		{"date": int64(0)},
		{"version": []any{}},
	} {
		if _, err := wire.HeaderFromMap(bad); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("HeaderFromMap(%v) err = %v, want ErrMalformed", bad, err)
		}
	}
	got, err := wire.HeaderFromMap(map[string]any{"date": "2024-01-02T03:04:05+00:00", "extra": 1, "session": nil})
	if err != nil || got != (wire.Header{Date: d}) {
		t.Errorf("HeaderFromMap = %+v, %v", got, err)
	}
}

func TestError(t *testing.T) {
	cause := errors.New("disk on fire")
	e := &wire.Error{Name: "KeyError", Value: "msg pending: 'x'", Traceback: []string{"a", "b"}, Err: cause}
	if e.Error() != "KeyError: msg pending: 'x'" || !errors.Is(e, cause) {
		t.Errorf("Error() = %q, Is(cause) = %v", e.Error(), errors.Is(e, cause))
	}
	want := map[string]any{"status": "error", "ename": "KeyError", "evalue": "msg pending: 'x'",
		"traceback": []any{"a", "b"}, "engine_info": map[string]any{}}
	if got := e.Content(); !reflect.DeepEqual(got, want) {
		t.Errorf("Content = %#v", got)
	}
}

// TestMetadataDates: only the documented metadata keys become times.
func TestMetadataDates(t *testing.T) {
	s := newSession(t, wire.Config{Packer: "json"})
	const iso = "2024-01-02T03:04:05Z"
	d, _ := wire.ParseDate(iso)
	m := s.NewMessage("x", map[string]any{"date": iso}, nil)
	m.Metadata = map[string]any{"started": iso, "completed": iso, "date": iso, "submitted": iso, "received": iso,
		"other": iso, "nested": map[string]any{"started": iso}, "status": "2024"}
	f := encode(t, s, m)
	got, err := s.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"started": d, "completed": d, "date": d, "submitted": d, "received": d,
		"other": iso, "nested": map[string]any{"started": iso}, "status": "2024"}
	if !reflect.DeepEqual(got.Metadata, want) {
		t.Errorf("metadata = %#v", got.Metadata)
	}
	if got.Content["date"] != iso {
		t.Errorf("content date = %#v, want the string", got.Content["date"])
	}
}
