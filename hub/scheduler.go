package hub

import (
	"cmp"
	"container/heap"
	"container/list"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/taskhub/taskhub/wire"
)

// Scheme names accepted in Config.Scheme.
const (
	SchemeLeastLoad   = "leastload"
	SchemeLRU         = "lru"
	SchemePlainRandom = "plainrandom"
	SchemeTwoBin      = "twobin"
)

// scheme picks an index into loads, which are the candidate engines'
// outstanding task counts in LRU order (least recently used first).
type scheme func(loads []int, intn func(int) int) int

func leastLoad(loads []int, _ func(int) int) int {
	best := 0
	for i, l := range loads {
		if l < loads[best] {
			best = i
		}
	}
	return best
}

func lru([]int, func(int) int) int { return 0 }

func plainRandom(loads []int, intn func(int) int) int { return intn(len(loads)) }

func twoBin(loads []int, intn func(int) int) int {
	return min(intn(len(loads)), intn(len(loads)))
}

func schemeByName(name string) (scheme, error) {
	switch name {
	case "", SchemeLeastLoad:
		return leastLoad, nil
	case SchemeLRU:
		return lru, nil
	case SchemePlainRandom:
		return plainRandom, nil
	case SchemeTwoBin:
		return twoBin, nil
	}
	return nil, fmt.Errorf("unknown scheduler scheme %q (want leastload, lru, plainrandom or twobin)", name)
}

// job is a load-balanced task known to the scheduler, from submission to
// its final result.
type job struct {
	msgID     string
	client    []byte        // submitting client's identity on the task socket
	frames    [][]byte      // the request as received, after the identity
	header    wire.Header   // request header: the parent of synthesized replies
	targets   idSet         // allowed engine uuids; nil means any
	after     dependency    // time dependency
	follow    dependency    // location dependency
	timeout   time.Duration // 0: none
	retries   int           // resubmissions left after a failure
	blacklist idSet         // engines that failed it or lacked dependencies
	seq       uint64        // submission order

	// deps is how each after and follow msg_id ended, as far as known:
	// the job keeps its own copy, so the hub may forget finished tasks
	// while the job waits. nil without dependencies.
	deps map[string]taskState
	// unknown lists the msg_ids the scheduler did not know at submission:
	// looked up in the task database (resolve), or not found there.
	unknown []string

	elem      *list.Element // position in the wait list; nil when not waiting
	ready     bool          // waiting with after met: in the free queue, or in those of the engines it may use
	readyGen  uint32        // counts the times it became ready: older queue entries are stale
	queues    []*readyQueue // the engine queues holding its current entries (none when free)
	timerGen  int           // invalidates stale timeout events
	stopTimer func() bool   // withdraws the armed timeout; nil if none
}

// waiting reports whether j waits (blocked or ready; not assigned, not
// done, not being resolved).
func (j *job) waiting() bool { return j.elem != nil }

// free reports whether j may run on any engine.
func (j *job) free() bool { return j.targets == nil && len(j.blacklist) == 0 && j.follow.empty() }

// status is the statusFunc of j's dependencies.
func (j *job) status(id string) (ok, failed bool) {
	t := j.deps[id]
	return t.done && t.ok, t.done && !t.ok
}

// statusOn is the statusFunc of j's dependencies that finished on engine.
func (j *job) statusOn(engine string) statusFunc {
	return func(id string) (ok, failed bool) {
		t := j.deps[id]
		on := t.done && t.engine == engine
		return on && t.ok, on && !t.ok
	}
}

// taskFailure names the scheduler's own task failures (§7).
type taskFailure string

const (
	failInvalidDependency    taskFailure = "InvalidDependency"
	failImpossibleDependency taskFailure = "ImpossibleDependency"
	failTimeout              taskFailure = "TaskTimeout"
)

// schedOutput receives the scheduler's decisions. The hub implements it;
// the methods run on the state goroutine, inside scheduler calls.
type schedOutput interface {
	// assign sends j to the engine and records the destination.
	assign(j *job, engine string)
	// fail answers j with an error reply of the given kind.
	fail(j *job, why taskFailure)
	// armTimeout asks for timeout(j.msgID, j.timerGen) after j.timeout,
	// and returns a function that withdraws the request.
	armTimeout(j *job) (stop func() bool)
	// resolve looks up how the finished load-balanced tasks among ids
	// ended, and later calls resolved(j.msgID, found) with them.
	resolve(j *job, ids []string)
}

