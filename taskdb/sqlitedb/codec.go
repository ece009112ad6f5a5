package sqlitedb

import (
	"fmt"
	"slices"

	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/internal/chunk"
	"github.com/taskhub/taskhub/taskdb/internal/codec"
)

// A doc is the msgpack map in a row's doc column: the record's keys that
// have no typed column, in taskdb.Doc order (schema keys in SchemaKeys
// order, then extra keys sorted). Schema keys at their default value are
// left out; extra keys are always kept.

// field is a key, its rank and its encoded value.
type field struct {
	key  string
	rank int
	raw  []byte
}

func (f field) compare(g field) int { return codec.CompareRanked(f.rank, f.key, g.rank, g.key) }

// isDefault reports whether f is a schema key holding its default value
// (null, or "" for stdout and stderr), which a doc leaves out.
func (f field) isDefault() bool {
	switch {
	case f.rank == codec.ExtraRank:
		return false
	case taskdb.Default(f.key) == "":
		return len(f.raw) == 1 && f.raw[0] == msgpcode.FixedStrLow
	}
	return len(f.raw) == 1 && f.raw[0] == msgpcode.Nil
}

// appendDoc appends fs, sorted in Doc order without repeated keys, as a
// doc: schema keys at their default are left out.
func appendDoc(b []byte, fs []field) []byte {
	n := 0
	for _, f := range fs {
		if !f.isDefault() {
			n++
		}
	}
	b = codec.AppendMapLen(b, n)
	for _, f := range fs {
		if !f.isDefault() {
			b = append(codec.AppendString(b, f.key), f.raw...)
		}
	}
	return b
}

// docFields appends to dst the fields of a doc (any msgpack map with
// string keys in Doc order), without decoding the values. The keys and
// values alias b.
func docFields(dst []field, b []byte) ([]field, error) {
	d := codec.KeyDecoder(b)
	n, err := d.MapLen()
	if err != nil {
		return nil, err
	}
	fs := slices.Grow(dst, n)
	for range n {
		k, err := d.Key()
		if err != nil {
			return nil, err
		}
		f := field{key: k, rank: codec.Rank(k)}
		if len(fs) > 0 && fs[len(fs)-1].compare(f) >= 0 {
			return nil, fmt.Errorf("key %q out of order", k)
		}
		if f.raw, err = d.Raw(); err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	if err := d.End(); err != nil {
		return nil, err
	}
	return fs, nil
}

// mergeFields is how many fields mergeDoc handles without allocating
// their slices: more than a record has keys, extra keys aside.
const mergeFields = 32

// mergeDoc appends to dst the doc old with the fields of p (in Doc
// order, without repeated keys; schema keys at their default reset the
// stored value) set. It retains neither old nor p.
func mergeDoc(dst, old []byte, p []field) ([]byte, error) {
	var bufA, bufOut [mergeFields]field
	a, err := docFields(bufA[:0], old)
	if err != nil {
		return nil, fmt.Errorf("stored doc: %w", err)
	}
	out := slices.Grow(bufOut[:0], len(a)+len(p))
	i, j := 0, 0
	for i < len(a) || j < len(p) {
		switch {
		case j == len(p):
			out, i = append(out, a[i]), i+1
		case i == len(a):
			out, j = append(out, p[j]), j+1
		default:
			switch c := a[i].compare(p[j]); {
			case c < 0:
				out, i = append(out, a[i]), i+1
			case c > 0:
				out, j = append(out, p[j]), j+1
			default:
				out, i, j = append(out, p[j]), i+1, j+1
			}
		}
	}
	n := len(old)
	for _, f := range p {
		n += len(f.raw)
	}
	return appendDoc(slices.Grow(dst, docSize(n, p)), out), nil
}

// carver hands out the Docs and arrays of one read (see chunk.Alloc),
// with the scratch Doc where decodeRow builds a record.
type carver struct {
	chunk.Alloc
	scratch taskdb.Doc
}
