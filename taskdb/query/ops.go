package query

import (
	"regexp"
)

// op tests one value a path resolved to (nil when missing or null).
// Operators that MongoDB applies to array elements test the array itself
// and then each element.
type op interface {
	test(v any) bool
	writeArg(w *writer)
}

// scalar tests one value without looking into arrays.
type scalar interface{ one(v any) bool }

// anyElem reports whether s holds for v, or v is an array and s holds for
// some element.
func anyElem(v any, s scalar) bool {
	if s.one(v) {
		return true
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if s.one(e) {
				return true
			}
		}
	}
	return false
}

// cmpOp is $eq, $lt, $lte, $gt or $gte ($ne is a negated $eq).
type cmpOp struct {
	kind string
	arg  any
}

func (o *cmpOp) test(v any) bool { return anyElem(v, o) }

func (o *cmpOp) one(v any) bool {
	if o.kind == "$eq" {
		return equal(v, o.arg)
	}
	c, ok := compare(v, o.arg)
	if !ok {
		return false
	}
	switch o.kind {
	case "$lt":
		return c < 0
	case "$lte":
		return c <= 0
	case "$gt":
		return c > 0
	default: // $gte
		return c >= 0
	}
}

// inOp is $in ($nin is a negated $in). Strings are looked up in a set, so
// lists of thousands of msg_ids stay cheap.
type inOp struct {
	vals    []any
	strs    map[string]struct{}
	others  []any
	hasNull bool
}

func newInOp(vals []any) *inOp {
	o := &inOp{vals: vals}
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			o.hasNull = true
		case string:
			if o.strs == nil {
				o.strs = make(map[string]struct{}, len(vals))
			}
			o.strs[x] = struct{}{}
		default:
			o.others = append(o.others, v)
		}
	}
	return o
}

func (o *inOp) test(v any) bool {
	return anyElem(v, o)
}

func (o *inOp) one(v any) bool {
	if s, ok := v.(string); ok {
		_, hit := o.strs[s]
		return hit
	}
	if v == nil {
		return o.hasNull
	}
	for _, x := range o.others {
		if equal(v, x) {
			return true
		}
	}
	return false
}

// allOp is $all: the value (an array, or a scalar as a one-element array)
// contains every listed value. An empty list matches nothing.
type allOp struct{ eqs []cmpOp }

func newAllOp(vals []any) *allOp {
	o := &allOp{eqs: make([]cmpOp, len(vals))}
	for i, v := range vals {
		o.eqs[i] = cmpOp{kind: "$eq", arg: v}
	}
	return o
}

func (o *allOp) test(v any) bool {
	for i := range o.eqs {
		if !o.eqs[i].test(v) {
			return false
		}
	}
	return len(o.eqs) > 0
}

// modOp is $mod: number % d == r, floats truncated toward zero.
type modOp struct {
	d, r int64
	arg  []any
}

func (o *modOp) test(v any) bool { return anyElem(v, o) }

func (o *modOp) one(v any) bool {
	n, ok := integral(v)
	return ok && n%o.d == o.r
}

// existsOp is $exists; null counts as absent.
type existsOp struct{ want bool }

func (o *existsOp) test(v any) bool { return (v != nil) == o.want }

// regexOp is $regex with its $options.
type regexOp struct {
	re      *regexp.Regexp
	pattern string
	options string
}

func (o *regexOp) test(v any) bool { return anyElem(v, o) }

func (o *regexOp) one(v any) bool {
	s, ok := v.(string)
	return ok && o.re.MatchString(s)
}

// sizeOp is $size: the value is an array of exactly n elements.
type sizeOp struct{ n int64 }

func (o *sizeOp) test(v any) bool {
	arr, ok := v.([]any)
	return ok && int64(len(arr)) == o.n
}

// elemMatchOp is $elemMatch: some element of the array satisfies either
// every operator (field) or the query document (doc).
type elemMatchOp struct {
	field *fieldNode
	doc   *docNode
}

func (o *elemMatchOp) test(v any) bool {
	arr, ok := v.([]any)
	if !ok {
		return false
	}
	for _, e := range arr {
		if o.field != nil && o.field.match(e) {
			return true
		}
		if o.doc != nil && isDoc(e) && o.doc.match(e) {
			return true
		}
	}
	return false
}
