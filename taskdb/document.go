package taskdb

import (
	"bytes"
	"iter"
	"slices"
	"strings"
)

// Field is one key of a Doc.
type Field struct {
	Key   string
	Value any
}

// Doc is a document whose fields keep their order: the form in which
// reads return records. A record Doc lists msg_id and the other schema
// keys in SchemaKeys order, then its extra keys sorted. Its nested
// documents are Docs too; other values are as in Record. A Doc a DB
// returns belongs to the caller.
//
// A Doc costs one allocation where a Record costs a hash table, which is
// what lets a query return thousands of records in a few milliseconds.
type Doc []Field

// Lookup returns the value under key and whether d has it. It implements
// query.Doc, so a Filter matches Docs directly.
func (d Doc) Lookup(key string) (any, bool) {
	for i := range d {
		if d[i].Key == key {
			return d[i].Value, true
		}
	}
	return nil, false
}

// Len returns the number of fields. It implements query.Doc.
func (d Doc) Len() int { return len(d) }

// All yields d's fields in order.
func (d Doc) All() iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		for _, f := range d {
			if !yield(f.Key, f.Value) {
				return
			}
		}
	}
}

// Get returns the value under key, or nil if d lacks it.
func (d Doc) Get(key string) any {
	v, _ := d.Lookup(key)
	return v
}

// Record returns d as a Record, with nested Docs converted to maps: a
// deep copy.
func (d Doc) Record() Record {
	if d == nil {
		return nil
	}
	r := make(Record, len(d))
	for _, f := range d {
		r[f.Key] = toMap(f.Value)
	}
	return r
}

// toMap deep-copies a value, converting Docs to maps.
func toMap(v any) any {
	switch x := v.(type) {
	case Doc:
		if x == nil {
			return map[string]any(nil)
		}
		return map[string]any(x.Record())
	case map[string]any:
		if x == nil {
			return x
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = toMap(e)
		}
		return m
	case []any:
		if x == nil {
			return x
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toMap(e)
		}
		return out
	case []Doc:
		if x == nil {
			return []any(nil)
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toMap(e)
		}
		return out
	case []byte:
		return bytes.Clone(x)
	}
	return v
}

// DocOf returns a canonical record r as a Doc: msg_id and the schema keys
// r holds in SchemaKeys order, then its other keys sorted, nested maps
// converted to Docs. It is a deep copy. Backends that decode records into
// maps use it to build their results.
func DocOf(r Record) Doc {
	d := make(Doc, 0, len(r))
	for _, k := range SchemaKeys {
		if v, ok := r[k]; ok {
			d = append(d, Field{k, toDoc(v)})
		}
	}
	if len(d) == len(r) {
		return d
	}
	n := len(d)
	for k, v := range r {
		if !IsSchemaKey(k) {
			d = append(d, Field{k, toDoc(v)})
		}
	}
	slices.SortFunc(d[n:], func(a, b Field) int { return strings.Compare(a.Key, b.Key) })
	return d
}

// toDoc deep-copies a canonical value, converting maps to Docs sorted by
// key.
func toDoc(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return Doc(nil)
		}
		d := make(Doc, 0, len(x))
		for k, e := range x {
			d = append(d, Field{k, toDoc(e)})
		}
		slices.SortFunc(d, func(a, b Field) int { return strings.Compare(a.Key, b.Key) })
		return d
	case Record:
		return toDoc(map[string]any(x))
	case []any:
		if x == nil {
			return x
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toDoc(e)
		}
		return out
	case []byte:
		return bytes.Clone(x)
	}
	return v
}
