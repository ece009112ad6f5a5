package dictdb

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/taskhub/taskhub/taskdb"
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

// kind says where a rec keeps a key.
type kind uint8

const (
	kindData  kind = iota // in the record's buf
	kindExtra             // not a schema key: in the record's buf
	kindMsgID             // at the start of the record's buf
	kindTime              // rec.times
)

// Indexes of some schema keys in taskdb.SchemaKeys: the slots of data
// entries.
const (
	slotMsgID         = 0
	slotBuffers       = 4
	slotClientUUID    = 6
	slotEngineUUID    = 7
	slotResultBuffers = 15
	nSlots            = len(taskdb.SchemaKeys)
)

// slotKind and slotTime say where each schema key lives.
var slotKind, slotTime = func() (k [nSlots]kind, t [nSlots]int) {
	for i, key := range taskdb.SchemaKeys {
		switch key {
		case taskdb.KeyMsgID:
			k[i] = kindMsgID
		case taskdb.KeySubmitted, taskdb.KeyStarted, taskdb.KeyCompleted, taskdb.KeyReceived:
			k[i] = kindTime
			t[i] = slices.Index(timeKeys[:], key)
		}
	}
	return k, t
}()

// slotDefault is the value of each schema key at its default.
var slotDefault = func() (d [nSlots]any) {
	for i, k := range taskdb.SchemaKeys {
		d[i] = taskdb.Default(k)
	}
	return d
}()

var timeKeys = [nTimes]string{taskdb.KeySubmitted, taskdb.KeyStarted, taskdb.KeyCompleted, taskdb.KeyReceived}

// slotOf returns the index of key in taskdb.SchemaKeys, or extraSlot.
func slotOf(key string) int {
	if i, ok := slotTable.index(key); ok {
		return i
	}
	return extraSlot
}

var slotTable = newStrTable(taskdb.SchemaKeys[:])

func kindOf(slot int) kind {
	if slot == extraSlot {
		return kindExtra
	}
	return slotKind[slot]
}

// rec is a stored record: 88 bytes in a slab of records, without
// pointers (see store). Its buf, in a block of the store, holds its
// msg_id and packed data; long buffers are kept in store.ext. The DB
// mutex guards the rec.
type rec struct {
	seq                  uint64
	times                [nTimes]int64 // microseconds since the Unix epoch, or noTime
	size                 int64         // bytes of buffers and result_buffers, toward the size limit
	clientKey, engineKey int64         // keys of the record's entries in DB.byClient and DB.byEngine
	n                    int           // length of the buf
	blk, off             uint32        // where the buf is: block number (0: empty buf) and offset
	idn                  int           // length of the msg_id
}

func (r *rec) pending() bool { return r.times[timeCompleted] == noTime }

// indexSlot returns the index of a client_uuid or engine_uuid slot in
// encoder.indexed, or -1 for other slots.
func indexSlot(slot int) int {
	switch slot {
	case slotClientUUID:
		return 0
	case slotEngineUUID:
		return 1
	}
	return -1
}

// field returns the value of schema key slot, decoded with d, given
// where its data entry starts (-1: at its default).
func (d *reader) field(slot, at int) any {
	switch slotKind[slot] {
	case kindMsgID:
		return d.str(d.s.id(d.r))
	case kindTime:
		return d.time(d.r.times[slotTime[slot]])
	}
	if at < 0 {
		return slotDefault[slot]
	}
	v, _ := d.value(d.s.data(d.r), at+1)
	return v
}

// dataEntry returns the slot of the data entry at i, its key (for an extra
// key), and where its value starts.
func dataEntry(s string, i int) (slot int, key string, value int) {
	slot = int(s[i])
	if slot != extraSlot {
		return slot, "", i + 1
	}
	key, value = readKey(s, i+1)
	return slot, key, value
}

// layout returns where the data entry of each schema key starts (-1 if
// it is at its default), where the extra keys start, and how many there
// are.
func (d *reader) layout() (at [nSlots]int, extras, n int) {
	for i := range at {
		at[i] = -1
	}
	s := d.s.data(d.r)
	i := 0
	for i < len(s) && s[i] != extraSlot {
		at[s[i]] = i
		i = skip(s, i+1)
	}
	extras = i
	for i < len(s) {
		_, _, v := dataEntry(s, i)
		i = skip(s, v)
		n++
	}
	return at, extras, n
}

