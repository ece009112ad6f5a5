package hub

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// schedLog records a scheduler's decisions as "assign id engine",
// "fail id Kind", "timer id" and, when the scheduler withdraws a
// timeout, "stop id".
type schedLog struct{ events []string }

func (l *schedLog) assign(j *job, engine string) {
	l.events = append(l.events, "assign "+j.msgID+" "+engine)
}
func (l *schedLog) fail(j *job, why taskFailure) {
	l.events = append(l.events, "fail "+j.msgID+" "+string(why))
}
func (l *schedLog) armTimeout(j *job) func() bool {
	l.events = append(l.events, "timer "+j.msgID)
	return func() bool { l.events = append(l.events, "stop "+j.msgID); return true }
}
func (l *schedLog) resolve(j *job, ids []string) {
	l.events = append(l.events, "resolve "+j.msgID+" "+strings.Join(ids, ","))
}

// expect fails the test unless the log since the last take is want;
// what, if not empty, says which step is checked.
func (l *schedLog) expect(t *testing.T, what, want string) {
	t.Helper()
	if got := l.take(); got != want {
		if what != "" {
			what += ": "
		}
		t.Fatalf("%sgot %q, want %q", what, got, want)
	}
}

func (l *schedLog) take() string {
	s := strings.Join(l.events, "; ")
	l.events = nil
	return s
}

func dep(ids ...string) dependency {
	d := dependency{ids: idSet{}, all: true, success: true}
	for _, id := range ids {
		d.ids.add(id)
	}
	return d
}

func newJobFor(id string) *job {
	return &job{msgID: id, after: dep(), follow: dep()}
}

// seqIntn returns the given values in turn, for the random schemes.
func seqIntn(vals ...int) func(int) int {
	return func(n int) int {
		v := vals[0] % n
		vals = append(vals[1:], vals[0])
		return v
	}
}

func TestSchemes(t *testing.T) {
	loads := []int{2, 0, 1, 0}
	for _, c := range []struct {
		name string
		pick scheme
		intn func(int) int
		want int
	}{
		{"leastload first minimum", leastLoad, nil, 1},
		{"lru front", lru, nil, 0},
		{"plainrandom", plainRandom, seqIntn(3), 3},
		{"twobin smaller of two", twoBin, seqIntn(3, 2), 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.pick(loads, c.intn); got != c.want {
				t.Fatalf("got %d, want %d", got, c.want)
			}
		})
	}
	for _, name := range []string{"", "leastload", "lru", "plainrandom", "twobin"} {
		if _, err := schemeByName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	if _, err := schemeByName("weighted"); err == nil {
		t.Error("weighted accepted")
	}
}

func TestSchedulerHWMAndLRU(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(leastLoad, 1, l, newFinished(0))
	s.addEngine("A")
	s.addEngine("B") // front: B, A
	for i := range 3 {
		s.submit(newJobFor(fmt.Sprint("t", i)))
	}
	l.expect(t, "", "assign t0 B; assign t1 A")
	if got := s.result("A", "t1", endOK, true, nil); got != resultFinal {
		t.Fatalf("result outcome %v", got)
	}
	l.expect(t, "after a result", "assign t2 A")
	if got := s.result("A", "nope", endOK, true, nil); got != resultUnknown {
		t.Fatalf("unknown result outcome %v", got)
	}
}

func TestSchedulerUnlimitedHWM(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(leastLoad, 0, l, newFinished(0))
	s.addEngine("A")
	for i := range 3 {
		s.submit(newJobFor(fmt.Sprint("t", i)))
	}
	l.expect(t, "", "assign t0 A; assign t1 A; assign t2 A")
}

