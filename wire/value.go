package wire

import (
	"errors"
	"fmt"
	"iter"
	"math"
	"reflect"
	"slices"
	"time"
)

// emitter writes one packed value as walk visits it. msgpack needs lengths
// up front, JSON needs separators: each emitter ignores what it does not
// need.
type emitter interface {
	null() error
	boolean(bool) error
	int(int64) error
	uint(uint64) error
	float(float64) error // finite only; walk checks
	str(string) error
	bin([]byte) error
	beginArray(n int) error
	elem(i int) error // before element i
	endArray() error
	beginMap(n int) error
	key(i int, k string) error // before the value of the i-th key
	endMap() error
}

var errNaN = errors.New("NaN and Inf cannot be packed")

// walk emits v: the value model, Header, time.Time (as a FormatDate
// string), Ordered documents and, by reflection, pointers, string-keyed maps, slices, arrays
// and named basic types. Map keys are emitted in sorted order.
func walk(e emitter, v any, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	switch v := v.(type) {
	case nil:
		return e.null()
	case string:
		return e.str(v)
	case bool:
		return e.boolean(v)
	case int64:
		return e.int(v)
	case int:
		return e.int(int64(v))
	case int32:
		return e.int(int64(v))
	case uint64:
		return e.uint(v)
	case float64:
		return emitFloat(e, v)
	case float32:
		return emitFloat(e, float64(v))
	case []byte:
		return e.bin(v)
	case time.Time:
		return emitTime(e, v)
	case Header:
		return walkHeader(e, v)
	case *Header: // what Encode passes: boxing a pointer does not allocate
		if v == nil {
			return e.null()
		}
		return walkHeader(e, *v)
	case map[string]any:
		return walkMap(e, v, depth)
	case []any:
		if err := e.beginArray(len(v)); err != nil {
			return err
		}
		for i, x := range v {
			if err := e.elem(i); err != nil {
				return err
			}
			if err := walk(e, x, depth+1); err != nil {
				return err
			}
		}
		return e.endArray()
	case []string:
		if err := e.beginArray(len(v)); err != nil {
			return err
		}
		for i, x := range v {
			if err := e.elem(i); err != nil {
				return err
			}
			if err := e.str(x); err != nil {
				return err
			}
		}
		return e.endArray()
	case Ordered:
		return walkOrdered(e, v, depth)
	}
	return walkReflect(e, reflect.ValueOf(v), depth)
}

// Ordered is a document that keeps its keys in order, such as a
// taskdb.Doc: it is packed as a map with its keys in that order.
type Ordered interface {
	Len() int
	All() iter.Seq2[string, any]
}

func walkOrdered(e emitter, d Ordered, depth int) error {
	if err := e.beginMap(d.Len()); err != nil {
		return err
	}
	i := 0
	for k, v := range d.All() {
		if err := e.key(i, k); err != nil {
			return err
		}
		if err := walk(e, v, depth+1); err != nil {
			return err
		}
		i++
	}
	return e.endMap()
}

func emitFloat(e emitter, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return errNaN
	}
	return e.float(f)
}

func emitTime(e emitter, t time.Time) error {
	if !dateInRange(t) {
		return fmt.Errorf("date %v is outside years 1-9999", t)
	}
	var buf [32]byte
	return e.str(string(appendDate(buf[:0], t)))
}

// walkHeader emits h as jupyter_client orders it; a zero h is {} and a
// zero date is left out.
func walkHeader(e emitter, h Header) error {
	if h.IsZero() {
		if err := e.beginMap(0); err != nil {
			return err
		}
		return e.endMap()
	}
	n := 6
	if h.Date.IsZero() {
		n = 5
	}
	if err := e.beginMap(n); err != nil {
		return err
	}
	i := 0
	field := func(k, v string) error {
		if err := e.key(i, k); err != nil {
			return err
		}
		i++
		return e.str(v)
	}
	for _, f := range [4][2]string{{"msg_id", h.MsgID}, {"msg_type", h.MsgType}, {"username", h.Username}, {"session", h.Session}} {
		if err := field(f[0], f[1]); err != nil {
			return err
		}
	}
	if !h.Date.IsZero() {
		if err := e.key(i, "date"); err != nil {
			return err
		}
		i++
		if err := emitTime(e, h.Date); err != nil {
			return err
		}
	}
	if err := field("version", h.Version); err != nil {
		return err
	}
	return e.endMap()
}

func walkMap(e emitter, m map[string]any, depth int) error {
	var arr [16]string
	keys := arr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if err := e.beginMap(len(keys)); err != nil {
		return err
	}
	for i, k := range keys {
		if err := e.key(i, k); err != nil {
			return err
		}
		if err := walk(e, m[k], depth+1); err != nil {
			return err
		}
	}
	return e.endMap()
}

var timeType = reflect.TypeFor[time.Time]()

// walkReflect handles every other Go value walk accepts.
func walkReflect(e emitter, rv reflect.Value, depth int) error {
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return e.null()
		}
		return walk(e, rv.Elem().Interface(), depth+1)
	case reflect.Bool:
		return e.boolean(rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return e.int(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return e.uint(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return emitFloat(e, rv.Float())
	case reflect.String:
		return e.str(rv.String())
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			if rv.Kind() == reflect.Slice {
				return e.bin(rv.Bytes())
			}
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return e.bin(b)
		}
		if err := e.beginArray(rv.Len()); err != nil {
			return err
		}
		for i := range rv.Len() {
			if err := e.elem(i); err != nil {
				return err
			}
			if err := walk(e, rv.Index(i).Interface(), depth+1); err != nil {
				return err
			}
		}
		return e.endArray()
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("cannot pack %s: map keys must be strings", rv.Type())
		}
		keys := rv.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			switch sa, sb := a.String(), b.String(); {
			case sa < sb:
				return -1
			case sa > sb:
				return 1
			}
			return 0
		})
		if err := e.beginMap(len(keys)); err != nil {
			return err
		}
		for i, k := range keys {
			if err := e.key(i, k.String()); err != nil {
				return err
			}
			if err := walk(e, rv.MapIndex(k).Interface(), depth+1); err != nil {
				return err
			}
		}
		return e.endMap()
	}
	if rv.IsValid() && rv.Type().ConvertibleTo(timeType) {
		return emitTime(e, rv.Convert(timeType).Interface().(time.Time))
	}
	return fmt.Errorf("cannot pack %s", rv.Type())
}
