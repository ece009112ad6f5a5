package hub

// taskEnd is how a finished task ended.
type taskEnd uint8

const (
	endOK      taskEnd = iota + 1
	endFailed          // an error result, or the scheduler's own failure
	endAborted         // the engine aborted it: failed, but not listed as completed on the engine
)

// endOf reads a result's status ("ok", "error", "aborted", ...).
func endOf(status string) taskEnd {
	switch status {
	case "ok":
		return endOK
	case "aborted":
		return endAborted
	}
	return endFailed
}

// doneTask is what the hub remembers of a finished task.
type doneTask struct {
	msgID      string
	engine     string // uuid it finished on; "" for the scheduler's own failures
	end        taskEnd
	lb         bool      // load-balanced: dependencies may name it
	prev, next *doneTask // finishing order
}

// finished remembers the most recently finished tasks, for dependencies,
// status-only result requests, late results and queue status. Beyond
// limit tasks (0: no limit) the oldest is forgotten; the task database
// still has it, and the count of tasks completed on its engine keeps it.
// Only the state goroutine uses it.
type finished struct {
	limit        int
	byID         map[string]*doneTask
	oldest, last *doneTask
	perEngine    map[string]int // listed tasks per engine uuid
	evicted      map[string]int // listed tasks per engine uuid forgotten beyond limit
}

func newFinished(limit int) *finished {
	return &finished{limit: limit, byID: map[string]*doneTask{}, perEngine: map[string]int{}, evicted: map[string]int{}}
}

// listed reports whether t counts as completed on its engine (queue
// status): it ran there and was not aborted, as in the reference.
func (t *doneTask) listed() bool { return t.engine != "" && t.end != endAborted }

// add remembers a finished task, forgetting the oldest beyond the limit.
// A msg_id that finished before (reused by a client) moves to the end.
func (f *finished) add(msgID, engine string, end taskEnd, lb bool) {
	f.forget(msgID)
	t := &doneTask{msgID: msgID, engine: engine, end: end, lb: lb, prev: f.last}
	if f.last != nil {
		f.last.next = t
	} else {
		f.oldest = t
	}
	f.last = t
	f.byID[msgID] = t
	if t.listed() {
		f.perEngine[engine]++
	}
	if f.limit > 0 && len(f.byID) > f.limit {
		old := f.oldest
		f.forget(old.msgID)
		if old.listed() {
			f.evicted[old.engine]++
		}
	}
}

// get returns the remembered task, or nil.
func (f *finished) get(msgID string) *doneTask { return f.byID[msgID] }

func (f *finished) has(msgID string) bool { return f.byID[msgID] != nil }

func (f *finished) len() int { return len(f.byID) }

// forget drops a task, if remembered.
func (f *finished) forget(msgID string) {
	t := f.byID[msgID]
	if t == nil {
		return
	}
	delete(f.byID, msgID)
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		f.oldest = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		f.last = t.prev
	}
	if t.listed() {
		if f.perEngine[t.engine]--; f.perEngine[t.engine] == 0 {
			delete(f.perEngine, t.engine)
		}
	}
}

// forgetAll drops every task.
func (f *finished) forgetAll() {
	*f = *newFinished(f.limit)
}

// forgetEngine drops every task that finished on engine.
func (f *finished) forgetEngine(engine string) {
	delete(f.evicted, engine)
	for t := f.oldest; t != nil; {
		next := t.next
		if t.engine == engine {
			f.forget(t.msgID)
		}
		t = next
	}
}

// completedOn returns how many tasks are listed as completed on engine,
// remembered or not. Purging a forgotten msg_id does not lower it: the
// hub no longer knows its engine.
func (f *finished) completedOn(engine string) int { return f.perEngine[engine] + f.evicted[engine] }

// listOn returns, for each of engines, the remembered msg_ids listed as
// completed on it, in finishing order: one walk over the memory.
func (f *finished) listOn(engines []string) map[string][]string {
	lists := make(map[string][]string, len(engines))
	for _, e := range engines {
		lists[e] = make([]string, 0, f.perEngine[e])
	}
	for t := f.oldest; t != nil; t = t.next {
		if l, ok := lists[t.engine]; ok && t.listed() {
			lists[t.engine] = append(l, t.msgID)
		}
	}
	return lists
}