// schedEngine is one engine as the scheduler sees it.
type schedEngine struct {
	uuid    string
	load    int
	pending map[string]*job // assigned, no result yet
	ready   readyQueue      // ready jobs that may run here and not everywhere
}

// taskState is how a dependency ended, as a job sees it.
type taskState struct {
	done   bool
	ok     bool   // done and succeeded
	engine string // where it finished; "" for the scheduler's own failures
}

// scheduler is the task scheduler (ipyparallel's TaskScheduler) as pure
// state: no sockets, no clock. Only the state goroutine calls it.
//
// A waiting job is blocked (its after dependency is not met) or ready.
// Blocked jobs are found only through the dependency graph, so a result
// touches just the jobs that depend on it. Ready jobs are in min-heaps on
// submission order: the free queue for jobs that may run anywhere, or
// the queue of each engine they may run on (targets, follow, blacklist);
// when engines have room, the oldest job at the head of the free queue or
// of a roomy engine's queue runs first.
type scheduler struct {
	pick scheme
	hwm  int
	intn func(int) int
	out  schedOutput
	done *finished // the hub's memory of finished tasks; the scheduler records its own

	engines []*schedEngine // LRU order, least recently used first
	gone    map[string]*schedEngine

	waiting *list.List       // waiting jobs, in the order they began waiting
	free    readyQueue       // ready jobs that may run on any engine
	jobs    map[string]*job  // unfinished jobs, by msg_id
	graph   map[string]idSet // msg_id -> unfinished jobs that depend on it
	seq     uint64

	candIdx, candLoads []int // run's scratch: candidate engines and their loads
}

func newScheduler(pick scheme, hwm int, out schedOutput, done *finished) *scheduler {
	return &scheduler{
		pick:    pick,
		hwm:     hwm,
		intn:    rand.IntN,
		out:     out,
		done:    done,
		gone:    map[string]*schedEngine{},
		waiting: list.New(),
		jobs:    map[string]*job{},
		graph:   map[string]idSet{},
	}
}

// lookup tells how a load-balanced task stands: unfinished, finished (as
// remembered), or unknown.
func (s *scheduler) lookup(id string) (taskState, bool) {
	if _, ok := s.jobs[id]; ok {
		return taskState{}, true
	}
	if t := s.done.get(id); t != nil && t.lb {
		return taskState{done: true, ok: t.end == endOK, engine: t.engine}, true
	}
	return taskState{}, false
}

func (s *scheduler) engineIndex(uuid string) int {
	return slices.IndexFunc(s.engines, func(e *schedEngine) bool { return e.uuid == uuid })
}

// engine finds a live or removed engine.
func (s *scheduler) engine(uuid string) *schedEngine {
	if i := s.engineIndex(uuid); i >= 0 {
		return s.engines[i]
	}
	return s.gone[uuid]
}

// addEngine makes an engine available, at the front of the LRU order.
func (s *scheduler) addEngine(uuid string) {
	if s.engineIndex(uuid) >= 0 {
		return
	}
	e := &schedEngine{uuid: uuid, pending: map[string]*job{}}
	s.engines = slices.Insert(s.engines, 0, e)
	for el := s.waiting.Front(); el != nil; el = el.Next() {
		if j := el.Value.(*job); j.ready && !j.free() && s.eligible(j, e) {
			e.ready.push(j)
			j.queues = append(j.queues, &e.ready)
		}
	}
	s.drain()
}

// removeEngine takes an engine out of rotation. Its assigned jobs stay
// with it until their results arrive: real ones, or the EngineErrors the
// hub makes for stranded jobs after the dead-engine grace. An idle
// engine is forgotten at once: no result would ever forget it.
func (s *scheduler) removeEngine(uuid string) {
	i := s.engineIndex(uuid)
	if i < 0 {
		return
	}
	e := s.engines[i]
	s.engines = slices.Delete(s.engines, i, i+1)
	e.ready = readyQueue{}
	if len(e.pending) > 0 {
		s.gone[uuid] = e
	}
	// Fail waiting jobs whose every target is gone.
	var doomed []*job
	for el := s.waiting.Front(); el != nil; el = el.Next() {
		if j := el.Value.(*job); j.targets != nil && !s.anyLiveTarget(j) {
			doomed = append(doomed, j)
		}
	}
	for _, j := range doomed {
		if j.waiting() { // not failed meanwhile as a dependent
			s.failJob(j, failImpossibleDependency)
		}
	}
}

