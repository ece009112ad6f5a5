package query

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"time"
)

// Doc is a read-only document that a Filter can match without it being
// converted to a map. Backends with their own record layout implement it;
// nested documents inside a Doc may be Docs too.
type Doc interface {
	// Lookup returns the value stored under key and whether key is present.
	Lookup(key string) (any, bool)
	// Len returns the number of keys.
	Len() int
}

// maxDepth bounds the nesting of values and queries, so hostile input
// cannot exhaust the stack.
const maxDepth = 100

// Normalize returns a deep copy of v in the value model: nil, bool, int64,
// float64, string, time.Time (UTC, microsecond precision, years 1–9999),
// []byte, []any and map[string]any. It also accepts the Go types that
// naturally map onto those (sized ints and uints, float32, named string,
// slice and map types, []string, map[string]string); a uint64 above
// MaxInt64 becomes a float64. Anything else is an error.
func Normalize(v any) (any, error) {
	return normalize(v, 0)
}

func normalize(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	switch x := v.(type) {
	case nil, bool, int64, float64, string:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case time.Time:
		return CanonicalTime(x)
	case []byte:
		return bytes.Clone(x), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := normalize(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = c
		}
		return out, nil
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, nil
	case [][]byte:
		out := make([]any, len(x))
		for i, b := range x {
			out[i] = bytes.Clone(b)
		}
		return out, nil
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, s := range x {
			out[k] = s
		}
		return out, nil
	}
	return normalizeReflect(reflect.ValueOf(v), depth)
}

// normalizeReflect handles the named and sized types the type switch in
// normalize does not list.
func normalizeReflect(rv reflect.Value, depth int) (any, error) {
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return float64(u), nil
		}
		return int64(u), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Slice:
		if rv.IsNil() {
			if rv.Type().Elem().Kind() == reflect.Uint8 {
				return []byte(nil), nil
			}
			return []any(nil), nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return bytes.Clone(rv.Bytes()), nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			c, err := normalize(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		if rv.IsNil() {
			return map[string]any(nil), nil
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			k := it.Key().String()
			c, err := normalize(it.Value().Interface(), depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = c
		}
		return out, nil
	}
	if !rv.IsValid() {
		return nil, nil
	}
	return nil, fmt.Errorf("unsupported type %s", rv.Type())
}

// CanonicalTime returns t in UTC truncated to the microsecond, or an error
// if its year is outside 1–9999.
func CanonicalTime(t time.Time) (time.Time, error) {
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("time %v: year outside 1-9999", y)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// isDoc reports whether v is a nested document.
func isDoc(v any) bool {
	switch v.(type) {
	case map[string]any, Doc:
		return true
	}
	return false
}

// lookup reads key from a document value; ok is false if v is not a
// document or lacks key.
func lookup(v any, key string) (any, bool) {
	switch d := v.(type) {
	case map[string]any:
		x, ok := d[key]
		return x, ok
	case Doc:
		return d.Lookup(key)
	}
	return nil, false
}

// equal reports whether a record value a equals a query operand b. b holds
// canonical types only; a may also hold Docs. Numbers compare by value
// across int64 and float64 (NaN equals NaN), times as instants, documents
// key by key regardless of order, arrays element by element.
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case int64, float64:
		c, ok := compareNumbers(a, b)
		if ok {
			return c == 0
		}
		fa, aok := a.(float64)
		fb, bok := b.(float64)
		return aok && bok && math.IsNaN(fa) && math.IsNaN(fb)
	case string:
		y, ok := b.(string)
		return ok && x == y
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	y, ok := b.(map[string]any)
	if !ok {
		return false
	}
	switch x := a.(type) {
	case map[string]any:
		if len(x) != len(y) {
			return false
		}
	case Doc:
		if x.Len() != len(y) {
			return false
		}
	default:
		return false
	}
	for k, bv := range y {
		av, ok := lookup(a, k)
		if !ok || !equal(av, bv) {
			return false
		}
	}
	return true
}

// compare orders a record value a against an operand b of the same type
// class: numbers (int64 and float64 together), strings, times, bools and
// byte strings. ok is false across classes, for NaN, and for null, arrays
// and documents.
func compare(a, b any) (c int, ok bool) {
	switch x := a.(type) {
	case int64, float64:
		return compareNumbers(a, b)
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return cmp3(x < y, x > y), true
	case time.Time:
		y, ok := b.(time.Time)
		if !ok {
			return 0, false
		}
		return x.Compare(y), true
	case bool:
		y, ok := b.(bool)
		if !ok {
			return 0, false
		}
		return cmp3(!x && y, x && !y), true
	case []byte:
		y, ok := b.([]byte)
		if !ok {
			return 0, false
		}
		return bytes.Compare(x, y), true
	}
	return 0, false
}

func cmp3(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}

// compareNumbers compares two numbers exactly, even an int64 against a
// float64 beyond 2^53. ok is false if either is not a number or is NaN.
func compareNumbers(a, b any) (int, bool) {
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return cmp3(x < y, x > y), true
		case float64:
			if math.IsNaN(y) {
				return 0, false
			}
			return compareIntFloat(x, y), true
		}
	case float64:
		if math.IsNaN(x) {
			return 0, false
		}
		switch y := b.(type) {
		case int64:
			return -compareIntFloat(y, x), true
		case float64:
			if math.IsNaN(y) {
				return 0, false
			}
			return cmp3(x < y, x > y), true
		}
	}
	return 0, false
}

// compareIntFloat compares i with a non-NaN f without rounding i.
func compareIntFloat(i int64, f float64) int {
	if f >= 0x1p63 {
		return -1
	}
	if f < -0x1p63 {
		return 1
	}
	t := math.Trunc(f)
	if ti := int64(t); i != ti {
		return cmp3(i < ti, i > ti)
	}
	return cmp3(f > t, f < t)
}

// integral returns v as an int64 if it is an int64 or a float64 whose
// truncation fits in one.
func integral(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		if math.IsNaN(x) || x >= 0x1p63 || x < -0x1p63 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}
