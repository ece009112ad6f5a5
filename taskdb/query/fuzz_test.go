package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// seedQueries are valid and invalid queries covering every operator.
var seedQueries = []string{
	`{}`,
	`{"completed":null}`,
	`{"completed":{"$exists":false}}`,
	`{"client_uuid":"c1","completed":null}`,
	`{"msg_id":{"$in":["a","b"]}}`,
	`{"submitted":{"$lt":{"$date":"2024-01-02T03:04:05.123456Z"}}}`,
	`{"submitted":{"$gte":{"$date":"2024-01-02T03:04:05+01:00"},"$ne":null}}`,
	`{"n":{"$gt":1,"$lte":4.5}}`,
	`{"n":{"$mod":[3,1]}}`,
	`{"n":{"$nin":[1,"1",null,true]}}`,
	`{"tags":{"$all":["x","y"]}}`,
	`{"tags":{"$size":2}}`,
	`{"tags":{"$elemMatch":{"k":{"$gte":2}}}}`,
	`{"tags":{"$elemMatch":{"$gt":"a"}}}`,
	`{"tags.k":2,"tags.0":"x"}`,
	`{"header.msg_type":{"$regex":"^apply","$options":"i"}}`,
	`{"s":{"$regex":"a b # c","$options":"x"}}`,
	`{"n":{"$not":{"$gt":3}}}`,
	`{"$or":[{"a":1},{"b":{"$exists":true}}],"$nor":[{"c":[1,2]}]}`,
	`{"$and":[{"a":{"$ne":1}},{"a":{"$ne":null}}]}`,
	`{"content":{"a":5}}`,
	`{"b":{"$binary":"AAEC"},"f":{"$numberDouble":"NaN"},"g":{"$numberDouble":"-Infinity"}}`,
	`{"n":{"$eq":[1,{"a":[]}]}}`,
	`{"n":{"$mod":[0,1]}}`,
	`{"n":{"$in":1}}`,
	`{"$gt":1}`,
	`{"a":{"$regex":"("}}`,
}

// seedDocs are the documents matched during fuzzing.
var seedDocs = []string{
	`{}`,
	`{"completed":null,"client_uuid":"c1","msg_id":"a","n":3}`,
	`{"completed":{"$date":"2024-01-02T03:04:05Z"},"submitted":{"$date":"2024-01-02T03:04:05.123456Z"},"n":4.5}`,
	`{"tags":["x","y"],"n":"3","s":"ab","header":{"msg_type":"Apply_request"}}`,
	`{"tags":[{"k":1},{"k":2},[3]],"n":true,"content":{"a":5.0},"c":[1,2]}`,
	`{"tags":[],"n":null,"b":{"$binary":"AAEC"},"f":{"$numberDouble":"NaN"},"a":[null,1]}`,
	`{"n":-7,"tags":["x",null,{"k":[2]}],"g":{"$numberDouble":"-Infinity"},"a":{"b":[{"c":1}]}}`,
}

func decodeDoc(t testing.TB, s string) (map[string]any, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var raw any
	if dec.Decode(&raw) != nil {
		return nil, false
	}
	v, err := fromJSON(raw)
	if err != nil {
		return nil, false
	}
	m, ok := v.(map[string]any)
	return m, ok
}

func FuzzParse(f *testing.F) {
	for _, q := range seedQueries {
		f.Add(q)
	}
	var docs []map[string]any
	for _, s := range seedDocs {
		d, ok := decodeDoc(f, s)
		if !ok {
			f.Fatalf("bad seed doc %s", s)
		}
		docs = append(docs, d)
	}
	f.Fuzz(func(t *testing.T, q string) {
		flt, err := ParseJSON([]byte(q))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		s := flt.String()
		again, err := ParseJSON([]byte(s))
		if err != nil {
			t.Fatalf("String() %s does not parse: %v", s, err)
		}
		if s2 := again.String(); s2 != s {
			t.Fatalf("String() is not a fixed point:\n%s\n%s", s, s2)
		}
		flt.Hints()
		for _, d := range docs {
			if flt.Match(d) != again.Match(d) {
				t.Fatalf("%s and its String() %s disagree on %v", q, s, d)
			}
			flt.MatchDoc(toDoc(d).(Doc))
		}
	})
}