func (s *scheduler) anyLiveTarget(j *job) bool {
	for _, e := range s.engines {
		if j.targets.has(e.uuid) && !j.blacklist.has(e.uuid) {
			return true
		}
	}
	return false
}

// stranded returns the jobs still held by a removed engine, in submission
// order. They stay assigned to it: the hub answers each with an
// EngineError through result, which honours retries.
func (s *scheduler) stranded(uuid string) []*job {
	e, ok := s.gone[uuid]
	if !ok {
		return nil
	}
	js := make([]*job, 0, len(e.pending))
	for _, j := range e.pending {
		js = append(js, j)
	}
	slices.SortFunc(js, func(a, b *job) int { return cmp.Compare(a.seq, b.seq) })
	return js
}

// forget drops a removed engine's bookkeeping once nothing is pending on it.
func (s *scheduler) forget(uuid string) {
	if e, ok := s.gone[uuid]; ok && len(e.pending) == 0 {
		delete(s.gone, uuid)
	}
}

// submit takes a new load-balanced job. Dependencies on msg_ids the
// scheduler does not know are looked up (out.resolve) before the job is
// considered; a job depending on itself is invalid at once.
func (s *scheduler) submit(j *job) {
	s.seq++
	j.seq = s.seq
	s.jobs[j.msgID] = j
	if j.after.empty() && j.follow.empty() {
		s.consider(j)
		return
	}
	if j.after.ids.has(j.msgID) || j.follow.ids.has(j.msgID) {
		s.failJob(j, failInvalidDependency)
		return
	}
	j.deps = make(map[string]taskState, len(j.after.ids)+len(j.follow.ids))
	for i, d := range []dependency{j.after, j.follow} {
		for id := range d.ids {
			if i == 1 && j.after.ids.has(id) {
				continue
			}
			if st, ok := s.lookup(id); ok {
				s.depend(j, id, st)
			} else {
				j.unknown = append(j.unknown, id)
			}
		}
	}
	if len(j.unknown) > 0 {
		slices.Sort(j.unknown)
		s.out.resolve(j, j.unknown)
		return
	}
	s.consider(j)
}

// depend records how dependency id of j stands, and links j to it in the
// graph while it is unfinished.
func (s *scheduler) depend(j *job, id string, st taskState) {
	j.deps[id] = st
	if st.done {
		return
	}
	g := s.graph[id]
	if g == nil {
		g = idSet{}
		s.graph[id] = g
	}
	g.add(j.msgID)
}

// resolved completes the submission of a job whose dependencies named
// msg_ids the scheduler did not know, with found: how those the task
// database has ended. An id known neither now nor there is invalid, as
// an unknown msg_id is in ipyparallel.
func (s *scheduler) resolved(msgID string, found map[string]taskState) {
	j := s.jobs[msgID]
	if j == nil || len(j.unknown) == 0 || j.waiting() {
		return
	}
	var missing []string
	for _, id := range j.unknown {
		st, ok := s.lookup(id) // it may have been submitted since
		if !ok {
			st, ok = found[id]
		}
		if !ok {
			missing = append(missing, id)
			continue
		}
		s.depend(j, id, st)
	}
	j.unknown = missing
	if len(missing) > 0 {
		s.failJob(j, failInvalidDependency)
		return
	}
	s.consider(j)
}

// reject fails a new job whose scheduling metadata is invalid.
func (s *scheduler) reject(j *job) {
	s.failJob(j, failInvalidDependency)
}

// consider settles a job that is new, rescheduled, or whose dependencies
// changed: it fails if they can no longer be met, runs if an engine may
// take it now, and otherwise waits, blocked until a dependency finishes
// or ready in the queues of the engines it may run on.
func (s *scheduler) consider(j *job) {
	if j.after.unreachable(j.status) || j.follow.unreachable(j.status) {
		s.failJob(j, failImpossibleDependency)
		return
	}
	if !j.after.met(j.status) {
		s.unready(j)
		s.wait(j)
		return
	}
	if s.run(j) {
		return
	}
	var queues []*readyQueue
	if !j.free() {
		for _, e := range s.engines {
			if s.eligible(j, e) {
				queues = append(queues, &e.ready)
			}
		}
		if len(queues) == 0 && s.impossible(j) {
			s.failJob(j, failImpossibleDependency)
			return
		}
	}
	s.wait(j)
	s.unready(j)
	j.ready = true
	j.readyGen++
	if j.free() {
		s.free.push(j)
		return
	}
	for _, q := range queues {
		q.push(j)
	}
	j.queues = queues
}