func TestSchedulerTargets(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(leastLoad, 1, l, newFinished(0))
	s.addEngine("A")
	s.addEngine("B")
	j := newJobFor("t0")
	j.targets = idSet{"A": {}}
	s.submit(j)
	j = newJobFor("t1")
	j.targets = idSet{"A": {}}
	s.submit(j) // A busy: waits although B is free
	l.expect(t, "", "assign t0 A")
	j = newJobFor("t2")
	j.targets = idSet{"gone": {}}
	s.submit(j)
	l.expect(t, "dead target", "fail t2 ImpossibleDependency")
	s.removeEngine("A") // t1's only target left
	l.expect(t, "target removed", "fail t1 ImpossibleDependency")
}

func TestSchedulerRetries(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(lru, 1, l, newFinished(0))
	s.addEngine("A")
	s.addEngine("B")
	j := newJobFor("t0")
	j.retries = 1
	s.submit(j)
	l.expect(t, "", "assign t0 B")
	if got := s.result("B", "t0", endFailed, true, nil); got != resultRetried {
		t.Fatalf("first failure: %v", got)
	}
	if got := l.take(); got != "assign t0 A" {
		t.Fatalf("retry went to %q, want A (B blacklisted)", got)
	}
	if got := s.result("A", "t0", endFailed, true, nil); got != resultFinal {
		t.Fatalf("second failure: %v", got)
	}
}

func TestSchedulerUnmetDependenciesBlacklist(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(lru, 1, l, newFinished(0))
	s.addEngine("A")
	j := newJobFor("t0")
	j.targets = idSet{"A": {}}
	s.submit(j)
	l.take()
	s.result("A", "t0", endFailed, false, nil)
	l.expect(t, "", "fail t0 ImpossibleDependency")
}

func TestSchedulerAfterFollow(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(lru, 0, l, newFinished(0))
	s.addEngine("A")
	s.addEngine("B")
	s.submit(newJobFor("p")) // -> B
	j := newJobFor("a")
	j.after = dep("p")
	s.submit(j)
	j = newJobFor("f")
	j.follow = dep("p")
	s.submit(j)
	l.expect(t, "", "assign p B")
	s.result("B", "p", endOK, true, nil)
	// after: any engine (A is least recently used); follow: where p ran.
	l.expect(t, "", "assign a A; assign f B")

	bad := newJobFor("self")
	bad.after = dep("self")
	s.submit(bad)
	unknown := newJobFor("u")
	unknown.follow = dep("never-submitted")
	s.submit(unknown)
	l.expect(t, "", "fail self InvalidDependency; resolve u never-submitted")
	s.resolved("u", nil)
	l.expect(t, "not in the database either", "fail u InvalidDependency")

	// a failed dependency makes success-only dependents impossible
	s.submit(newJobFor("x"))
	j = newJobFor("y")
	j.after = dep("x")
	s.submit(j)
	l.take()
	s.result(engineOf(t, s, "x"), "x", endFailed, true, nil)
	l.expect(t, "", "fail y ImpossibleDependency")
	// ...and a new dependent is refused at once
	j = newJobFor("z")
	j.after = dep("x")
	s.submit(j)
	l.expect(t, "", "fail z ImpossibleDependency")
	// failure=true accepts it
	j = newJobFor("w")
	j.after = dependency{ids: idSet{"x": {}}, all: true, success: true, failure: true}
	s.submit(j)
	if got := l.take(); !strings.HasPrefix(got, "assign w ") {
		t.Fatalf("got %q", got)
	}
}

func TestSchedulerFollowImpossible(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(lru, 0, l, newFinished(0))
	s.addEngine("A")
	s.addEngine("B")
	s.submit(newJobFor("p")) // B
	s.submit(newJobFor("q")) // A
	s.result("B", "p", endOK, true, nil)
	s.result("A", "q", endOK, true, nil)
	l.take()
	j := newJobFor("f")
	j.follow = dep("p", "q")
	s.submit(j)
	l.expect(t, "", "fail f ImpossibleDependency")
}

