package query

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		q    string
		want string // the error names the field and operator
	}{
		{`{"submitted":{"$mod":[3]}}`, `field "submitted": $mod needs [divisor, remainder]`},
		{`{"n":{"$mod":[0,1]}}`, `field "n": $mod divisor must not be 0`},
		{`{"n":{"$mod":["a",1]}}`, `field "n": $mod needs [divisor, remainder] as numbers`},
		{`{"n":{"$mod":5}}`, `field "n": $mod needs`},
		{`{"n":{"$foo":1}}`, `field "n": $foo is not a known operator`},
		{`{"$foo":1}`, `$foo is not a known operator`},
		{`{"$gt":1}`, `$gt must be applied to a field`},
		{`{"n":{"$in":"abc"}}`, `field "n": $in needs an array`},
		{`{"n":{"$nin":{"a":1}}}`, `field "n": $nin needs an array`},
		{`{"n":{"$all":1}}`, `field "n": $all needs an array`},
		{`{"n":{"$regex":"("}}`, `field "n": $regex does not compile`},
		{`{"n":{"$regex":1}}`, `field "n": $regex needs a string`},
		{`{"n":{"$regex":"a","$options":"q"}}`, `field "n": $options has unknown flag`},
		{`{"n":{"$options":"i"}}`, `field "n": $options needs $regex`},
		{`{"n":{"$size":-1}}`, `field "n": $size needs a non-negative integer`},
		{`{"n":{"$size":1.5}}`, `field "n": $size needs a non-negative integer`},
		{`{"n":{"$exists":"yes"}}`, `field "n": $exists needs true or false`},
		{`{"n":{"$elemMatch":[1]}}`, `field "n": $elemMatch needs a query document`},
		{`{"n":{"$not":1}}`, `field "n": $not needs a non-empty operator document`},
		{`{"n":{"$not":{}}}`, `field "n": $not needs`},
		{`{"n":{"$not":{"a":1}}}`, `field "n": $not needs`},
		{`{"n":{"$and":[{}]}}`, `field "n": $and is only allowed at the top level`},
		{`{"n":{"$gt":1,"x":2}}`, `field "n": mixes operators and the plain key "x"`},
		{`{"$and":[]}`, `$and needs a non-empty array`},
		{`{"$or":{}}`, `$or needs a non-empty array`},
		{`{"$nor":[1]}`, `$nor needs a non-empty array of query documents, element 0`},
		{`{"$and":[{"n":{"$bad":1}}]}`, `field "n": $bad is not a known operator`},
		{`{"n":{"$elemMatch":{"$gt":1,"$zz":2}}}`, `field "n": $zz is not a known operator`},
		{`{"a..b":1}`, `field "a..b": is not a valid dotted path`},
		{`{".a":1}`, `is not a valid dotted path`},
		{`{"":1}`, `is not a valid dotted path`},
		{`[1]`, `must be a JSON object`},
		{`{"a":1} x`, `data after the query document`},
		{`{"a":`, `bad JSON`},
		{`{"a":1e999}`, `out of range`},
		{`{"a":{"$date":"yesterday"}}`, `$date`},
		{`{"a":{"$date":"20000-01-01T00:00:00Z"}}`, `$date`},
		{`{"a":{"$binary":"!!"}}`, `$binary`},
		{`{"a":{"$numberDouble":"1"}}`, `$numberDouble`},
	} {
		t.Run(c.q, func(t *testing.T) {
			f, err := ParseJSON([]byte(c.q))
			if err == nil {
				t.Fatalf("parsed as %s, want an error", f)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("error %v is not a *SyntaxError", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestParseGoValues(t *testing.T) {
	zone := time.FixedZone("x", 3600)
	f, err := Parse(map[string]any{
		"n":    map[string]any{"$in": []int{1, 2}},
		"s":    map[string]any{"$in": []string{"a"}},
		"t":    time.Date(2024, 1, 1, 1, 0, 0, 999, zone),
		"u":    uint64(math.MaxUint64),
		"f":    float32(0.5),
		"size": map[string]any{"$size": uint8(2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"f":{"$eq":0.5},"n":{"$in":[1,2]},"s":{"$in":["a"]},"size":{"$size":2},"t":{"$eq":{"$date":"2024-01-01T00:00:00.000000Z"}},"u":{"$eq":18446744073709551615.0}}`
	if got := f.String(); got != want && got != strings.Replace(want, "18446744073709551615.0", "1.8446744073709552e+19", 1) {
		t.Errorf("String() = %s\nwant %s", got, want)
	}
	if _, err := Parse(map[string]any{"c": make(chan int)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("channel operand: %v, want ErrInvalid", err)
	}
}

func TestNumbers(t *testing.T) {
	big := int64(1) << 53
	for _, c := range []struct {
		a, b any
		want int
		ok   bool
	}{
		{int64(1), 1.0, 0, true},
		{int64(1), 1.5, -1, true},
		{int64(2), 1.5, 1, true},
		{int64(-2), -1.5, -1, true},
		{big + 1, float64(big), 1, true}, // float64(big+1) would round to big
		{float64(big), big + 1, -1, true},
		{int64(math.MaxInt64), 0x1p63, -1, true},
		{int64(math.MinInt64), -0x1p63, 0, true},
		{int64(math.MinInt64), math.Inf(-1), 1, true},
		{int64(0), math.NaN(), 0, false},
		{math.NaN(), math.NaN(), 0, false},
		{"a", int64(1), 0, false},
		{true, int64(1), 0, false},
		{nil, nil, 0, false},
	} {
		got, ok := compare(c.a, c.b)
		if got != c.want || ok != c.ok {
			t.Errorf("compare(%v, %v) = %d, %v; want %d, %v", c.a, c.b, got, ok, c.want, c.ok)
		}
	}
	if !equal(math.NaN(), math.NaN()) || equal(math.NaN(), 1.0) {
		t.Error("NaN must equal NaN only")
	}
}

func TestHints(t *testing.T) {
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := Parse(map[string]any{
		"completed":   nil,
		"client_uuid": map[string]any{"$in": []any{"a", "b"}, "$ne": "c"},
		"$and":        []any{map[string]any{"submitted": map[string]any{"$gte": ts}}},
		"$or":         []any{map[string]any{"engine_uuid": "e"}},
		"queue":       map[string]any{"$exists": false},
		"stdout":      map[string]any{"$exists": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Hint{}
	for _, h := range f.Hints() {
		got[h.Path] = h
	}
	if len(got) != 4 {
		t.Errorf("hints for %v, want completed, client_uuid, submitted, queue", got)
	}
	if h := got["completed"]; !h.Eq || len(h.Values) != 1 || h.Values[0] != nil {
		t.Errorf("completed: %+v", h)
	}
	if h := got["client_uuid"]; !h.Eq || len(h.Values) != 2 {
		t.Errorf("client_uuid: %+v", h)
	}
	if h := got["submitted"]; h.Eq || h.Lower != ts || !h.LowerIncl || h.Upper != nil {
		t.Errorf("submitted: %+v", h)
	}
	if h := got["queue"]; !h.Eq || h.Values[0] != nil {
		t.Errorf("queue: %+v", h)
	}
}

func TestMatchDocAndMap(t *testing.T) {
	f := MustParse(`{"h.k":{"$in":[1,"x"]},"l":{"$elemMatch":{"a":{"$gt":1}}}}`)
	m := map[string]any{"h": map[string]any{"k": "x"}, "l": []any{map[string]any{"a": int64(2)}}}
	if !f.Match(m) || !f.MatchDoc(toDoc(m).(Doc)) {
		t.Error("filter does not match the map and its Doc form")
	}
	m["l"] = []any{map[string]any{"a": int64(1)}}
	if f.Match(m) || f.MatchDoc(toDoc(m).(Doc)) {
		t.Error("filter matches after the element changed")
	}
}

// sliceDoc is a Doc backed by ordered fields, like a backend's compact
// document.
type sliceDoc []struct {
	k string
	v any
}

func (d sliceDoc) Lookup(k string) (any, bool) {
	for _, f := range d {
		if f.k == k {
			return f.v, true
		}
	}
	return nil, false
}

func (d sliceDoc) Len() int { return len(d) }

// toDoc converts every map inside v to a sliceDoc.
func toDoc(v any) any {
	switch x := v.(type) {
	case map[string]any:
		d := make(sliceDoc, 0, len(x))
		for _, k := range sortedKeys(x) {
			d = append(d, struct {
				k string
				v any
			}{k, toDoc(x[k])})
		}
		return d
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toDoc(e)
		}
		return out
	}
	return v
}

func TestNilFilter(t *testing.T) {
	var f *Filter
	if !f.Match(map[string]any{"a": 1}) || !f.MatchDoc(sliceDoc{}) || f.String() != "{}" || f.Hints() != nil {
		t.Error("a nil filter must behave like {}")
	}
}

func TestFields(t *testing.T) {
	for _, c := range []struct{ q, want string }{
		{`{}`, ``},
		{`{"completed":null}`, `completed`},
		{`{"header.msg_type":"x","client_uuid":"c","header":{"$exists":true}}`, `client_uuid header`},
		{`{"$or":[{"a":1},{"$nor":[{"b.c":2}]}],"$and":[{"d":{"$elemMatch":{"e":1}}}]}`, `a b d`},
		{`{"n":{"$not":{"$gt":1}}}`, `n`},
	} {
		if got := strings.Join(MustParse(c.q).Fields(), " "); got != c.want {
			t.Errorf("Fields(%s) = %q, want %q", c.q, got, c.want)
		}
	}
	if (*Filter)(nil).Fields() != nil {
		t.Error("nil filter has fields")
	}
}