func FuzzMatch(f *testing.F) {
	for _, q := range seedQueries {
		for _, d := range seedDocs {
			f.Add(q, d)
		}
	}
	f.Fuzz(func(t *testing.T, q, d string) {
		doc, ok := decodeDoc(t, d)
		if !ok {
			return
		}
		flt, err := ParseJSON([]byte(q))
		if err != nil {
			return
		}
		var raw map[string]any
		qd, _ := decodeDoc(t, q)
		raw = qd
		want := refMatch(raw, doc)
		if got := flt.Match(doc); got != want {
			t.Fatalf("Match(%s, %s) = %v, reference says %v", q, d, got, want)
		}
		if got := flt.MatchDoc(toDoc(doc).(Doc)); got != want {
			t.Fatalf("MatchDoc(%s, %s) = %v, reference says %v", q, d, got, want)
		}
	})
}

// The reference matcher below is written straight from the package
// documentation, as plainly as possible, sharing no code with the filter.

func refMatch(q, doc map[string]any) bool {
	for k, v := range q {
		var ok bool
		switch k {
		case "$and", "$or", "$nor":
			n := 0
			for _, sub := range v.([]any) {
				if refMatch(sub.(map[string]any), doc) {
					n++
				}
			}
			l := len(v.([]any))
			ok = k == "$and" && n == l || k == "$or" && n > 0 || k == "$nor" && n == 0
		default:
			ok = refField(doc, k, v)
		}
		if !ok {
			return false
		}
	}
	return true
}

func refField(doc any, path string, v any) bool {
	ops, isMap := v.(map[string]any)
	if !isMap || !refIsOps(ops) {
		return refOp(doc, path, "$eq", v, nil)
	}
	for op, arg := range ops {
		if op != "$options" && !refOp(doc, path, op, arg, ops) {
			return false
		}
	}
	return true
}

func refIsOps(m map[string]any) bool {
	for k := range m {
		if strings.HasPrefix(k, "$") {
			return true
		}
	}
	return false
}

// refResolve lists the values path reaches in v; nil stands for missing.
func refResolve(v any, parts []string) []any {
	if len(parts) == 0 {
		return []any{v}
	}
	switch x := v.(type) {
	case map[string]any:
		return refResolve(x[parts[0]], parts[1:])
	case []any:
		if i, err := strconv.Atoi(parts[0]); err == nil {
			if i < 0 || i >= len(x) {
				return []any{nil}
			}
			return refResolve(x[i], parts[1:])
		}
		var out []any
		reached := false
		for _, e := range x {
			if _, ok := e.(map[string]any); ok {
				reached = true
				out = append(out, refResolve(e, parts)...)
			}
		}
		if !reached {
			out = append(out, nil)
		}
		return out
	}
	return []any{nil}
}

// refCandidates is v followed by its elements if it is an array.
func refCandidates(v any) []any {
	out := []any{v}
	if arr, ok := v.([]any); ok {
		out = append(out, arr...)
	}
	return out
}

