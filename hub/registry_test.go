package hub

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/taskhub/taskhub/wire"
)

func TestRegistryIDs(t *testing.T) {
	r := newRegistry()
	later := time.Now().Add(time.Hour)
	id := func(n int) *int { return &n }
	step := func(uuid string, req *int, want int) {
		t.Helper()
		e, err := r.register(uuid, req, later)
		if err != nil {
			t.Fatalf("%s: %v", uuid, err)
		}
		if e.id != want {
			t.Fatalf("%s: id %d, want %d", uuid, e.id, want)
		}
	}
	step("a", nil, 0)
	step("b", id(5), 5) // granted; counter jumps to 6
	step("c", nil, 6)
	step("d", id(0), 7) // held by a pending registration
	r.activate("a")
	step("e", id(0), 8) // held by a live engine

	// a refused registration does not use up an id
	_, err := r.register("a", nil, later)
	var we *wire.Error
	if !errors.As(err, &we) || we.Name != "KeyError" {
		t.Fatalf("duplicate live uuid: %v", err)
	}
	if _, err := r.register("b", nil, later); err == nil {
		t.Fatal("duplicate pending uuid accepted")
	}
	step("f", nil, 9)

	// a freed id can be requested again
	r.remove(0)
	step("g", id(0), 0)
	step("h", id(1<<40), 10) // out of range: the counter's id
	if got := r.activate("nope"); got != nil {
		t.Fatal("activated an unknown uuid")
	}
}

func TestRegistryExpire(t *testing.T) {
	r := newRegistry()
	now := time.Now()
	r.register("old", nil, now.Add(-time.Second))
	r.register("new", nil, now.Add(time.Second))
	gone := r.expire(now)
	if len(gone) != 1 || gone[0].uuid != "old" {
		t.Fatalf("expired %v", gone)
	}
	if r.activate("old") != nil || r.activate("new") == nil {
		t.Fatal("wrong registration expired")
	}
}

func TestRegistryTargets(t *testing.T) {
	r := newRegistry()
	for _, u := range []string{"u0", "u1", "u2"} {
		r.register(u, nil, time.Now().Add(time.Hour))
		r.activate(u)
	}
	for _, c := range []struct {
		in   any
		want []int
		err  string
	}{
		{nil, []int{0, 1, 2}, ""},
		{int64(1), []int{1}, ""},
		{"u2", []int{2}, ""},
		{[]any{int64(2), "u0", float64(1)}, []int{2, 0, 1}, ""},
		{[]any{int64(9), "zz"}, nil, "No Such Engine: [9, 'zz']"},
		{[]any{}, nil, "No Engines Registered"},
		{true, nil, "No Such Engine: [True]"},
	} {
		es, err := r.targets(c.in)
		if c.err != "" {
			var we *wire.Error
			if !errors.As(err, &we) || we.Name != "IndexError" || we.Value != c.err {
				t.Errorf("%v: err %v, want IndexError %q", c.in, err, c.err)
			}
			continue
		}
		var ids []int
		for _, e := range es {
			ids = append(ids, e.id)
		}
		if err != nil || !slices.Equal(ids, c.want) {
			t.Errorf("%v: %v %v, want %v", c.in, ids, err, c.want)
		}
	}
}

func TestHeart(t *testing.T) {
	start := time.Now()
	h := newHeart(start, 2)
	if h.pong("a", "0") {
		t.Fatal("pong before any ping counted")
	}
	p1, stopped := h.beat(start.Add(time.Second), []string{"a"})
	if len(stopped) != 0 {
		t.Fatalf("first beat stopped %v", stopped)
	}
	if !h.pong("a", p1) || h.pong("a", "bogus") {
		t.Fatal("pong accounting")
	}
	p2, _ := h.beat(start.Add(2*time.Second), []string{"a", "b"})
	if !h.pong("a", p1) { // the previous payload still counts
		t.Fatal("late pong for the previous ping refused")
	}
	_ = p2
	// b missed the beat at 2 s; the misses at 3 s and 4 s make three (> 2)
	for i, want := range [][]string{nil, {"b"}} {
		_, stopped := h.beat(start.Add(time.Duration(3+i)*time.Second), []string{"a", "b"})
		h.pong("a", h.cur)
		if !slices.Equal(stopped, want) {
			t.Fatalf("beat %d stopped %v, want %v", i, stopped, want)
		}
	}
}

// TestHeartProbe: a suspected heart is stopped at the beat after the
// probe ping unless it answers that ping; answers sent before the probe
// do not clear it.
func TestHeartProbe(t *testing.T) {
	start := time.Now()
	h := newHeart(start, 100)
	live := []string{"alive", "dead"}
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	h.beat(at(1), live)
	h.pong("alive", h.cur)
	h.pong("dead", h.cur) // its last answer, before the suspicion
	h.suspect("alive")
	h.suspect("dead")
	if _, stopped := h.beat(at(2), live); len(stopped) != 0 { // sends the probe
		t.Fatalf("probe beat stopped %v", stopped)
	}
	h.pong("alive", h.cur)
	if _, stopped := h.beat(at(3), live); !slices.Equal(stopped, []string{"dead"}) {
		t.Fatalf("stopped %v, want [dead]", stopped)
	}
	if _, suspected := h.suspects["alive"]; suspected {
		t.Fatal("answered probe still suspected")
	}
	for i := range 5 { // cleared: only maxMisses stops it now
		if _, stopped := h.beat(at(4+i), live[:1]); len(stopped) != 0 {
			t.Fatalf("beat %d stopped %v", i, stopped)
		}
	}
}
