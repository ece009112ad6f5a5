package query

import "slices"

// Hint is a condition on one top-level field that every document the
// filter matches satisfies, for backends choosing an index. A backend
// narrows its candidates with a Hint and still calls Match on each one.
type Hint struct {
	Path string
	// Eq, if set, means the field equals one of Values (a nil value: the
	// field is null or missing). Equality also holds when the field is an
	// array containing the value.
	Eq     bool
	Values []any
	// Otherwise the field lies within a range; a nil bound is open.
	Lower, Upper         any
	LowerIncl, UpperIncl bool
	// Exact reports that the hint is the filter's only condition: a
	// backend whose index holds exactly the records satisfying it (for
	// instance, when it knows the field's type) may skip Match.
	Exact bool
}

// Hints returns the hints implied by the filter's top-level conditions
// (and those of top-level $and).
func (f *Filter) Hints() []Hint {
	if f == nil {
		return nil
	}
	var hs []Hint
	var add func(d *docNode)
	add = func(d *docNode) {
		for _, e := range d.entries {
			switch n := e.n.(type) {
			case *logicNode:
				if n.op == "$and" {
					for _, k := range n.kids {
						add(k)
					}
				}
			case *fieldNode:
				for i := range n.conds {
					if h, ok := hintOf(n.path, &n.conds[i]); ok {
						h.Exact = d == f.root && len(d.entries) == 1 && len(n.conds) == 1
						hs = append(hs, h)
					}
				}
			}
		}
	}
	add(f.root)
	return hs
}

func hintOf(path string, c *cond) (Hint, bool) {
	if c.neg {
		return Hint{}, false
	}
	h := Hint{Path: path}
	switch o := c.o.(type) {
	case *cmpOp:
		switch o.kind {
		case "$eq":
			h.Eq, h.Values = true, []any{o.arg}
		case "$lt", "$lte":
			h.Upper, h.UpperIncl = o.arg, o.kind == "$lte"
		case "$gt", "$gte":
			h.Lower, h.LowerIncl = o.arg, o.kind == "$gte"
		}
	case *inOp:
		h.Eq, h.Values = true, o.vals
	case *existsOp:
		if o.want {
			return h, false
		}
		h.Eq, h.Values = true, []any{nil}
	default:
		return h, false
	}
	return h, true
}

// Fields returns the top-level fields the filter tests (the first part of
// each dotted path, through $and, $or and $nor), each once, sorted. A
// backend that reads only some fields of its records must read these for
// Match to decide.
func (f *Filter) Fields() []string {
	if f == nil {
		return nil
	}
	var out []string
	var add func(d *docNode)
	add = func(d *docNode) {
		for _, e := range d.entries {
			switch n := e.n.(type) {
			case *logicNode:
				for _, k := range n.kids {
					add(k)
				}
			case *fieldNode:
				out = append(out, n.parts[0])
			}
		}
	}
	add(f.root)
	slices.Sort(out)
	return slices.Compact(out)
}
