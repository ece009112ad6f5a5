package mongodb

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// Stored field names that are not record keys. Record keys never start
// with "_" once escaped, so these cannot collide with one.
const (
	fieldID  = "_id"  // the msg_id
	fieldSeq = "_seq" // insertion order
)

// escapeKey returns the stored name of a document key. BSON names are
// C strings and MongoDB gives "." and "$" meaning in queries and updates,
// so "%", ".", "$" and NUL anywhere, and "_" at the start, are written as
// %XX. The mapping is one to one; unescapeKey reverses it.
func escapeKey(k string) string {
	if !needsEscape(k) {
		return k
	}
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '%' || c == '.' || c == '$' || c == 0 || c == '_' && i == 0 {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func needsEscape(k string) bool {
	return strings.HasPrefix(k, "_") || strings.ContainsAny(k, "%.$\x00")
}

// unescapeKey reverses escapeKey.
func unescapeKey(k string) (string, error) {
	if !strings.Contains(k, "%") {
		return k, nil
	}
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		if k[i] != '%' {
			b.WriteByte(k[i])
			continue
		}
		if i+2 >= len(k) {
			return "", fmt.Errorf("bad escape in stored key %q", k)
		}
		c, err := strconv.ParseUint(k[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in stored key %q", k)
		}
		b.WriteByte(byte(c))
		i += 2
	}
	return b.String(), nil
}

// encodeValue converts a canonical value (see taskdb.Normalize) to BSON:
// documents with escaped keys sorted, buffers as binary, times as dates.
func encodeValue(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, float64, string:
		return x
	case time.Time:
		return bson.NewDateTimeFromTime(x)
	case []byte:
		return bson.Binary{Data: x}
	case []any:
		a := make(bson.A, len(x))
		for i, e := range x {
			a[i] = encodeValue(e)
		}
		return a
	case map[string]any:
		d := make(bson.D, 0, len(x))
		for k, e := range x {
			d = append(d, bson.E{Key: escapeKey(k), Value: encodeValue(e)})
		}
		slices.SortFunc(d, func(a, b bson.E) int { return strings.Compare(a.Key, b.Key) })
		return d
	}
	// Normalize admits nothing else.
	panic(fmt.Sprintf("mongodb: encode %T", v))
}

// decodeRecord decodes a stored record into a Doc: msg_id from _id, the
// schema keys in SchemaKeys order, then the extra keys sorted. It returns
// the record's insertion sequence too.
func decodeRecord(raw bson.Raw) (taskdb.Doc, int64, error) {
	els, err := raw.Elements()
	if err != nil {
		return nil, 0, err
	}
	d := make(taskdb.Doc, 0, len(els))
	var seq int64
	for _, el := range els {
		k, err := el.KeyErr()
		if err != nil {
			return nil, 0, err
		}
		v := el.Value()
		switch k {
		case fieldSeq:
			var ok bool
			if seq, ok = v.Int64OK(); !ok {
				return nil, 0, fmt.Errorf("_seq holds a %s, not an int64", v.Type)
			}
			continue
		case taskdb.KeyMsgID:
			return nil, 0, fmt.Errorf("stored document has a msg_id field besides _id")
		case fieldID:
			id, ok := v.StringValueOK()
			if !ok {
				return nil, 0, fmt.Errorf("_id holds a %s, not a string", v.Type)
			}
			d = append(d, taskdb.Field{Key: taskdb.KeyMsgID, Value: id})
			continue
		}
		if k, err = unescapeKey(k); err != nil {
			return nil, 0, err
		}
		x, err := decodeValue(v)
		if err != nil {
			return nil, 0, fmt.Errorf("key %q: %w", k, err)
		}
		d = append(d, taskdb.Field{Key: k, Value: x})
	}
	if !slices.IsSortedFunc(d, compareFields) {
		slices.SortFunc(d, compareFields)
	}
	if len(d) == 0 || d[0].Key != taskdb.KeyMsgID {
		return nil, 0, fmt.Errorf("document has no _id")
	}
	if err := checkUnique(d); err != nil {
		return nil, 0, err
	}
	return d, seq, nil
}

// schemaRank orders the schema keys; extra keys rank after them.
var schemaRank = func() map[string]int {
	m := make(map[string]int, len(taskdb.SchemaKeys))
	for i, k := range taskdb.SchemaKeys {
		m[k] = i
	}
	return m
}()

// compareFields orders the fields of a record Doc.
func compareFields(a, b taskdb.Field) int {
	ra, aok := schemaRank[a.Key]
	rb, bok := schemaRank[b.Key]
	switch {
	case aok && bok:
		return ra - rb
	case aok:
		return -1
	case bok:
		return 1
	}
	return strings.Compare(a.Key, b.Key)
}

// decodeValue converts a stored BSON value to the value model. Integers
// of either width come back as int64; the types taskhub never writes are
// refused. It uses the accessors that report malformed data rather than
// panic, since the driver hands values over unchecked.
func decodeValue(v bson.RawValue) (any, error) {
	var x any
	ok := true
	switch v.Type {
	case bson.TypeNull, bson.TypeUndefined:
	case bson.TypeBoolean:
		x, ok = v.BooleanOK()
	case bson.TypeInt32:
		var i int32
		i, ok = v.Int32OK()
		x = int64(i)
	case bson.TypeInt64:
		x, ok = v.Int64OK()
	case bson.TypeDouble:
		x, ok = v.DoubleOK()
	case bson.TypeString:
		x, ok = v.StringValueOK()
	case bson.TypeDateTime:
		var ms int64
		if ms, ok = v.DateTimeOK(); ok {
			return query.CanonicalTime(time.UnixMilli(ms))
		}
	case bson.TypeBinary:
		var b []byte
		_, b, ok = v.BinaryOK()
		x = slices.Clone(b)
	case bson.TypeArray:
		if arr, isArr := v.ArrayOK(); isArr {
			return decodeArray(arr)
		}
		ok = false
	case bson.TypeEmbeddedDocument:
		if doc, isDoc := v.DocumentOK(); isDoc {
			return decodeDoc(doc)
		}
		ok = false
	default:
		return nil, fmt.Errorf("unsupported BSON type %s", v.Type)
	}
	if !ok {
		return nil, fmt.Errorf("malformed BSON %s", v.Type)
	}
	return x, nil
}

func decodeArray(arr bson.RawArray) ([]any, error) {
	vals, err := arr.Values()
	if err != nil {
		return nil, err
	}
	a := make([]any, len(vals))
	for i, e := range vals {
		if a[i], err = decodeValue(e); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// decodeDoc decodes a nested document into a Doc sorted by key.
func decodeDoc(raw bson.Raw) (taskdb.Doc, error) {
	els, err := raw.Elements()
	if err != nil {
		return nil, err
	}
	d := make(taskdb.Doc, len(els))
	for i, el := range els {
		k, err := el.KeyErr()
		if err == nil {
			k, err = unescapeKey(k)
		}
		if err != nil {
			return nil, err
		}
		x, err := decodeValue(el.Value())
		if err != nil {
			return nil, err
		}
		d[i] = taskdb.Field{Key: k, Value: x}
	}
	byKey := func(a, b taskdb.Field) int { return strings.Compare(a.Key, b.Key) }
	if !slices.IsSortedFunc(d, byKey) {
		slices.SortFunc(d, byKey)
	}
	return d, checkUnique(d)
}

// checkUnique reports a key that a sorted Doc holds twice: BSON allows it,
// taskdb documents do not.
func checkUnique(d taskdb.Doc) error {
	for i := 1; i < len(d); i++ {
		if d[i].Key == d[i-1].Key {
			return fmt.Errorf("key %q appears twice", d[i].Key)
		}
	}
	return nil
}

// msTime returns t's milliseconds since the epoch rounded down (up is
// true: rounded up), the form a BSON date stores.
func msTime(t time.Time, up bool) bson.DateTime {
	ms := t.UnixMilli()
	if up && t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return bson.DateTime(ms)
}

// isNaN reports whether v is a float NaN.
func isNaN(v any) bool {
	f, ok := v.(float64)
	return ok && math.IsNaN(f)
}