func TestSchedulerTimeout(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(lru, 1, l, newFinished(0))
	j := newJobFor("t")
	j.timeout = 1
	s.submit(j) // no engines: waits
	l.expect(t, "", "timer t")
	s.timeout("t", j.timerGen-1) // stale timer
	if got := l.take(); got != "" {
		t.Fatalf("stale timer: %q", got)
	}
	s.timeout("t", j.timerGen)
	l.expect(t, "", "stop t; fail t TaskTimeout")
	// a job assigned before its timer fires is not failed
	j = newJobFor("u")
	j.timeout = 1
	s.submit(j)
	s.addEngine("A")
	s.timeout("u", j.timerGen)
	l.expect(t, "", "timer u; stop u; assign u A")
}

func TestSchedulerStranded(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(lru, 0, l, newFinished(0))
	s.addEngine("A")
	s.addEngine("B")
	for i := range 4 {
		j := newJobFor(fmt.Sprint("t", i))
		j.retries = i % 2
		s.submit(j)
	}
	l.take()
	s.removeEngine("B")
	var ids []string
	for _, j := range s.stranded("B") {
		ids = append(ids, j.msgID)
	}
	if !slices.Equal(ids, []string{"t0", "t2"}) {
		t.Fatalf("stranded %v", ids)
	}
	for _, id := range ids {
		if got := s.result("B", id, endFailed, true, nil); got != resultFinal {
			t.Fatalf("%s: %v (no retries)", id, got)
		}
	}
	s.removeEngine("A")
	s.addEngine("C")
	for _, j := range s.stranded("A") {
		if got := s.result("A", j.msgID, endFailed, true, nil); got != resultRetried {
			t.Fatalf("%s: %v, want a retry", j.msgID, got)
		}
	}
	if got := l.take(); got != "assign t1 C; assign t3 C" {
		t.Fatalf("retries went to %q", got)
	}
	for _, id := range []string{"t1", "t3"} {
		s.result("C", id, endOK, true, nil)
	}
	s.removeEngine("C") // idle: no result will ever forget it
	if len(s.gone) != 0 {
		t.Fatalf("gone engines not forgotten: %v", s.gone)
	}
}

// TestSchedulerQueueOrder: jobs that cannot run keep their order (the
// reference reverses them, §10.19).
func TestSchedulerQueueOrder(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(lru, 1, l, newFinished(0))
	for i := range 4 {
		s.submit(newJobFor(fmt.Sprint("t", i)))
	}
	s.addEngine("A")
	s.addEngine("B")
	l.expect(t, "", "assign t0 A; assign t1 B")
	s.result("A", "t0", endOK, true, nil)
	s.result("B", "t1", endOK, true, nil)
	l.expect(t, "", "assign t2 A; assign t3 B")
}

func engineOf(t *testing.T, s *scheduler, msgID string) string {
	t.Helper()
	for _, e := range s.engines {
		if _, ok := e.pending[msgID]; ok {
			return e.uuid
		}
	}
	t.Fatalf("%s not assigned", msgID)
	return ""
}

func TestParseDependency(t *testing.T) {
	for _, c := range []struct {
		in      any
		ids     int
		all     bool
		failure bool
		err     bool
	}{
		{nil, 0, true, false, false},
		{"a", 1, true, false, false},
		{[]any{"a", "b", "a"}, 2, true, false, false},
		{map[string]any{"dependencies": []any{"a"}, "all": false, "failure": true}, 1, false, true, false},
		{map[string]any{"dependencies": "a"}, 1, true, false, false},
		{map[string]any{"success": false, "failure": false}, 0, true, false, true},
		{map[string]any{"all": "yes"}, 0, true, false, true},
		{[]any{int64(1)}, 0, true, false, true},
		{int64(3), 0, true, false, true},
	} {
		d, err := parseDependency(c.in)
		if (err != nil) != c.err {
			t.Errorf("%v: err %v", c.in, err)
			continue
		}
		if err == nil && (len(d.ids) != c.ids || d.all != c.all || d.failure != c.failure) {
			t.Errorf("%v: got %+v", c.in, d)
		}
	}
}

