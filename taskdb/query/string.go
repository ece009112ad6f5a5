package query

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// String returns the filter in canonical JSON: keys sorted, plain values
// written as $eq, times as {"$date": "...Z"}, byte strings as
// {"$binary": base64}, non-finite floats as {"$numberDouble": ...}.
// ParseJSON(f.String()) compiles an equal filter (for filters whose
// strings are valid UTF-8).
func (f *Filter) String() string {
	if f == nil {
		return "{}"
	}
	var w writer
	f.root.write(&w)
	return w.String()
}

// writer accumulates canonical JSON.
type writer struct{ strings.Builder }

func (w *writer) key(k string) {
	w.str(k)
	w.WriteByte(':')
}

func (w *writer) str(s string) {
	b, _ := json.Marshal(s) // a string always marshals
	w.Write(b)
}

func (d *docNode) write(w *writer) {
	w.WriteByte('{')
	for i, e := range d.entries {
		if i > 0 {
			w.WriteByte(',')
		}
		w.key(e.key)
		e.n.write(w)
	}
	w.WriteByte('}')
}

func (l *logicNode) write(w *writer) {
	w.WriteByte('[')
	for i, k := range l.kids {
		if i > 0 {
			w.WriteByte(',')
		}
		k.write(w)
	}
	w.WriteByte(']')
}

func (f *fieldNode) write(w *writer) { writeConds(w, f.conds) }

func writeConds(w *writer, conds []cond) {
	w.WriteByte('{')
	for i := range conds {
		if i > 0 {
			w.WriteByte(',')
		}
		c := &conds[i]
		w.key(c.name)
		if c.o == nil {
			writeConds(w, c.sub)
			continue
		}
		c.o.writeArg(w)
		if r, ok := c.o.(*regexOp); ok && r.options != "" {
			w.WriteByte(',')
			w.key("$options")
			w.str(r.options)
		}
	}
	w.WriteByte('}')
}

func (o *cmpOp) writeArg(w *writer) { w.value(o.arg) }

func (o *inOp) writeArg(w *writer) { w.value(o.vals) }

func (o *allOp) writeArg(w *writer) {
	w.WriteByte('[')
	for i := range o.eqs {
		if i > 0 {
			w.WriteByte(',')
		}
		w.value(o.eqs[i].arg)
	}
	w.WriteByte(']')
}

func (o *modOp) writeArg(w *writer) { w.value(o.arg) }

func (o *existsOp) writeArg(w *writer) { w.value(o.want) }

func (o *regexOp) writeArg(w *writer) { w.str(o.pattern) }

func (o *sizeOp) writeArg(w *writer) { w.value(o.n) }

func (o *elemMatchOp) writeArg(w *writer) {
	if o.doc != nil {
		o.doc.write(w)
		return
	}
	o.field.write(w)
}

// value writes a value of the value model.
func (w *writer) value(v any) {
	switch x := v.(type) {
	case nil:
		w.WriteString("null")
	case bool:
		w.WriteString(strconv.FormatBool(x))
	case int64:
		w.WriteString(strconv.FormatInt(x, 10))
	case float64:
		switch {
		case math.IsNaN(x):
			w.WriteString(`{"$numberDouble":"NaN"}`)
		case math.IsInf(x, 1):
			w.WriteString(`{"$numberDouble":"Infinity"}`)
		case math.IsInf(x, -1):
			w.WriteString(`{"$numberDouble":"-Infinity"}`)
		default:
			s := strconv.FormatFloat(x, 'g', -1, 64)
			w.WriteString(s)
			if !strings.ContainsAny(s, ".e") {
				w.WriteString(".0")
			}
		}
	case string:
		w.str(x)
	case time.Time:
		w.WriteString(`{"$date":`)
		w.str(x.UTC().Format(dateLayout))
		w.WriteByte('}')
	case []byte:
		w.WriteString(`{"$binary":`)
		w.str(base64.StdEncoding.EncodeToString(x))
		w.WriteByte('}')
	case []any:
		w.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				w.WriteByte(',')
			}
			w.value(e)
		}
		w.WriteByte(']')
	case map[string]any:
		w.WriteByte('{')
		for i, k := range sortedKeys(x) {
			if i > 0 {
				w.WriteByte(',')
			}
			w.key(k)
			w.value(x[k])
		}
		w.WriteByte('}')
	}
}

// dateLayout writes times with exactly six fraction digits and Z.
const dateLayout = "2006-01-02T15:04:05.000000Z07:00"
