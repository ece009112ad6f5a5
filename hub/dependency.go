package hub

import (
	"errors"
	"fmt"
)

// idSet is a set of msg_ids or engine uuids.
type idSet map[string]struct{}

func (s idSet) has(id string) bool { _, ok := s[id]; return ok }
func (s idSet) add(id string)      { s[id] = struct{}{} }

// dependency is a task's after or follow constraint (ipyparallel's
// Dependency): a set of msg_ids and how they count as met.
type dependency struct {
	ids     idSet
	all     bool // all ids must finish (else: any one)
	success bool // successes satisfy the dependency
	failure bool // failures satisfy the dependency
}

// errBadDependency reports request metadata that is not a dependency.
var errBadDependency = errors.New("invalid dependency")

// parseDependency reads an after/follow metadata value: nil, a msg_id, a
// list of msg_ids, or {dependencies, all, success, failure}.
func parseDependency(v any) (dependency, error) {
	d := dependency{all: true, success: true}
	if v == nil {
		return d, nil // the common case: no map to allocate
	}
	d.ids = idSet{}
	switch v := v.(type) {
	case string:
		d.ids.add(v)
		return d, nil
	case []any:
		return d, d.addIDs(v)
	case map[string]any:
		for _, f := range []struct {
			key string
			dst *bool
		}{{"all", &d.all}, {"success", &d.success}, {"failure", &d.failure}} {
			if x, ok := v[f.key]; ok && x != nil {
				b, ok := x.(bool)
				if !ok {
					return d, fmt.Errorf("%w: %s is %T, not a bool", errBadDependency, f.key, x)
				}
				*f.dst = b
			}
		}
		if !d.success && !d.failure {
			return d, fmt.Errorf("%w: must depend on at least one of successes or failures", errBadDependency)
		}
		switch ids := v["dependencies"].(type) {
		case nil:
		case string:
			d.ids.add(ids)
		case []any:
			return d, d.addIDs(ids)
		default:
			return d, fmt.Errorf("%w: dependencies is %T", errBadDependency, ids)
		}
		return d, nil
	default:
		return d, fmt.Errorf("%w: %T", errBadDependency, v)
	}
}

func (d *dependency) addIDs(ids []any) error {
	for _, x := range ids {
		s, ok := x.(string)
		if !ok {
			return fmt.Errorf("%w: msg_id %v is %T", errBadDependency, x, x)
		}
		d.ids.add(s)
	}
	return nil
}

func (d dependency) empty() bool { return len(d.ids) == 0 }

// statusFunc tells how a task ended: ok, failed, or neither (pending or
// unknown).
type statusFunc func(msgID string) (ok, failed bool)

// met reports whether the dependency is satisfied by the finished tasks.
func (d dependency) met(status statusFunc) bool {
	if d.empty() {
		return true
	}
	n := 0
	for id := range d.ids {
		ok, failed := status(id)
		if (d.success && ok) || (d.failure && failed) {
			n++
			if !d.all {
				return true
			}
		}
	}
	return n == len(d.ids)
}

// unreachable reports whether the dependency can no longer be met.
func (d dependency) unreachable(status statusFunc) bool {
	if d.empty() {
		return false
	}
	n := 0
	for id := range d.ids {
		ok, failed := status(id)
		if (!d.success && ok) || (!d.failure && failed) {
			n++
			if d.all {
				return true
			}
		}
	}
	return n == len(d.ids)
}