func TestDependencyMetUnreachable(t *testing.T) {
	status := func(id string) (bool, bool) { return id == "a", id == "b" } // a succeeded, b failed
	for _, c := range []struct {
		d                dependency
		met, unreachable bool
	}{
		{dep(), true, false},
		{dep("a"), true, false},
		{dep("a", "c"), false, false},
		{dep("b"), false, true},
		{dependency{ids: idSet{"a": {}, "b": {}}, all: false, success: true}, true, false},
		{dependency{ids: idSet{"b": {}}, all: true, success: true, failure: true}, true, false},
		{dependency{ids: idSet{"a": {}}, all: true, failure: true}, false, true},
		{dependency{ids: idSet{"a": {}, "b": {}}, all: false, failure: true}, true, false},
	} {
		if got := c.d.met(status); got != c.met {
			t.Errorf("%+v met = %v", c.d, got)
		}
		if got := c.d.unreachable(status); got != c.unreachable {
			t.Errorf("%+v unreachable = %v", c.d, got)
		}
	}
}

// TestSchedulerForgotten: a waiting job keeps how its dependencies ended
// when the hub forgets them; a new job that names a forgotten (or never
// seen) msg_id waits for the task database's answer.
func TestSchedulerForgotten(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(lru, 0, l, newFinished(2))
	s.addEngine("A")
	s.submit(newJobFor("p")) // pending: never forgotten
	s.submit(newJobFor("c"))
	j := newJobFor("w") // waits on p and c
	j.after = dep("p", "c")
	s.submit(j)
	s.result("A", "c", endOK, true, nil)
	for _, id := range []string{"ok1", "ok2"} { // c is forgotten by the limit
		s.submit(newJobFor(id))
		s.result("A", id, endOK, true, nil)
	}
	l.take()
	if s.done.has("c") || s.done.len() != 2 {
		t.Fatalf("memory holds %d tasks, c %v; want 2, not c", s.done.len(), s.done.has("c"))
	}
	s.result("A", "p", endOK, true, nil)
	l.expect(t, "w, after p and the forgotten c", "assign w A")

	j = newJobFor("x")
	j.after = dep("c", "ok2")
	j.follow = dep("never")
	s.submit(j)
	l.expect(t, "forgotten and unknown ids", "resolve x c,never")
	s.resolved("x", map[string]taskState{"c": {done: true, ok: true, engine: "A"}})
	l.expect(t, "never is not in the database", "fail x InvalidDependency")
	if got := s.jobs["x"]; got != nil || !slices.Equal(j.unknown, []string{"never"}) {
		t.Fatalf("job %v, unknown %v", got, j.unknown)
	}

	for _, c := range []struct {
		name  string
		found taskState
		want  string
	}{
		{"success", taskState{done: true, ok: true, engine: "B"}, "assign y A"},
		{"failure", taskState{done: true, engine: "B"}, "fail y ImpossibleDependency"},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := newJobFor("y")
			j.after = dep("c")
			s.submit(j)
			l.expect(t, "", "resolve y c")
			s.resolved("y", map[string]taskState{"c": c.found})
			l.expect(t, "", c.want)
			s.result("A", "y", endOK, true, nil)
		})
	}
}

// A result that frees an engine runs the oldest ready job, not a newer
// dependent of that result, as ipyparallel's update_graph does.
func TestSchedulerReadyBeforeNewDependent(t *testing.T) {
	l := &schedLog{}
	s := newScheduler(leastLoad, 1, l, newFinished(0))
	s.addEngine("E")
	s.submit(newJobFor("a"))
	s.submit(newJobFor("b"))
	c := newJobFor("c")
	c.after = dep("a")
	s.submit(c)
	l.expect(t, "submit", "assign a E")
	s.result("E", "a", endOK, true, nil)
	l.expect(t, "after a", "assign b E")
	s.result("E", "b", endOK, true, nil)
	l.expect(t, "after b", "assign c E")
}