// Lookup implements query.Doc for the record being read: d.t must be
// nil. Documents come back as views.
func (d *reader) Lookup(key string) (any, bool) {
	slot := slotOf(key)
	if slot != extraSlot && slotKind[slot] != kindData {
		return d.field(slot, -1), true
	}
	s := d.s.data(d.r)
	for i := 0; i < len(s); {
		sl, k, v := dataEntry(s, i)
		switch {
		case sl == slot && (slot != extraSlot || k == key):
			x, _ := d.value(s, v)
			return x, true
		case sl > slot || sl == extraSlot && k > key:
			i = len(s) // entries are sorted: key is not there
			continue
		}
		i = skip(s, v)
	}
	if slot == extraSlot {
		return nil, false
	}
	return slotDefault[slot], true
}

// Len implements query.Doc.
func (d *reader) Len() int {
	_, _, n := d.layout()
	return nSlots + n
}

// thawAll returns a deep copy of the whole record: the schema keys in
// order, then the extra keys, sorted. It reads the data in one pass.
func (d *reader) thawAll() taskdb.Doc {
	out := d.t.Doc(nSlots)[:nSlots] // extra keys, rare, grow it
	s, i := d.s.data(d.r), 0
	for slot := range out {
		var v any
		if i < len(s) && int(s[i]) == slot {
			v, i = d.value(s, i+1)
		} else {
			v = d.field(slot, -1)
		}
		out[slot] = taskdb.Field{Key: taskdb.SchemaKeys[slot], Value: v}
	}
	return d.extras(out, i)
}

// extras appends the extra keys of the record's data, from i on, to out.
func (d *reader) extras(out taskdb.Doc, i int) taskdb.Doc {
	s := d.s.data(d.r)
	for i < len(s) {
		_, k, v := dataEntry(s, i)
		var x any
		x, i = d.value(s, v)
		out = append(out, taskdb.Field{Key: k, Value: x})
	}
	return out
}

// project returns msg_id and keys, in the order of a full record; the
// caller has checked that keys is not empty.
func (d *reader) project(keys []string) taskdb.Doc {
	at, extras, _ := d.layout()
	out := d.t.Doc(len(keys) + 1)
	for slot, k := range taskdb.SchemaKeys {
		if slot == slotMsgID || slices.Contains(keys, k) {
			out = append(out, taskdb.Field{Key: k, Value: d.field(slot, at[slot])})
		}
	}
	s := d.s.data(d.r)
	for i := extras; i < len(s); {
		_, k, v := dataEntry(s, i)
		if slices.Contains(keys, k) {
			var x any
			x, i = d.value(s, v)
			out = append(out, taskdb.Field{Key: k, Value: x})
			continue
		}
		i = skip(s, v)
	}
	return out
}

// change is one field of a write to a time or to the data, checked and
// encoded. It holds no pointers, so recording it costs no write
// barrier.
type change struct {
	slot   int   // index in taskdb.SchemaKeys, or extraSlot
	key    int   // an extra key: its index in encoder.keys
	t      int64 // a time
	lo, hi int   // a data value, encoded in encoder.b; empty for a default
	size   int64 // bytes of a buffers or result_buffers value
}

// prepare checks and encodes one field of a write to record id. The
// field msg_id is only checked.
func (e *encoder) prepare(id, k string, v any) error {
	c := change{slot: slotOf(k)}
	if x := indexSlot(c.slot); x >= 0 {
		if _, ok := v.(string); !ok && v != nil {
			// Indexed as stored: a named string type is stored, and
			// found by a delete, as a string.
			n, err := taskdb.Normalize(k, v)
			if err != nil {
				return err
			}
			v = n
		}
		e.indexed[x] = indexed{set: true, v: v}
	}
	switch kindOf(c.slot) {
	case kindMsgID:
		if s, ok := v.(string); !ok || s != id {
			return fmt.Errorf("%w: msg_id %v differs from the record's id %q", taskdb.ErrInvalidRecord, v, id)
		}
		return nil
	case kindTime:
		switch t := v.(type) {
		case nil:
			c.t = noTime
		case time.Time:
			us, err := micros(k, t)
			if err != nil {
				return err
			}
			c.t = us
		default:
			return fmt.Errorf("%w: key %q: want null or a time, got %T", taskdb.ErrInvalidRecord, k, v)
		}
		e.cs = append(e.cs, c)
		return nil
	case kindExtra:
		c.key = len(e.keys)
		e.keys = append(e.keys, k)
	case kindData:
		if v == taskdb.Default(k) { // comparable on both sides: no panic
			if !e.adding {
				e.cs = append(e.cs, c) // an update back to the default: no entry
			}
			return nil
		}
	}
	c.lo = len(e.b)
	e.key = k
	if err := e.value(v, 0); err != nil {
		return err
	}
	c.hi = len(e.b)
	if extIndex(c.slot) >= 0 {
		c.size = bufferBytes(e.b, c.lo)
	}
	e.cs = append(e.cs, c)
	return nil
}

