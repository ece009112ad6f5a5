package hub

import (
	"cmp"
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
	elem      *list.Element // position in the wait queue; nil when not waiting
	timerGen  int           // invalidates stale timeout events
	stopTimer func() bool   // withdraws the armed timeout; nil if none
}

// waiting reports whether j is in the wait queue (not assigned, not done).
func (j *job) waiting() bool { return j.elem != nil }

func (j *job) dependents() []string {
	if j.after.empty() && j.follow.empty() {
		return nil
	}
	ids := make([]string, 0, len(j.after.ids)+len(j.follow.ids))
	for id := range j.after.ids {
		ids = append(ids, id)
	}
	for id := range j.follow.ids {
		if !j.after.ids.has(id) {
			ids = append(ids, id)
		}
	}
	return ids
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
}

// schedEngine is one engine as the scheduler sees it.
type schedEngine struct {
	uuid    string
	load    int
	pending map[string]*job // assigned, no result yet
}

// taskState is what the scheduler remembers of every task it was given.
type taskState struct {
	done   bool
	ok     bool   // done and succeeded
	engine string // where it finished; "" for the scheduler's own failures
}

// scheduler is the task scheduler (ipyparallel's TaskScheduler) as pure
// state: no sockets, no clock. Only the state goroutine calls it.
type scheduler struct {
	pick scheme
	hwm  int
	intn func(int) int
	out  schedOutput

	engines []*schedEngine // LRU order, least recently used first
	gone    map[string]*schedEngine

	queue *list.List           // waiting jobs in submission order
	jobs  map[string]*job      // waiting or assigned jobs, by msg_id
	graph map[string]idSet     // msg_id -> waiting jobs that depend on it
	known map[string]taskState // every task ever submitted
	seq   uint64

	candIdx, candLoads []int // tryRun's scratch: candidate engines and their loads
}

func newScheduler(pick scheme, hwm int, out schedOutput) *scheduler {
	return &scheduler{
		pick:  pick,
		hwm:   hwm,
		intn:  rand.IntN,
		out:   out,
		gone:  map[string]*schedEngine{},
		queue: list.New(),
		jobs:  map[string]*job{},
		graph: map[string]idSet{},
		known: map[string]taskState{},
	}
}

// status is the statusFunc of every finished task.
func (s *scheduler) status(id string) (ok, failed bool) {
	t := s.known[id]
	return t.done && t.ok, t.done && !t.ok
}

// statusOn is the statusFunc of the tasks that finished on engine.
func (s *scheduler) statusOn(engine string) statusFunc {
	return func(id string) (ok, failed bool) {
		t := s.known[id]
		on := t.done && t.engine == engine
		return on && t.ok, on && !t.ok
	}
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
	s.update("", true)
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
	if len(e.pending) > 0 {
		s.gone[uuid] = e
	}
	s.failTargetsGone()
}

// failTargetsGone fails waiting jobs whose every target is gone.
func (s *scheduler) failTargetsGone() {
	s.scan(func(j *job) bool {
		if j.targets != nil && !s.anyLiveTarget(j) {
			s.failJob(j, failImpossibleDependency)
		}
		return true
	})
}

