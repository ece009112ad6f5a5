package dictdb

import (
	"fmt"
	"math"
	"time"

	"github.com/taskhub/taskhub/taskdb"
)

// Slots of the schema keys most records set. msg_id is rec.id, the times
// are rec.times, and the schema keys that are usually at their default
// (resubmitted, execute_input, execute_result, error, stdout, stderr) live
// in rec.rest with the extra keys, only once set.
const (
	slotHeader = iota
	slotMetadata
	slotContent
	slotBuffers
	slotClientUUID
	slotEngineUUID
	slotQueue
	slotResultHeader
	slotResultMetadata
	slotResultContent
	slotResultBuffers
	nSlots
)

// Indexes into rec.times.
const (
	timeSubmitted = iota
	timeStarted
	timeCompleted
	timeReceived
	nTimes
)

// noTime marks a null time.
const noTime = math.MinInt64

// kind says where a key lives in a rec.
type kind uint8

const (
	kindExtra  kind = iota // not a schema key: in rest
	kindSparse             // a rarely set schema key: in rest once set
	kindMsgID
	kindSlot
	kindTime
)

// locate maps a key to where a rec stores it.
func locate(key string) (kind, int) {
	switch key {
	case taskdb.KeyMsgID:
		return kindMsgID, 0
	case taskdb.KeyHeader:
		return kindSlot, slotHeader
	case taskdb.KeyMetadata:
		return kindSlot, slotMetadata
	case taskdb.KeyContent:
		return kindSlot, slotContent
	case taskdb.KeyBuffers:
		return kindSlot, slotBuffers
	case taskdb.KeySubmitted:
		return kindTime, timeSubmitted
	case taskdb.KeyClientUUID:
		return kindSlot, slotClientUUID
	case taskdb.KeyEngineUUID:
		return kindSlot, slotEngineUUID
	case taskdb.KeyStarted:
		return kindTime, timeStarted
	case taskdb.KeyCompleted:
		return kindTime, timeCompleted
	case taskdb.KeyReceived:
		return kindTime, timeReceived
	case taskdb.KeyResultHeader:
		return kindSlot, slotResultHeader
	case taskdb.KeyResultMetadata:
		return kindSlot, slotResultMetadata
	case taskdb.KeyResultContent:
		return kindSlot, slotResultContent
	case taskdb.KeyResultBuffers:
		return kindSlot, slotResultBuffers
	case taskdb.KeyQueue:
		return kindSlot, slotQueue
	case taskdb.KeyResubmitted, taskdb.KeyExecuteInput, taskdb.KeyExecuteResult,
		taskdb.KeyError, taskdb.KeyStdout, taskdb.KeyStderr:
		return kindSparse, 0
	}
	return kindExtra, 0
}

// Names of the slots and times, and the sparse schema keys.
var (
	slotKeys = [nSlots]string{
		taskdb.KeyHeader, taskdb.KeyMetadata, taskdb.KeyContent, taskdb.KeyBuffers,
		taskdb.KeyClientUUID, taskdb.KeyEngineUUID, taskdb.KeyQueue,
		taskdb.KeyResultHeader, taskdb.KeyResultMetadata, taskdb.KeyResultContent,
		taskdb.KeyResultBuffers,
	}
	timeKeys   = [nTimes]string{taskdb.KeySubmitted, taskdb.KeyStarted, taskdb.KeyCompleted, taskdb.KeyReceived}
	sparseKeys = [...]string{
		taskdb.KeyResubmitted, taskdb.KeyExecuteInput, taskdb.KeyExecuteResult,
		taskdb.KeyError, taskdb.KeyStdout, taskdb.KeyStderr,
	}
)

// rec is a stored record, 256 bytes plus its values. Its values are
// frozen; the DB mutex guards the rec itself.
type rec struct {
	id    string
	seq   uint64 // insertion order
	vals  [nSlots]any
	times [nTimes]int64 // microseconds since the Unix epoch, or noTime
	more  *doc          // sparse schema keys once set, and extra keys; nil if none; replaced, never modified in place

	clientKey, engineKey int64 // keys of the record's entries in DB.byClient and DB.byEngine
}

// rest returns the sparse schema keys and extra keys the record holds.
func (r *rec) rest() doc {
	if r.more == nil {
		return nil
	}
	return *r.more
}

// setRest replaces them.
func (r *rec) setRest(d doc) {
	if len(d) == 0 {
		r.more = nil
		return
	}
	r.more = &d
}

func (r *rec) pending() bool { return r.times[timeCompleted] == noTime }

// bytes is what the record counts toward the size limit.
func (r *rec) bytes() int64 {
	return bufferBytes(r.vals[slotBuffers]) + bufferBytes(r.vals[slotResultBuffers])
}

