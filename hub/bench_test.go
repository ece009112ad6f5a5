package hub

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/taskdb/nodb"
	"github.com/taskhub/taskhub/wire"
)

// BenchmarkTasks measures load-balanced no-op tasks through the hub with
// Go fake engines over loopback: each op is one task, submit to result,
// with `window` tasks in flight per client. The fake engines and the
// clients share the machine with the hub, and cpu-µs/task counts the CPU
// time of the whole process (hub and peers): on a shared machine it
// varies much less than tasks/s.
func BenchmarkTasks(b *testing.B) {
	for _, c := range []struct{ engines, clients, window, hwm int }{
		{1, 1, 1, 1}, // latency: one task at a time
		{2, 1, 64, 1},
		{8, 1, 256, 1},
		{8, 4, 64, -1},
	} {
		name := fmt.Sprintf("engines=%d/clients=%d/window=%d/hwm=%d", c.engines, c.clients, c.window, c.hwm)
		b.Run(name, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.HWM = c.hwm
			cfg.HeartbeatPeriod = time.Second
			db := dictdb.New(dictdb.Options{RecordLimit: 1 << 20})
			h, err := New(cfg, db, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			runHub(b, h, cfg)
			clients := make([]*client, c.clients)
			for i := range clients {
				clients[i] = newClient(b, h)
			}
			for range c.engines {
				startEngine(b, h, clients[0], true)
			}
			per := b.N/c.clients + 1
			lat := make(chan []time.Duration, c.clients)
			b.ResetTimer()
			cpu0 := processCPU(b)
			start := time.Now()
			for _, cl := range clients {
				go func() { lat <- cl.pipeline(b, per, c.window) }()
			}
			var all []time.Duration
			for range clients {
				all = append(all, <-lat...)
			}
			elapsed := time.Since(start)
			cpu := processCPU(b) - cpu0
			b.StopTimer()
			slices.Sort(all)
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "tasks/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "cpu-µs/task")
		})
	}
}

// processCPU returns the user and system CPU time this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pipeline runs n no-op tasks keeping window in flight and returns each
// one's submit-to-result latency.
func (c *client) pipeline(tb testing.TB, n, window int) []time.Duration {
	sent := map[string]time.Time{}
	lat := make([]time.Duration, 0, n)
	next := 0
	for len(lat) < n {
		for next < n && len(sent) < window {
			sent[c.apply("ok", nil).Header.MsgID] = time.Now()
			next++
		}
		r := c.task.recv()
		if t0, ok := sent[r.Parent.MsgID]; ok {
			lat = append(lat, time.Since(t0))
			delete(sent, r.Parent.MsgID)
		}
	}
	return lat
}

// BenchmarkFinishedTaskMemory runs 100,000 load-balanced and direct
// tasks through the hub's state (no sockets; the nodb backend, which
// keeps nothing) and reports the heap that stays in use per task, with
// the hub remembering every finished task or the last 10,000.
func BenchmarkFinishedTaskMemory(b *testing.B) {
	const n = 100_000
	for _, limit := range []int{-1, 10_000} {
		name := fmt.Sprint("task_memory=", limit)
		if limit < 0 {
			name = "task_memory=unlimited"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				x := newSocketlessWith(b, Config{Key: "k", Packer: "json", TaskMemory: limit}, nodb.New())
				x.s.beat(time.Now())
				x.register(b, "engine-0")
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				x.runTasks(b, "engine-0", n)
				x.flush()
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "heap-B/task")
			}
		})
	}
}

// register makes uuid a live engine of a socketless hub.
func (x *socketless) register(tb testing.TB, uuid string) {
	tb.Helper()
	sess := x.h.sess
	x.s.registerEngine(encoded(tb, sess, sess.NewMessage("registration_request", map[string]any{"uuid": uuid}, nil), "reg"))
	x.s.pong([][]byte{[]byte(uuid), []byte(x.s.heart.cur)})
	if x.s.reg.byUUID[uuid] == nil {
		tb.Fatalf("engine %s not registered", uuid)
	}
}

// runTasks runs n tasks one at a time, every fourth a direct (mux)
// request to engine, the others load-balanced, each answered ok by the
// engine it went to.
func (x *socketless) runTasks(tb testing.TB, engine string, n int) {
	tb.Helper()
	sess := x.h.sess
	for i := range n {
		req := sess.NewMessage("apply_request", map[string]any{}, nil)
		r := sess.NewMessage("apply_reply", map[string]any{"status": "ok"}, &req.Header)
		r.Metadata = map[string]any{"status": "ok"}
		if i%4 == 3 {
			x.s.direct(sockClientMux, encoded(tb, sess, req, "client", engine))
			x.s.directReply(sockEngineMux, encoded(tb, sess, r, engine, "client"))
		} else {
			x.s.submitTask(encoded(tb, sess, req, "client"))
			t := x.s.pending[req.Header.MsgID]
			if t == nil || t.engine == "" {
				tb.Fatalf("task %d not assigned", i)
			}
			x.s.taskResult(encoded(tb, sess, r, t.engine, "client"))
		}
		if x.s.pending[req.Header.MsgID] != nil {
			tb.Fatalf("task %d still pending", i)
		}
	}
}