// scan calls fn on the waiting jobs in queue order while it returns true.
// fn may remove any jobs (failing or running them); the walk then resumes
// from the front, skipping nothing.
func (s *scheduler) scan(fn func(*job) bool) {
	for el := s.queue.Front(); el != nil; {
		next := el.Next()
		if !fn(el.Value.(*job)) {
			return
		}
		if next != nil && !next.Value.(*job).waiting() {
			next = s.queue.Front()
		}
		el = next
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

// submit takes a new load-balanced job.
func (s *scheduler) submit(j *job) {
	s.seq++
	j.seq = s.seq
	s.known[j.msgID] = taskState{}
	s.jobs[j.msgID] = j
	if !j.after.empty() && j.after.met(s.status) {
		j.after = dependency{all: true, success: true}
	}
	for _, d := range []dependency{j.after, j.follow} {
		if d.empty() {
			continue
		}
		if d.ids.has(j.msgID) || !s.allKnown(d.ids) {
			s.failJob(j, failInvalidDependency)
			return
		}
		if d.unreachable(s.status) {
			s.failJob(j, failImpossibleDependency)
			return
		}
	}
	if j.after.met(s.status) && s.tryRun(j) {
		return
	}
	if _, alive := s.jobs[j.msgID]; alive {
		s.wait(j)
	}
}

func (s *scheduler) allKnown(ids idSet) bool {
	for id := range ids {
		if _, ok := s.known[id]; !ok {
			return false
		}
	}
	return true
}

// forgetDone drops finished tasks from memory (purged): ids, or every
// finished task when ids is nil. Dependencies of waiting jobs are kept,
// so those jobs can still run or fail.
func (s *scheduler) forgetDone(ids []string) {
	keep := idSet{}
	s.scan(func(j *job) bool {
		for _, id := range j.dependents() {
			keep.add(id)
		}
		return true
	})
	drop := func(id string) {
		if s.known[id].done && !keep.has(id) {
			delete(s.known, id)
		}
	}
	if ids == nil {
		for id := range s.known {
			drop(id)
		}
		return
	}
	for _, id := range ids {
		drop(id)
	}
}

// reject fails a new job whose scheduling metadata is invalid.
func (s *scheduler) reject(j *job) {
	s.known[j.msgID] = taskState{}
	s.failJob(j, failInvalidDependency)
}

// wait queues j until its dependencies are met or an engine frees up.
func (s *scheduler) wait(j *job) {
	j.elem = s.queue.PushBack(j)
	for _, id := range j.dependents() {
		if s.known[id].done {
			continue
		}
		g := s.graph[id]
		if g == nil {
			g = idSet{}
			s.graph[id] = g
		}
		g.add(j.msgID)
	}
	if j.timeout > 0 {
		j.timerGen++
		j.stopTimer = s.out.armTimeout(j)
	}
}

// unwait takes j out of the wait queue and the dependency graph, and
// withdraws its timeout, so that a job that ran does not hold a timer
// for the rest of its timeout.
func (s *scheduler) unwait(j *job) {
	if j.waiting() {
		s.queue.Remove(j.elem)
		j.elem = nil
	}
	if j.stopTimer != nil {
		j.stopTimer()
		j.stopTimer = nil
	}
	for _, id := range j.dependents() {
		if g := s.graph[id]; g != nil {
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
	delete(s.jobs, j.msgID)
	s.known[j.msgID] = taskState{done: true}
	s.out.fail(j, why)
	s.update(j.msgID, false)
}

func (s *scheduler) available() bool {
	if s.hwm == 0 {
		return len(s.engines) > 0
	}
	for _, e := range s.engines {
		if e.load < s.hwm {
			return true
		}
	}
	return false
}

// tryRun assigns j to an engine if one may take it now. It returns false
// when j must wait, or when it failed (it is then gone from s.jobs).
func (s *scheduler) tryRun(j *job) bool {
	if !s.available() {
		return false
	}
	idx, loads := s.candIdx[:0], s.candLoads[:0]
	for i, e := range s.engines {
		if s.hwm > 0 && e.load >= s.hwm {
			continue
		}
		if j.blacklist.has(e.uuid) || (j.targets != nil && !j.targets.has(e.uuid)) {
			continue
		}
		if !j.follow.empty() && !j.follow.met(s.statusOn(e.uuid)) {
			continue
		}
		idx = append(idx, i)
		loads = append(loads, e.load)
	}
	s.candIdx, s.candLoads = idx, loads
	if len(idx) == 0 {
		if j.follow.all && !j.follow.empty() {
			dests := map[string]bool{}
			for id := range j.follow.ids {
				if ok, failed := s.status(id); (j.follow.success && ok) || (j.follow.failure && failed) {
					dests[s.known[id].engine] = true
				}
			}
			if len(dests) > 1 {
				s.failJob(j, failImpossibleDependency)
				return false
			}
		}
		if j.targets != nil && !s.anyLiveTarget(j) {
			s.failJob(j, failImpossibleDependency)
			return false
		}
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
func (s *scheduler) result(engine, msgID string, ok, depsMet bool, final func()) outcome {
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
	if depsMet && (ok || j.retries <= 0) {
		delete(s.jobs, msgID)
		s.known[msgID] = taskState{done: true, ok: ok, engine: engine}
		s.forget(engine)
		if final != nil {
			final()
		}
		s.update(msgID, false)
		return resultFinal
	}
	if depsMet {
		j.retries--
	}
	if j.blacklist == nil {
		j.blacklist = idSet{}
	}
	j.blacklist.add(engine)
	s.forget(engine)
	if j.targets != nil && !s.anyLiveTarget(j) {
		s.failJob(j, failImpossibleDependency)
	} else if !s.tryRun(j) {
		if _, alive := s.jobs[msgID]; alive {
			s.wait(j)
		}
	}
	if s.hwm > 0 {
		s.update("", true)
	}
	return resultRetried
}

// update reacts to depID finishing (or, with all, to capacity appearing):
// jobs that became runnable are assigned, jobs that became impossible
// fail. The jobs that depend on depID are settled first; then, if an
// engine has room, the wait queue is scanned in order until no engine
// has room left.
func (s *scheduler) update(depID string, all bool) {
	if depID != "" {
		var deps []*job
		for id := range s.graph[depID] {
			if j, ok := s.jobs[id]; ok && j.waiting() {
				deps = append(deps, j)
			}
		}
		delete(s.graph, depID)
		slices.SortFunc(deps, func(a, b *job) int { return cmp.Compare(a.seq, b.seq) })
		for _, j := range deps {
			if j.waiting() { // not failed or run meanwhile
				s.consider(j)
			}
		}
	}
	if !s.available() || (!all && (s.hwm == 0 || !s.freeSlot())) {
		return
	}
	s.scan(func(j *job) bool {
		s.consider(j)
		return s.available()
	})
}

// consider fails a waiting job whose dependencies became impossible, or
// runs it if they are met and an engine may take it.
func (s *scheduler) consider(j *job) {
	if j.after.unreachable(s.status) || j.follow.unreachable(s.status) {
		s.failJob(j, failImpossibleDependency)
		return
	}
	if j.after.met(s.status) {
		s.tryRun(j)
	}
}

func (s *scheduler) freeSlot() bool {
	for _, e := range s.engines {
		if e.load == s.hwm-1 {
			return true
		}
	}
	return false
}

// loads returns each live engine's outstanding task count.
func (s *scheduler) loads() map[string]int {
	m := make(map[string]int, len(s.engines))
	for _, e := range s.engines {
		m[e.uuid] = e.load
	}
	return m
}