// prepareAll prepares the fields of a write to record id and orders
// the changes to its data.
func (e *encoder) prepareAll(id string, fields taskdb.Record) error {
	e.id = id
	for k, v := range fields {
		if err := e.prepare(id, k, v); err != nil {
			return err
		}
	}
	e.sortData()
	return nil
}

// sortData sets e.order to the changes of e.cs to data entries, in data
// order: schema keys by slot, which are unique, then extra keys sorted.
func (e *encoder) sortData() {
	var at [nSlots]int
	for i, c := range e.cs {
		if c.slot != extraSlot {
			at[c.slot] = i + 1
		}
	}
	for slot, i := range at {
		if i > 0 && kindOf(slot) == kindData {
			e.order = append(e.order, i-1)
		}
	}
	n := len(e.order)
	for i, c := range e.cs {
		if c.slot == extraSlot {
			e.order = append(e.order, i)
		}
	}
	x := e.order[n:]
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && e.extraKey(x[j]) < e.extraKey(x[j-1]); j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

// extraKey returns the key of change i, "" for a schema key.
func (e *encoder) extraKey(i int) string {
	if e.cs[i].slot != extraSlot {
		return ""
	}
	return e.keys[e.cs[i].key]
}

// merge returns the msg_id and data with the data changes of e.order
// applied (a record's buf, valid until e is used again) and the long
// buffers that go with it, given the current ones, and the change in
// buffer bytes. It calls added for each extra key data did not have,
// and sets e.replaced.
func (e *encoder) merge(data string, ext *[2]string, added func(string)) ([]byte, *[2]string, int64) {
	out := append(e.out[:0], e.id...)
	var exts [2]string
	if ext != nil {
		exts = *ext
	}
	var delta int64
	e.replaced = [2]int{-1, -1}
	i := 0
	for _, ci := range e.order {
		c, ckey := &e.cs[ci], e.extraKey(ci)
		found := false
		for i < len(data) {
			slot, key, v := dataEntry(data, i)
			if slot > c.slot || slot == c.slot && key >= ckey {
				if found = slot == c.slot && key == ckey; found {
					if x := indexSlot(slot); x >= 0 {
						e.replaced[x] = v
					}
					switch {
					case data[v] == tagExternal:
						delta -= bufferBytes(exts[data[v+1]], 0)
						exts[data[v+1]] = ""
					case slot == slotBuffers || slot == slotResultBuffers:
						delta -= bufferBytes(data, v)
					}
					i = skip(data, v)
				}
				break
			}
			end := skip(data, v)
			out = append(out, data[i:end]...)
			i = end
		}
		if c.slot == extraSlot && !found && added != nil {
			added(ckey)
		}
		if c.lo == c.hi {
			continue // at its default: no entry
		}
		out = append(out, byte(c.slot))
		delta += c.size
		if x := extIndex(c.slot); x >= 0 && c.hi-c.lo > maxInline {
			exts[x] = string(e.b[c.lo:c.hi])
			out = append(out, tagExternal, byte(x))
			continue
		}
		if c.slot == extraSlot {
			out = appendKey(out, ckey)
		}
		out = append(out, e.b[c.lo:c.hi]...)
	}
	out = append(out, data[i:]...)
	e.out = out
	if exts == [2]string{} {
		ext = nil
	} else if ext == nil || exts != *ext {
		ext = &exts
	}
	return out, ext, delta
}

// extIndex returns the index in store.ext of a slot's long values, or -1
// if the slot's values are always inline.
func extIndex(slot int) int {
	switch slot {
	case slotBuffers:
		return 0
	case slotResultBuffers:
		return 1
	}
	return -1
}

// newRec returns a record of fields, with every other schema key at its
// default, outside the lock: its buf, which e holds until used again, and
// its long buffers.
func (e *encoder) newRec(id string, fields taskdb.Record) (rec, []byte, *[2]string, error) {
	e.adding = true
	if err := e.prepareAll(id, fields); err != nil {
		return rec{}, nil, nil, err
	}
	r := rec{idn: len(id)}
	for i := range r.times {
		r.times[i] = noTime
	}
	for _, c := range e.cs {
		if kindOf(c.slot) == kindTime {
			r.times[slotTime[c.slot]] = c.t
		}
	}
	buf, ext, size := e.merge("", nil, nil)
	r.size = size
	return r, buf, ext, nil
}
