package hub

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taskhub/taskhub/wire"
)

// engine is a registered (or registering) engine as the hub tracks it.
type engine struct {
	id       int
	uuid     string
	deadline time.Time // registration must complete by then (pending only)

	queue map[string]uint64 // direct (mux) msg_ids awaiting results, by arrival
	tasks map[string]uint64 // load-balanced msg_ids assigned, by arrival
}

// registry implements the engine id rules (§5) without the reference's
// defects: a failed registration does not use up an id, and stalled
// registrations expire. Only the state goroutine uses it.
type registry struct {
	next    int
	pending map[string]*engine // by uuid: waiting for the first heartbeat
	live    map[int]*engine
	byUUID  map[string]*engine // live engines
	seq     uint64
}

func newRegistry() *registry {
	return &registry{pending: map[string]*engine{}, live: map[int]*engine{}, byUUID: map[string]*engine{}}
}

// errUUIDInUse is the registration error for a uuid already known.
func errUUIDInUse(uuid string) error {
	return &wire.Error{Name: "KeyError", Value: fmt.Sprintf("uuid %s in use", pyRepr(uuid))}
}

// maxEngineID bounds requested engine ids, keeping the counter far from
// overflow.
const maxEngineID = 1<<31 - 1

// register starts a registration. requested, if not nil, is the engine's
// preferred id: granted when no live or pending engine holds it.
func (r *registry) register(uuid string, requested *int, deadline time.Time) (*engine, error) {
	if _, ok := r.byUUID[uuid]; ok {
		return nil, errUUIDInUse(uuid)
	}
	if _, ok := r.pending[uuid]; ok {
		return nil, errUUIDInUse(uuid)
	}
	id := r.next
	if requested != nil && *requested >= 0 && *requested <= maxEngineID && !r.idTaken(*requested) {
		id = *requested
	}
	r.next = max(r.next, id+1)
	e := &engine{id: id, uuid: uuid, deadline: deadline, queue: map[string]uint64{}, tasks: map[string]uint64{}}
	r.pending[uuid] = e
	return e, nil
}

func (r *registry) idTaken(id int) bool {
	if _, ok := r.live[id]; ok {
		return true
	}
	for _, e := range r.pending {
		if e.id == id {
			return true
		}
	}
	return false
}

// activate completes the registration of uuid. It returns nil when uuid is
// not pending.
func (r *registry) activate(uuid string) *engine {
	e, ok := r.pending[uuid]
	if !ok {
		return nil
	}
	delete(r.pending, uuid)
	r.live[e.id] = e
	r.byUUID[uuid] = e
	return e
}

// remove unregisters a live engine; nil if it is not live.
func (r *registry) remove(id int) *engine {
	e, ok := r.live[id]
	if !ok {
		return nil
	}
	delete(r.live, id)
	delete(r.byUUID, e.uuid)
	return e
}

// expire drops and returns the pending registrations whose deadline passed.
func (r *registry) expire(now time.Time) []*engine {
	var out []*engine
	for uuid, e := range r.pending {
		if now.After(e.deadline) {
			delete(r.pending, uuid)
			out = append(out, e)
		}
	}
	return out
}

// ids returns the live engine ids in ascending order.
func (r *registry) ids() []int {
	return slices.Sorted(maps.Keys(r.live))
}

// target resolves a queue_request/load_request target: an int id or a
// uuid string naming a live engine.
func (r *registry) target(t any) (*engine, bool) {
	if u, ok := t.(string); ok {
		e, ok := r.byUUID[u]
		return e, ok
	}
	id, ok := asInt(t)
	if !ok {
		return nil, false
	}
	e, ok := r.live[id]
	return e, ok
}

// targets resolves a targets value (null: all live engines; one target;
// or a list). Unknown targets give IndexError "No Such Engine: [...]".
func (r *registry) targets(v any) ([]*engine, error) {
	var ts []any
	switch v := v.(type) {
	case nil:
		es := make([]*engine, 0, len(r.live))
		for _, id := range r.ids() {
			es = append(es, r.live[id])
		}
		return es, nil
	case []any:
		ts = v
	default:
		ts = []any{v}
	}
	var es []*engine
	var bad []string
	for _, t := range ts {
		e, ok := r.target(t)
		if !ok {
			bad = append(bad, pyRepr(t))
			continue
		}
		es = append(es, e)
	}
	if len(bad) > 0 {
		return nil, &wire.Error{Name: "IndexError", Value: "No Such Engine: [" + strings.Join(bad, ", ") + "]"}
	}
	if len(es) == 0 {
		return nil, &wire.Error{Name: "IndexError", Value: "No Engines Registered"}
	}
	return es, nil
}

// track adds a msg_id to a per-engine pending map, remembering order.
func (r *registry) track(m map[string]uint64, msgID string) {
	r.seq++
	m[msgID] = r.seq
}

// ordered returns a per-engine pending map's msg_ids in arrival order.
func ordered(m map[string]uint64) []string {
	ids := slices.Collect(maps.Keys(m))
	slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(m[a], m[b]) })
	return ids
}

// pyRepr renders a JSON-ish scalar the way Python's repr does in the
// reference's error messages.
func pyRepr(v any) string {
	switch v := v.(type) {
	case string:
		return "'" + v + "'"
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	}
	return fmt.Sprint(v)
}