// eligible reports whether j may run on e, room aside.
func (s *scheduler) eligible(j *job, e *schedEngine) bool {
	if j.blacklist.has(e.uuid) || (j.targets != nil && !j.targets.has(e.uuid)) {
		return false
	}
	return j.follow.empty() || j.follow.met(j.statusOn(e.uuid))
}

// impossible reports whether j, eligible on no live engine, never can
// be: its follow dependencies finished on different engines, or its
// targets are gone.
func (s *scheduler) impossible(j *job) bool {
	if j.follow.all && !j.follow.empty() {
		dests := map[string]bool{}
		for id := range j.follow.ids {
			if ok, failed := j.status(id); (j.follow.success && ok) || (j.follow.failure && failed) {
				dests[j.deps[id].engine] = true
			}
		}
		if len(dests) > 1 {
			return true
		}
	}
	return j.targets != nil && !s.anyLiveTarget(j)
}

// wait puts j in the wait list, if not there yet, and arms its timeout.
func (s *scheduler) wait(j *job) {
	if j.waiting() {
		return
	}
	j.elem = s.waiting.PushBack(j)
	if j.timeout > 0 {
		j.timerGen++
		j.stopTimer = s.out.armTimeout(j)
	}
}

// unready takes j out of the ready queues (its entries go stale). A
// job's freedom cannot change while it is ready: only a failed run adds
// to its blacklist.
func (s *scheduler) unready(j *job) {
	if !j.ready {
		return
	}
	j.ready = false
	if j.free() {
		s.free.dropped()
	}
	for _, q := range j.queues {
		q.dropped()
	}
	j.queues = nil
}

// unwait takes j out of the wait list and the ready queues, and
// withdraws its timeout, so that a job that ran does not hold a timer for
// the rest of its timeout.
func (s *scheduler) unwait(j *job) {
	s.unready(j)
	if j.waiting() {
		s.waiting.Remove(j.elem)
		j.elem = nil
	}
	if j.stopTimer != nil {
		j.stopTimer()
		j.stopTimer = nil
	}
}

// unlink takes a finished j out of the dependency graph.
func (s *scheduler) unlink(j *job) {
	for id, st := range j.deps {
		if g := s.graph[id]; g != nil && !st.done {
			delete(g, j.msgID)
			if len(g) == 0 {
				delete(s.graph, id)
			}
		}
	}
}

// timeout fires a job's timer; a job no longer waiting ignores it.
func (s *scheduler) timeout(msgID string, gen int) {
	j, ok := s.jobs[msgID]
	if !ok || !j.waiting() || j.timerGen != gen {
		return
	}
	s.failJob(j, failTimeout)
}

// failJob ends j with a scheduler failure.
func (s *scheduler) failJob(j *job, why taskFailure) {
	s.unwait(j)
	s.unlink(j)
	delete(s.jobs, j.msgID)
	s.done.add(j.msgID, "", endFailed, true)
	s.out.fail(j, why)
	s.settle(j.msgID, taskState{done: true})
}

// run assigns j to an engine if one may take it now.
func (s *scheduler) run(j *job) bool {
	idx, loads := s.candIdx[:0], s.candLoads[:0]
	for i, e := range s.engines {
		if (s.hwm == 0 || e.load < s.hwm) && s.eligible(j, e) {
			idx = append(idx, i)
			loads = append(loads, e.load)
		}
	}
	s.candIdx, s.candLoads = idx, loads
	if len(idx) == 0 {
		return false
	}
	i := idx[s.pick(loads, s.intn)]
	e := s.engines[i]
	e.load++
	s.engines = append(slices.Delete(s.engines, i, i+1), e)
	s.unwait(j)
	e.pending[j.msgID] = j
	s.out.assign(j, e.uuid)
	return true
}

// drain runs ready jobs, oldest first, while engines have room for them.
func (s *scheduler) drain() {
	for {
		var next *job
		room := false
		for _, e := range s.engines {
			if s.hwm > 0 && e.load >= s.hwm {
				continue
			}
			room = true
			if j := e.ready.head(); j != nil && (next == nil || j.seq < next.seq) {
				next = j
			}
		}
		if !room {
			return
		}
		if j := s.free.head(); j != nil && (next == nil || j.seq < next.seq) {
			next = j
		}
		if next == nil || !s.run(next) {
			return // run cannot fail for a head on a roomy engine
		}
	}
}