// Lookup implements query.Doc.
func (r *rec) Lookup(key string) (any, bool) {
	k, i := locate(key)
	switch k {
	case kindMsgID:
		return r.id, true
	case kindSlot:
		if b, ok := r.vals[i].(blobs); ok {
			return b.list(), true
		}
		return r.vals[i], true
	case kindTime:
		return timeValue(r.times[i]), true
	case kindSparse:
		if v, ok := r.rest().Lookup(key); ok {
			return v, true
		}
		return taskdb.Default(key), true
	}
	return r.rest().Lookup(key)
}

// Len implements query.Doc.
func (r *rec) Len() int { return len(taskdb.SchemaKeys) + r.extras() }

// extras counts the record's non-schema keys.
func (r *rec) extras() int {
	n := 0
	for _, f := range r.rest() {
		if k, _ := locate(f.Key); k == kindExtra {
			n++
		}
	}
	return n
}

func timeValue(us int64) any {
	if us == noTime {
		return nil
	}
	return time.UnixMicro(us).UTC()
}

// thawAll returns a deep copy of the whole record: the schema keys in
// order, then the extra keys, which rest keeps sorted.
func (r *rec) thawAll(t *thawer) taskdb.Doc {
	rest := r.rest()
	d := t.Doc(len(taskdb.SchemaKeys) + len(rest))
	for i, k := range taskdb.SchemaKeys {
		d = append(d, field{Key: k, Value: r.thawSchema(t, i)})
	}
	for _, f := range rest {
		if k, _ := locate(f.Key); k == kindExtra {
			d = append(d, field{Key: f.Key, Value: t.thaw(f.Value)})
		}
	}
	return d
}

// schemaLoc is where a rec stores each of taskdb.SchemaKeys.
var schemaLoc = func() (l [len(taskdb.SchemaKeys)]struct {
	kind kind
	i    int
}) {
	for i, k := range taskdb.SchemaKeys {
		l[i].kind, l[i].i = locate(k)
	}
	return l
}()

// thawSchema returns a copy of the value of taskdb.SchemaKeys[i].
func (r *rec) thawSchema(t *thawer, i int) any {
	switch l := schemaLoc[i]; l.kind {
	case kindMsgID:
		return r.id
	case kindSlot:
		return t.thaw(r.vals[l.i])
	case kindTime:
		return timeValue(r.times[l.i])
	}
	k := taskdb.SchemaKeys[i]
	if v, ok := r.rest().Lookup(k); ok {
		return t.thaw(v)
	}
	return taskdb.Default(k)
}

// change is one frozen key of a write.
type change struct {
	kind kind
	i    uint8
	key  string
	v    any   // frozen, for slots and rest
	t    int64 // for times
}

// prepare freezes one field of a write to record id. skip reports a field
// with nothing to store (msg_id, which is the record's id).
func prepare(id, k string, v any) (c change, skip bool, err error) {
	c.key = k
	var i int
	c.kind, i = locate(k)
	c.i = uint8(i)
	switch c.kind {
	case kindMsgID:
		if s, ok := v.(string); !ok || s != id {
			return c, false, fmt.Errorf("%w: msg_id %v differs from the record's id %q", taskdb.ErrInvalidRecord, v, id)
		}
		return c, true, nil
	case kindTime:
		switch t := v.(type) {
		case nil:
			c.t = noTime
		case time.Time:
			if y := t.UTC().Year(); y < 1 || y > 9999 {
				return c, false, fmt.Errorf("%w: key %q: time %v: year outside 1-9999", taskdb.ErrInvalidRecord, k, t)
			}
			c.t = t.UnixMicro() // truncates to the microsecond, like query.CanonicalTime
		default:
			return c, false, fmt.Errorf("%w: key %q: want null or a time, got %T", taskdb.ErrInvalidRecord, k, v)
		}
	case kindSlot:
		if i == slotBuffers || i == slotResultBuffers {
			if b, ok := packBlobs(v); ok {
				c.v = b
				return c, false, nil
			}
		}
		fallthrough
	default:
		c.v, err = freeze(k, v)
	}
	return c, false, err
}

// newRec freezes fields into a new record with every other schema key at
// its default, outside the lock.
func newRec(id string, fields taskdb.Record) (*rec, error) {
	r := &rec{id: id}
	for i := range r.times {
		r.times[i] = noTime
	}
	var rest doc
	for k, v := range fields {
		c, skip, err := prepare(id, k, v)
		if err != nil {
			return nil, err
		}
		switch {
		case skip:
		case c.kind == kindSlot:
			r.vals[c.i] = c.v
		case c.kind == kindTime:
			r.times[c.i] = c.t
		case c.kind == kindSparse && c.v == taskdb.Default(k): // types differ or are comparable: no panic
		default:
			rest = append(rest, field{Key: k, Value: c.v})
		}
	}
	sortFields(rest)
	r.setRest(rest)
	return r, nil
}
