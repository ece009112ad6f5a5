package mongodb

import (
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// storedName returns the stored field name of a top-level record key.
func storedName(key string) string {
	if key == taskdb.KeyMsgID {
		return fieldID
	}
	return escapeKey(key)
}

// serverFilter translates q into a MongoDB filter that every record q
// matches satisfies: the conjunction of q's hints (its top-level
// conditions and those of top-level $and) that MongoDB evaluates at least
// as loosely as taskdb does. The server may return more; the caller
// matches each record with q, so taskdb's semantics decide.
//
// What is sent, and why it is a superset:
//   - Equality and $in on scalars, and on arrays of scalars, as {f: v} or
//     $in.
//     MongoDB equality is exact within a type, numeric across int and
//     double, and holds for an array field containing the value, as in
//     taskdb; null matches null and missing, as taskdb's null does.
//     Documents are left out: MongoDB compares their keys in order.
//   - $exists: false as {f: null}.
//   - Conditions on distinct fields as one plain document, else in $and.
//   - Ranges on numbers, strings, bools and times: MongoDB compares within
//     one BSON type class (numbers exactly, strings by bytes) as taskdb
//     does. Time bounds are widened to whole milliseconds and made
//     inclusive. Byte strings (MongoDB orders them by length first), NaN
//     and other operands are left out.
//   - Dotted paths are left out: MongoDB also reads a numeric part as a
//     document key where taskdb indexes arrays only.
func serverFilter(q *query.Filter) bson.D {
	conds := bson.D{}
	seen := make(map[string]bool)
	flat := true // each field once: one plain document, as a user writes it
	for _, h := range q.Hints() {
		if strings.Contains(h.Path, ".") {
			continue
		}
		if c, ok := hintCond(h); ok {
			name := storedName(h.Path)
			flat = flat && !seen[name]
			seen[name] = true
			conds = append(conds, bson.E{Key: name, Value: c})
		}
	}
	if flat {
		return conds
	}
	and := make(bson.A, len(conds))
	for i, c := range conds {
		and[i] = bson.D{c}
	}
	return bson.D{{Key: "$and", Value: and}}
}

// hintCond returns the condition for one hint, a value (equality) or an
// operator document, or false.
func hintCond(h query.Hint) (any, bool) {
	if h.Eq {
		vals := make(bson.A, len(h.Values))
		for i, v := range h.Values {
			x, ok := eqOperand(v)
			if !ok {
				return nil, false
			}
			vals[i] = x
		}
		if len(vals) == 1 {
			// {f: v} is {f: {$in: [v]}}, in the form servers plan best.
			return vals[0], true
		}
		return bson.D{{Key: "$in", Value: vals}}, true
	}
	var c bson.D
	if op, x, ok := bound(h.Lower, h.LowerIncl, false); ok {
		c = append(c, bson.E{Key: op, Value: x})
	}
	if op, x, ok := bound(h.Upper, h.UpperIncl, true); ok {
		c = append(c, bson.E{Key: op, Value: x})
	}
	return c, c != nil
}

// eqOperand converts an equality operand, reporting false for those
// MongoDB may not match wherever taskdb does.
func eqOperand(v any) (any, bool) {
	switch x := v.(type) {
	case nil, bool, int64, string:
		return x, true
	case float64:
		return x, !isNaN(x)
	case time.Time:
		// Stored times are whole milliseconds: one with a finer part
		// equals none of them, so any operand will do.
		return msTime(x, false), true
	case []byte:
		return bson.Binary{Data: x}, true
	case []any:
		a := make(bson.A, len(x))
		for i, e := range x {
			y, ok := eqOperand(e)
			if !ok {
				return nil, false
			}
			a[i] = y
		}
		return a, true
	}
	return nil, false
}

// bound converts a range bound into an operator and operand.
func bound(v any, incl, upper bool) (string, any, bool) {
	op := "$gt"
	if upper {
		op = "$lt"
	}
	if incl {
		op += "e"
	}
	switch x := v.(type) {
	case bool, int64, string:
		return op, x, true
	case float64:
		return op, x, !isNaN(x)
	case time.Time:
		if upper {
			return "$lte", msTime(x, true), true
		}
		return "$gte", msTime(x, false), true
	}
	return "", nil, false
}

// projection returns the stored fields a find must fetch to match q and
// return keys: _id and _seq, keys, and the fields q tests.
func projection(q *query.Filter, keys []string) bson.D {
	p := bson.D{{Key: fieldID, Value: 1}, {Key: fieldSeq, Value: 1}}
	seen := map[string]bool{fieldID: true}
	for _, list := range [][]string{keys, q.Fields()} {
		for _, k := range list {
			if n := storedName(k); !seen[n] {
				seen[n] = true
				p = append(p, bson.E{Key: n, Value: 1})
			}
		}
	}
	return p
}