// outcome is what the scheduler made of an engine's reply.
type outcome int

const (
	resultFinal   outcome = iota // the task is done: deliver the reply
	resultRetried                // rescheduled (unmet dependencies, or a failure with retries left)
	resultUnknown                // no such task on that engine
)

// result handles an engine's reply to msgID. For a final reply it calls
// final (if not nil) before dependents are scheduled or failed, so the
// reply reaches the client first.
func (s *scheduler) result(engine, msgID string, end taskEnd, depsMet bool, final func()) outcome {
	eng := s.engine(engine)
	if eng == nil {
		return resultUnknown
	}
	j, assigned := eng.pending[msgID]
	if !assigned {
		return resultUnknown
	}
	delete(eng.pending, msgID)
	if eng.load > 0 {
		eng.load--
	}
	s.forget(engine)
	if depsMet && (end == endOK || j.retries <= 0) {
		s.unlink(j)
		delete(s.jobs, msgID)
		s.done.add(msgID, eng.uuid, end, true)
		if final != nil {
			final()
		}
		if s.hwm > 0 {
			s.drain() // older ready jobs take the room before msgID's dependents
		}
		s.settle(msgID, taskState{done: true, ok: end == endOK, engine: eng.uuid})
		return resultFinal
	}
	if depsMet {
		j.retries--
	}
	if j.blacklist == nil {
		j.blacklist = idSet{}
	}
	j.blacklist.add(eng.uuid)
	if j.targets != nil && !s.anyLiveTarget(j) {
		s.failJob(j, failImpossibleDependency)
	} else {
		s.consider(j)
	}
	if s.hwm > 0 {
		s.drain()
	}
	return resultRetried
}

// settle tells the jobs that depend on msgID how it ended, and
// reconsiders those waiting, oldest first.
func (s *scheduler) settle(msgID string, st taskState) {
	g := s.graph[msgID]
	if g == nil {
		return
	}
	delete(s.graph, msgID)
	var ws []*job
	for id := range g {
		if j := s.jobs[id]; j != nil {
			j.deps[msgID] = st
			if j.waiting() {
				ws = append(ws, j)
			}
		}
	}
	slices.SortFunc(ws, func(a, b *job) int { return cmp.Compare(a.seq, b.seq) })
	for _, j := range ws {
		if j.waiting() { // not failed or run meanwhile
			s.consider(j)
		}
	}
}

// readyQueue holds ready jobs, oldest submission first (a min-heap on
// seq). Jobs leave it lazily: an entry goes stale when its job stops
// being ready, and stale entries are skipped at the head and dropped
// whenever they outnumber the live ones, so they never hold more memory
// than the live jobs do.
type readyQueue struct {
	h     readyHeap
	stale int
}

type readyEntry struct {
	seq uint64 // j.seq, kept here for the heap's comparisons
	j   *job
	gen uint32
}

func (e readyEntry) live() bool { return e.j.ready && e.j.readyGen == e.gen }

func (q *readyQueue) push(j *job) { heap.Push(&q.h, readyEntry{j.seq, j, j.readyGen}) }

// head returns the oldest ready job in q, or nil.
func (q *readyQueue) head() *job {
	for len(q.h) > 0 {
		if e := q.h[0]; e.live() {
			return e.j
		}
		heap.Pop(&q.h)
		q.stale--
	}
	return nil
}

// dropped notes that one of q's entries went stale.
func (q *readyQueue) dropped() {
	q.stale++
	if q.stale*2 <= len(q.h) {
		return
	}
	q.h = slices.DeleteFunc(q.h, func(e readyEntry) bool { return !e.live() })
	clear(q.h[len(q.h):cap(q.h)]) // release the dropped jobs
	heap.Init(&q.h)
	q.stale = 0
}

type readyHeap []readyEntry

func (h readyHeap) Len() int           { return len(h) }
func (h readyHeap) Less(a, b int) bool { return h[a].seq < h[b].seq }
func (h readyHeap) Swap(a, b int)      { h[a], h[b] = h[b], h[a] }
func (h *readyHeap) Push(x any)        { *h = append(*h, x.(readyEntry)) }
func (h *readyHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = readyEntry{}
	*h = old[:len(old)-1]
	return e
}
