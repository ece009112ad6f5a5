package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hubload:", err)
		os.Exit(1)
	}
}

// Scenarios.
const (
	scenarioFake   = "fake"   // Go fake engines and clients
	scenarioPython = "python" // the real ipyparallel Client and engines
)

// Query kinds of the db_request loop.
const (
	queryRecent    = "recent"    // {msg_id: {$in: last completed ids}}
	queryCompleted = "completed" // {completed: {$ne: null}}: every finished record
	queryNone      = "none"
)

// goals are issue 4's targets, per scenario, for a controller's tasks/s
// ratio to the reference's.
var goals = map[string]float64{scenarioFake: 20, scenarioPython: 2}

// options are the command-line settings.
type options struct {
	clientFile, engineFile string
	spawn                  []string
	scenario               string
	python                 string
	hubd                   string
	hwm                    int
	engines                int
	clients                int
	window                 int
	tasks                  int
	duration               time.Duration
	warmup                 time.Duration
	query                  string
	cpuProfile             string
	log                    io.Writer // progress lines
}

// run is main without os.Exit.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	o, err := parse(args)
	if err != nil {
		return err
	}
	o.log = stdout
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	var results []result
	if len(o.spawn) == 0 {
		r, err := runScenario(ctx, o, o.clientFile, o.engineFile, nil)
		if err != nil {
			return err
		}
		r.target = o.clientFile
		results = append(results, r)
	}
	for _, kind := range o.spawn {
		r, err := runSpawned(ctx, o, kind)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		results = append(results, r)
	}
	report(stdout, o, results)
	return nil
}

func parse(args []string) (options, error) {
	var o options
	var dir, spawn string
	fs := flag.NewFlagSet("hubload", flag.ContinueOnError)
	fs.StringVar(&dir, "dir", ".", "directory holding "+connfile.ClientFile+" and "+connfile.EngineFile)
	fs.StringVar(&o.clientFile, "client-file", "", "client connection file (default: in -dir)")
	fs.StringVar(&o.engineFile, "engine-file", "", "engine connection file (default: in -dir)")
	fs.StringVar(&spawn, "spawn", "", "comma-separated controllers to start and measure in turn instead of using connection files: hub (in-process), hubd (./cmd/hubd or -hubd), reference (python ipyparallel.controller)")
	fs.StringVar(&o.scenario, "scenario", scenarioFake, "fake (Go fake engines and clients) or python (real ipyparallel Client and engines)")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "Python interpreter with ipyparallel 7.1")
	fs.StringVar(&o.hubd, "hubd", "", "hubd binary for -spawn hubd (default: go build ./cmd/hubd)")
	fs.IntVar(&o.hwm, "hwm", 1, "with -spawn: the controllers' high-water mark, tasks outstanding per engine (0: unlimited)")
	fs.IntVar(&o.engines, "engines", 2, "engines to register")
	fs.IntVar(&o.clients, "clients", 4, "clients pipelining no-op tasks (fake scenario)")
	fs.IntVar(&o.window, "window", 64, "tasks in flight per client (fake scenario)")
	fs.IntVar(&o.tasks, "tasks", 0, "stop after this many measured tasks; 0: fake runs for -duration, python runs 2000")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "longest measurement time (fake scenario)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "load before measuring (fake scenario)")
	fs.StringVar(&o.query, "query", queryRecent, "db_request loop: recent (the last completed msg_ids), completed (every completed record) or none")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file; samples carry the label party=gen (load generator) or party=hub (in-process hub)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.engines < 1 || o.clients < 1 || o.window < 1 || o.tasks < 0 || o.hwm < 0 || o.duration <= 0 || o.warmup < 0 {
		return o, errors.New("engines, clients, window and duration must be positive; tasks, hwm and warmup not negative")
	}
	if o.scenario != scenarioFake && o.scenario != scenarioPython {
		return o, fmt.Errorf("unknown scenario %q", o.scenario)
	}
	if o.scenario == scenarioPython && o.tasks == 0 {
		o.tasks = 2000
	}
	if !slices.Contains([]string{queryRecent, queryCompleted, queryNone}, o.query) {
		return o, fmt.Errorf("unknown query kind %q", o.query)
	}
	if spawn != "" {
		o.spawn = strings.Split(spawn, ",")
		for _, k := range o.spawn {
			if !slices.Contains([]string{spawnHub, spawnHubd, spawnReference}, k) {
				return o, fmt.Errorf("unknown -spawn controller %q", k)
			}
		}
	}
	if o.clientFile == "" {
		o.clientFile = filepath.Join(dir, connfile.ClientFile)
	}
	if o.engineFile == "" {
		o.engineFile = filepath.Join(dir, connfile.EngineFile)
	}
	return o, nil
}