// benchOut is a schedOutput that queues assignments for the benchmark
// driver to answer.
type benchOut struct {
	assigned []assignment
	failed   int
}

type assignment struct{ msgID, engine string }

func (o *benchOut) assign(j *job, engine string) {
	o.assigned = append(o.assigned, assignment{j.msgID, engine})
}
func (o *benchOut) fail(*job, taskFailure)             { o.failed++ }
func (o *benchOut) armTimeout(*job) (stop func() bool) { return func() bool { return true } }
func (o *benchOut) resolve(*job, []string)             { panic("every dependency is known") }

// BenchmarkSchedulerDependencies measures the scheduler alone (no hub,
// no sockets) with many tasks waiting on dependencies, in tasks/s
// through the scheduler and CPU per task. Each op runs every task to
// completion on 4 engines with hwm 1, answering in assignment order.
//
//   - pairs: n parents, then n children each after a random parent.
//   - blocked: n children after one parent that runs until the end,
//     then n independent tasks that must get past them.
//   - follow: n parents, then n children each following a random
//     parent (they must run where it ran).
func BenchmarkSchedulerDependencies(b *testing.B) {
	for _, shape := range []string{"pairs", "blocked", "follow"} {
		for _, n := range []int{1_000, 10_000} {
			b.Run(fmt.Sprintf("%s/n=%d", shape, n), func(b *testing.B) {
				var tasks int
				cpu0 := processCPU(b)
				for b.Loop() {
					tasks = runDependencyShape(b, shape, n)
				}
				cpu := processCPU(b) - cpu0
				b.ReportMetric(float64(tasks*b.N)/b.Elapsed().Seconds(), "tasks/s")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(tasks*b.N), "cpu-ns/task")
			})
		}
	}
}

func runDependencyShape(tb testing.TB, shape string, n int) int {
	out := &benchOut{}
	s := newScheduler(leastLoad, 1, out, newFinished(0))
	engines := []string{"A", "B", "C", "D"}
	for _, e := range engines {
		s.addEngine(e)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	submit := func(id string, after, follow dependency) {
		s.submit(&job{msgID: id, after: after, follow: follow})
	}
	hold := ""
	switch shape {
	case "pairs", "follow":
		for i := range n {
			submit(fmt.Sprint("p", i), dep(), dep())
		}
		for i := range n {
			d := dep(fmt.Sprint("p", rng.IntN(n)))
			if shape == "pairs" {
				submit(fmt.Sprint("c", i), d, dep())
			} else {
				submit(fmt.Sprint("c", i), dep(), d)
			}
		}
	case "blocked":
		hold = "hold"
		submit(hold, dep(), dep())
		for i := range n {
			submit(fmt.Sprint("c", i), dep(hold), dep())
		}
		for i := range n {
			submit(fmt.Sprint("t", i), dep(), dep())
		}
	}
	done := 0
	for len(out.assigned) > 0 {
		a := out.assigned[0]
		out.assigned = out.assigned[1:]
		if a.msgID == hold {
			out.assigned = append(out.assigned, a) // answered last
			if len(out.assigned) == 1 {
				hold = ""
			}
			continue
		}
		if s.result(a.engine, a.msgID, endOK, true, nil) != resultFinal {
			tb.Fatalf("result of %s: not final", a.msgID)
		}
		done++
	}
	if out.failed != 0 || done != s.done.len() {
		tb.Fatalf("%d tasks done, %d failed, %d submitted", done, out.failed, s.done.len())
	}
	return done
}

// BenchmarkTaskPath runs load-balanced no-op tasks, one at a time,
// through the hub's state and task database (dictdb with hubd's
// defaults), without sockets or decoding: the messages are decoded
// beforehand. cpu-ns/task is the CPU time of the whole process (the
// state and DB goroutines).
func BenchmarkTaskPath(b *testing.B) {
	x := newSocketlessWith(b, Config{Key: "k", Packer: "msgpack"}, dictdb.New(dictdb.DefaultOptions()))
	x.s.beat(time.Now())
	x.register(b, "e1")
	sess := x.h.sess
	reqs, reps := make([]*wire.Message, b.N), make([]*wire.Message, b.N)
	for i := range b.N {
		req := sess.NewMessage("apply_request", map[string]any{}, nil)
		req.Metadata = map[string]any{"after": []any{}, "follow": []any{}, "targets": []any{}, "retries": int64(0), "timeout": 0.0}
		r := sess.NewMessage("apply_reply", map[string]any{"status": "ok"}, &req.Header)
		r.Metadata = map[string]any{"status": "ok", "started": time.Now().UTC(), "dependencies_met": true, "engine": "e1"}
		reqs[i], reps[i] = encoded(b, sess, req, "client"), encoded(b, sess, r, "e1", "client")
	}
	x.flush()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for i := range b.N {
		x.s.submitTask(reqs[i])
		x.s.taskResult(reps[i])
	}
	x.flush()
	cpu := processCPU(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/task")
}