func refOp(doc any, path, op string, arg any, ops map[string]any) bool {
	vals := refResolve(doc, strings.Split(path, "."))
	some := func(pred func(any) bool) bool {
		for _, v := range vals {
			for _, c := range refCandidates(v) {
				if pred(c) {
					return true
				}
			}
		}
		return false
	}
	switch op {
	case "$eq":
		return some(func(c any) bool { return refEqual(c, arg) })
	case "$ne":
		return !refOp(doc, path, "$eq", arg, nil)
	case "$lt", "$lte", "$gt", "$gte":
		return some(func(c any) bool {
			r, ok := refCompare(c, arg)
			return ok && (op == "$lt" && r < 0 || op == "$lte" && r <= 0 || op == "$gt" && r > 0 || op == "$gte" && r >= 0)
		})
	case "$in":
		for _, x := range arg.([]any) {
			if refOp(doc, path, "$eq", x, nil) {
				return true
			}
		}
		return false
	case "$nin":
		return !refOp(doc, path, "$in", arg, nil)
	case "$all":
		for _, x := range arg.([]any) {
			if !refOp(doc, path, "$eq", x, nil) {
				return false
			}
		}
		return len(arg.([]any)) > 0
	case "$exists":
		want := arg != false && arg != int64(0) && arg != 0.0
		for _, v := range vals {
			if v != nil {
				return want
			}
		}
		return !want
	case "$mod":
		a := arg.([]any)
		d, r := refTrunc(a[0]), refTrunc(a[1])
		return some(func(c any) bool {
			switch c.(type) {
			case int64, float64:
				f, ok := c.(float64)
				if ok && (math.IsNaN(f) || math.Abs(f) >= 0x1p63) {
					return false
				}
				return refTrunc(c)%d == r
			}
			return false
		})
	case "$regex":
		src := arg.(string)
		flags := ""
		opts, _ := ops["$options"].(string)
		for _, o := range opts {
			if o == 'x' {
				src = refStripX(src)
			} else if !strings.ContainsRune(flags, o) {
				flags += string(o)
			}
		}
		if flags != "" {
			src = "(?" + flags + ")" + src
		}
		re := regexp.MustCompile(src)
		return some(func(c any) bool { s, ok := c.(string); return ok && re.MatchString(s) })
	case "$size":
		n := refTrunc(arg)
		for _, v := range vals {
			if arr, ok := v.([]any); ok && int64(len(arr)) == n {
				return true
			}
		}
		return false
	case "$elemMatch":
		sub := arg.(map[string]any)
		_, hasLogic := sub["$and"]
		_, hasOr := sub["$or"]
		_, hasNor := sub["$nor"]
		opsOnly := refIsOps(sub) && !hasLogic && !hasOr && !hasNor
		for _, v := range vals {
			arr, _ := v.([]any)
			for _, e := range arr {
				if opsOnly {
					if refField(map[string]any{"e": e}, "e", sub) {
						return true
					}
				} else if m, ok := e.(map[string]any); ok && refMatch(sub, m) {
					return true
				}
			}
		}
		return false
	case "$not":
		return !refField(doc, path, arg)
	}
	panic("reference matcher: unknown operator " + op)
}

func refTrunc(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	}
	panic("not a number")
}

func refStripX(p string) string {
	var b strings.Builder
	inClass, comment := false, false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if comment {
			comment = c != '\n'
			continue
		}
		if c == '\\' && i+1 < len(p) {
			b.WriteString(p[i : i+2])
			i++
			continue
		}
		if inClass {
			inClass = c != ']'
			b.WriteByte(c)
			continue
		}
		switch c {
		case '[':
			inClass = true
			b.WriteByte(c)
		case '#':
			comment = true
		case ' ', '\t', '\n', '\r', '\f', '\v':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func refNum(v any) (*big.Float, bool) {
	switch x := v.(type) {
	case int64:
		return new(big.Float).SetInt64(x), true
	case float64:
		if math.IsNaN(x) {
			return nil, false
		}
		return big.NewFloat(x), true
	}
	return nil, false
}

func refEqual(a, b any) bool {
	if fa, ok := a.(float64); ok && math.IsNaN(fa) {
		fb, ok := b.(float64)
		return ok && math.IsNaN(fb)
	}
	if na, ok := refNum(a); ok {
		nb, ok := refNum(b)
		return ok && na.Cmp(nb) == 0
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, string:
		return a == b
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
			if !refEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range y {
			w, ok := x[k]
			if !ok || !refEqual(w, v) {
				return false
			}
		}
		return true
	}
	return false
}

func refCompare(a, b any) (int, bool) {
	if na, ok := refNum(a); ok {
		nb, ok := refNum(b)
		if !ok {
			return 0, false
		}
		return na.Cmp(nb), true
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return strings.Compare(x, y), ok
	case time.Time:
		y, ok := b.(time.Time)
		return x.Compare(y), ok
	case bool:
		y, ok := b.(bool)
		xi, yi := 0, 0
		if x {
			xi = 1
		}
		if y {
			yi = 1
		}
		return xi - yi, ok
	case []byte:
		y, ok := b.([]byte)
		return bytes.Compare(x, y), ok
	}
	return 0, false
}
