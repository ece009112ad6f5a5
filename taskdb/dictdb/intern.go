package dictdb

import (
	"encoding/binary"
	"math"
)

// Small documents of scalars repeat across records: content {a: 5},
// result_content {status: "ok"}. The DB keeps one frozen copy of each
// (up to internLimit distinct ones) and lets records share it.
const (
	internLimit  = 4096
	internFields = 2  // largest document interned
	internBytes  = 64 // longest encoding interned
)

// intern returns a shared frozen value equal to v when v is a small
// document of scalars, v otherwise. The caller holds db.mu.
func (db *DB) intern(v any) any {
	p, ok := v.(*doc)
	if !ok || len(*p) == 0 || len(*p) > internFields {
		return v
	}
	d := *p
	var buf [internBytes]byte
	key, ok := encodeSmall(buf[:0], d)
	if !ok {
		return v
	}
	if shared, ok := db.interned[string(key)]; ok {
		return shared
	}
	if len(db.interned) < internLimit {
		db.interned[string(key)] = v
	}
	return v
}

// encodeSmall appends an unambiguous encoding of a doc of scalars to b;
// ok is false if d holds anything else or does not fit.
func encodeSmall(b []byte, d doc) ([]byte, bool) {
	for _, f := range d {
		b = binary.AppendUvarint(b, uint64(len(f.Key)))
		b = append(b, f.Key...)
		switch x := f.Value.(type) {
		case nil:
			b = append(b, 'n')
		case bool:
			b = append(b, 'f')
			if x {
				b[len(b)-1] = 't'
			}
		case int64:
			b = binary.AppendVarint(append(b, 'i'), x)
		case float64:
			b = binary.LittleEndian.AppendUint64(append(b, 'd'), math.Float64bits(x))
		case string:
			b = binary.AppendUvarint(append(b, 's'), uint64(len(x)))
			b = append(b, x...)
		default:
			return nil, false
		}
		if len(b) > internBytes {
			return nil, false
		}
	}
	return b, true
}