// result is one scenario's measurement against one controller.
type result struct {
	target   string
	n        int             // tasks completed in the window
	failed   int             // of which with an error result (fake scenario)
	elapsed  time.Duration   // measurement window
	tasks    []time.Duration // submit→result latencies (may be fewer than n)
	queries  []time.Duration // db_request latencies
	cpu      time.Duration   // the controller's CPU time in the window; 0: unknown
	self     time.Duration   // this process's CPU time in the window (fake scenario)
	scenario string
}

func (r result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

// efficiency returns tasks per CPU-second of the controller, 0 if unknown.
func (r result) efficiency() float64 {
	if r.cpu <= 0 {
		return 0
	}
	return float64(r.n) / r.cpu.Seconds()
}

// cpuClock reads a controller's CPU time (user and system) so far. Tasks
// per CPU-second compare controllers fairly on a shared machine, where
// tasks/s depend on what else runs.
type cpuClock func() (time.Duration, error)

// read returns the CPU time, or false if unknown (nil clock or error).
func (c cpuClock) read() (time.Duration, bool) {
	if c == nil {
		return 0, false
	}
	d, err := c()
	return d, err == nil
}

// since returns the CPU time used since t0, or 0 if unknown.
func (c cpuClock) since(t0 time.Duration, ok bool) time.Duration {
	t1, ok1 := c.read()
	if !ok || !ok1 {
		return 0
	}
	return t1 - t0
}

// selfCPU reads the CPU time of this process: the load generator, and the
// hub too when it runs in-process.
var selfCPU cpuClock = func() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

func runScenario(ctx context.Context, o options, clientFile, engineFile string, cpu cpuClock) (r result, err error) {
	as(ctx, partyGen, func(ctx context.Context) {
		if o.scenario == scenarioPython {
			r, err = runPython(ctx, o, clientFile, engineFile, cpu)
		} else {
			r, err = runFake(ctx, o, clientFile, engineFile, cpu)
		}
	})
	return r, err
}

// runFake runs the Go fake engines and clients against one controller.
func runFake(ctx context.Context, o options, clientFile, engineFile string, cpu cpuClock) (result, error) {
	cf, err := connfile.ReadClient(clientFile)
	if err != nil {
		return result{}, err
	}
	ef, err := connfile.ReadEngine(engineFile)
	if err != nil {
		return result{}, err
	}
	packer, err := cf.Packer()
	if err != nil {
		return result{}, err
	}
	newSession := func() (*wire.Session, error) {
		return wire.NewSession(wire.Config{Key: []byte(cf.Key), SignatureScheme: cf.SignatureScheme, Packer: packer})
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	var engines []*engine
	var uuids []string
	defer func() {
		for _, e := range engines {
			if ctx.Err() != nil {
				return // the sockets are closed
			}
			if err := e.unregister(); err != nil {
				slog.Warn("unregister engine failed", "engine_uuid", e.uuid, "err", err)
			}
		}
	}()
	for range o.engines {
		s, err := newSession()
		if err != nil {
			return result{}, err
		}
		e, err := startEngine(ctx, s, ef)
		if err != nil {
			return result{}, err
		}
		engines, uuids = append(engines, e), append(uuids, e.uuid)
		wg.Go(func() { e.serve(ctx) })
	}
	qs, err := newSession()
	if err != nil {
		return result{}, err
	}
	q, err := dialClient(ctx, qs, cf)
	if err != nil {
		return result{}, err
	}
	if err := q.waitEngines(ctx, uuids); err != nil {
		return result{}, err
	}

	// Measurement: latencies are kept between start and stop.
	m := newMeter(o.tasks)
	for range o.clients {
		s, err := newSession()
		if err != nil {
			return result{}, err
		}
		c, err := dialClient(ctx, s, cf)
		if err != nil {
			return result{}, err
		}
		wg.Go(func() { c.pipeline(ctx, o.window, m) })
	}
	if o.query != queryNone {
		wg.Go(func() { q.queryLoop(ctx, o.query, m) })
	}
	select {
	case <-time.After(o.warmup):
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
	m.start()
	cpu0, ok := cpu.read()
	self0, selfOK := selfCPU.read()
	select {
	case <-time.After(o.duration):
	case <-m.full:
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
	r := m.stop()
	r.cpu = cpu.since(cpu0, ok)
	r.self = selfCPU.since(self0, selfOK)
	r.scenario = scenarioFake
	if r.n == 0 {
		return r, errors.New("no task completed in the measurement window")
	}
	return r, nil
}

// meter collects latencies observed inside the measurement window.
type meter struct {
	mu     sync.Mutex
	on     bool
	t0     time.Time
	limit  int           // tasks to measure; 0: no limit
	full   chan struct{} // closed when limit tasks were measured
	r      result
	recent [16]string // msg_ids of the last completed tasks, a ring
	next   int
}

func newMeter(limit int) *meter { return &meter{limit: limit, full: make(chan struct{})} }

func (m *meter) start() {
	m.mu.Lock()
	m.on, m.t0 = true, time.Now()
	m.mu.Unlock()
}

func (m *meter) stop() result {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.on {
		m.on, m.r.elapsed = false, time.Since(m.t0)
	}
	return m.r
}

// task records a result: its latency and whether its status was ok.
func (m *meter) task(msgID string, d time.Duration, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recent[m.next] = msgID
	m.next = (m.next + 1) % len(m.recent)
	if !m.on {
		return
	}
	m.r.n++
	m.r.tasks = append(m.r.tasks, d)
	if !ok {
		m.r.failed++
	}
	if m.r.n == m.limit {
		m.on, m.r.elapsed = false, time.Since(m.t0)
		close(m.full)
	}
}

func (m *meter) query(d time.Duration) {
	m.mu.Lock()
	if m.on {
		m.r.queries = append(m.r.queries, d)
	}
	m.mu.Unlock()
}

// completed returns the msg_ids of the last completed tasks.
func (m *meter) completed() []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []any
	for _, id := range m.recent {
		if id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// report prints one row per result and, when a reference was measured,
// each other controller's tasks/s ratio to it.
func report(w io.Writer, o options, rs []result) {
	fmt.Fprintf(w, "scenario=%s engines=%d", o.scenario, o.engines)
	if len(o.spawn) > 0 {
		fmt.Fprintf(w, " hwm=%d", o.hwm)
	}
	if o.scenario == scenarioFake {
		fmt.Fprintf(w, " clients=%d window=%d query=%s", o.clients, o.window, o.query)
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(w, " loadavg=%s", strings.Join(strings.Fields(string(load))[:3], ","))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\ttasks\tseconds\ttasks/s\tcpu s\ttasks/cpu-s\tgen cpu s\ttask p50\ttask p99\tqueries\tquery p50\tquery p99\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t", r.target, r.n, r.elapsed.Seconds(), r.rate())
		if r.cpu > 0 {
			fmt.Fprintf(tw, "%.2f\t%.0f\t", r.cpu.Seconds(), r.efficiency())
		} else {
			fmt.Fprint(tw, "-\t-\t")
		}
		if r.self > 0 {
			fmt.Fprintf(tw, "%.2f\t", r.self.Seconds())
		} else {
			fmt.Fprint(tw, "-\t")
		}
		fmt.Fprintf(tw, "%v\t%v\t", pct(r.tasks, 50), pct(r.tasks, 99))
		if o.scenario == scenarioFake && o.query != queryNone {
			fmt.Fprintf(tw, "%d\t%v\t%v\t\n", len(r.queries), pct(r.queries, 50), pct(r.queries, 99))
		} else {
			fmt.Fprint(tw, "-\t-\t-\t\n")
		}
	}
	tw.Flush()
	for _, r := range rs {
		if r.failed > 0 {
			fmt.Fprintf(w, "%s: %d of the %d tasks got an error result\n", r.target, r.failed, r.n)
		}
	}
	i := slices.IndexFunc(rs, func(r result) bool { return r.target == spawnReference })
	if i < 0 {
		return
	}
	ref := rs[i]
	for _, r := range rs {
		if r.target == spawnReference {
			continue
		}
		fmt.Fprintf(w, "ratio %s/reference: %.1fx tasks/s", r.target, r.rate()/ref.rate())
		if r.cpu > 0 && ref.cpu > 0 {
			fmt.Fprintf(w, ", %.1fx tasks per controller CPU-second", r.efficiency()/ref.efficiency())
		}
		fmt.Fprintf(w, " (goal >= %gx)\n", goals[o.scenario])
	}
}

// pct returns the p-th percentile of ds (sorted in place).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[(len(ds)-1)*p/100].Round(time.Microsecond)
}
