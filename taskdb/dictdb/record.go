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
	kindData    kind = iota // in rec.buf
	kindExtra               // not a schema key: in rec.buf
	kindMsgID               // rec.buf
	kindTime                // rec.times
	kindIndexed             // rec.client or rec.engine, the values the bucket indexes serve
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
		case taskdb.KeyClientUUID, taskdb.KeyEngineUUID:
			k[i] = kindIndexed
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

// rec is a stored record: 120 bytes in a slab of records (see store),
// and one string holding its msg_id and packed data, so that
// the collector has about one object per record to mark. The string is
// immutable and replaced on update; the DB mutex guards the rec itself.
type rec struct {
	buf            string // the msg_id, then the data: entries of the keys not at their default (see pack.go)
	idn            int    // length of the msg_id
	seq            uint64
	times          [nTimes]int64 // microseconds since the Unix epoch, or noTime
	client, engine any           // nil, a string (the index's shared box), or a packed value
	ext            *[2]string    // buffers and result_buffers values longer than maxInline, or nil
	size           int64         // bytes of buffers and result_buffers, toward the size limit

	clientKey, engineKey int64 // keys of the record's entries in DB.byClient and DB.byEngine
}

// packed is an encoded client_uuid or engine_uuid value that is neither
// null nor a string.
type packed string

func (r *rec) id() string { return r.buf[:r.idn] }

// data returns the record's entries.
func (r *rec) data() string { return r.buf[r.idn:] }

func (r *rec) pending() bool { return r.times[timeCompleted] == noTime }

// indexed returns the value of client_uuid or engine_uuid, decoded with d.
func (d reader) indexed(v any) any {
	if p, ok := v.(packed); ok {
		x, _ := d.value(string(p), 0)
		return x
	}
	return v
}

// field returns the value of schema key slot, decoded with d, given
// where its data entry starts (-1: at its default).
func (d reader) field(slot, at int) any {
	r := d.r
	switch slotKind[slot] {
	case kindMsgID:
		return d.str(r.id())
	case kindTime:
		return d.time(r.times[slotTime[slot]])
	case kindIndexed:
		if slot == slotClientUUID {
			return d.indexed(r.client)
		}
		return d.indexed(r.engine)
	}
	if at < 0 {
		return slotDefault[slot]
	}
	v, _ := d.value(r.data(), at+1)
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
func (r *rec) layout() (at [nSlots]int, extras, n int) {
	for i := range at {
		at[i] = -1
	}
	s := r.data()
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

// Lookup implements query.Doc. Documents come back as views.
func (r *rec) Lookup(key string) (any, bool) {
	slot := slotOf(key)
	d := reader{r: r}
	if slot != extraSlot && slotKind[slot] != kindData {
		return d.field(slot, -1), true
	}
	s := r.data()
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
func (r *rec) Len() int {
	_, _, n := r.layout()
	return nSlots + n
}

// thawAll returns a deep copy of the whole record: the schema keys in
// order, then the extra keys, sorted. It reads the data in one pass.
func (r *rec) thawAll(t *thawer) taskdb.Doc {
	d := t.Doc(nSlots)[:nSlots] // extra keys, rare, grow it
	rd := reader{r: r, t: t}
	s, i := r.data(), 0
	for slot := range d {
		var v any
		if i < len(s) && int(s[i]) == slot {
			v, i = rd.value(s, i+1)
		} else {
			v = rd.field(slot, -1)
		}
		d[slot] = taskdb.Field{Key: taskdb.SchemaKeys[slot], Value: v}
	}
	return rd.extras(d, i)
}

// extras appends the extra keys of r's data, from i on, to d.
func (d reader) extras(out taskdb.Doc, i int) taskdb.Doc {
	s := d.r.data()
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
func (r *rec) project(t *thawer, keys []string) taskdb.Doc {
	at, extras, _ := r.layout()
	d := t.Doc(len(keys) + 1)
	rd := reader{r: r, t: t}
	for slot, k := range taskdb.SchemaKeys {
		if slot == slotMsgID || slices.Contains(keys, k) {
			d = append(d, taskdb.Field{Key: k, Value: rd.field(slot, at[slot])})
		}
	}
	s := r.data()
	for i := extras; i < len(s); {
		_, k, v := dataEntry(s, i)
		if slices.Contains(keys, k) {
			var x any
			x, i = rd.value(s, v)
			d = append(d, taskdb.Field{Key: k, Value: x})
			continue
		}
		i = skip(s, v)
	}
	return d
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
	case kindIndexed:
		i := c.slot - slotClientUUID
		e.indexed[i].set = true
		if _, ok := v.(string); ok || v == nil {
			e.indexed[i].v = v // strings are immutable: share the caller's box
			return nil
		}
		lo := len(e.b)
		e.key = k
		if err := e.value(v, 0); err != nil {
			return err
		}
		e.indexed[i].v = packed(e.b[lo:])
		e.b = e.b[:lo]
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
// applied (a rec.buf) and the rec.ext that goes with it, given the
// current one, and the change in buffer bytes. It calls added for each
// extra key data did not have.
func (e *encoder) merge(data string, ext *[2]string, added func(string)) (string, *[2]string, int64) {
	out := append(e.out[:0], e.id...)
	var exts [2]string
	if ext != nil {
		exts = *ext
	}
	var delta int64
	i := 0
	for _, ci := range e.order {
		c, ckey := &e.cs[ci], e.extraKey(ci)
		found := false
		for i < len(data) {
			slot, key, v := dataEntry(data, i)
			if slot > c.slot || slot == c.slot && key >= ckey {
				if found = slot == c.slot && key == ckey; found {
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
	return string(out), ext, delta
}

// extIndex returns the index in rec.ext of a slot's long values, or -1
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
// default, outside the lock.
func newRec(id string, fields taskdb.Record) (rec, error) {
	e := getEncoder()
	defer e.put()
	e.adding = true
	if err := e.prepareAll(id, fields); err != nil {
		return rec{}, err
	}
	r := rec{idn: len(id), client: e.indexed[0].v, engine: e.indexed[1].v}
	for i := range r.times {
		r.times[i] = noTime
	}
	for _, c := range e.cs {
		if kindOf(c.slot) == kindTime {
			r.times[slotTime[c.slot]] = c.t
		}
	}
	r.buf, r.ext, r.size = e.merge("", nil, nil)
	return r, nil
}
