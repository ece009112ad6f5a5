// Command hubload is a load generator for ipyparallel-compatible
// controllers: the taskhub hub (hubd) or the reference
// ipyparallel.controller, reached through their connection files.
//
// It registers N fake engines that answer every task at once, runs M
// clients that each keep a window of no-op load-balanced tasks in flight,
// and one client that loops db_request; then it prints tasks/s, p50/p99
// submit-to-result latency, and query latency:
//
//	hubload -dir ~/.ipython/profile_default/security -engines 8 -clients 4 -window 64 -duration 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
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

// options are the command-line settings.
type options struct {
	dir      string
	engines  int
	clients  int
	window   int
	duration time.Duration
	warmup   time.Duration
	queries  bool
}

// run is main without os.Exit.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("hubload", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", ".", "directory holding ipcontroller-client.json and ipcontroller-engine.json")
	fs.IntVar(&o.engines, "engines", 2, "fake engines to register")
	fs.IntVar(&o.clients, "clients", 1, "clients pipelining no-op tasks")
	fs.IntVar(&o.window, "window", 64, "tasks in flight per client")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measurement time")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "load before measuring")
	fs.BoolVar(&o.queries, "queries", true, "run one client looping db_request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.engines < 1 || o.clients < 1 || o.window < 1 || o.duration <= 0 {
		return errors.New("engines, clients, window and duration must be positive")
	}
	cf, err := connfile.ReadClient(filepath.Join(o.dir, connfile.ClientFile))
	if err != nil {
		return err
	}
	ef, err := connfile.ReadEngine(filepath.Join(o.dir, connfile.EngineFile))
	if err != nil {
		return err
	}
	packer, err := cf.Packer()
	if err != nil {
		return err
	}
	newSession := func() (*wire.Session, error) {
		return wire.NewSession(wire.Config{Key: []byte(cf.Key), SignatureScheme: cf.SignatureScheme, Packer: packer})
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	for range o.engines {
		s, err := newSession()
		if err != nil {
			return err
		}
		e, err := startEngine(ctx, s, ef)
		if err != nil {
			return err
		}
		wg.Go(func() { e.serve(ctx) })
	}
	qs, err := newSession()
	if err != nil {
		return err
	}
	q, err := dialClient(ctx, qs, cf)
	if err != nil {
		return err
	}
	if err := q.waitEngines(ctx, o.engines); err != nil {
		return err
	}

	// Measurement: counters are read at the window's edges.
	m := &meter{}
	for range o.clients {
		s, err := newSession()
		if err != nil {
			return err
		}
		c, err := dialClient(ctx, s, cf)
		if err != nil {
			return err
		}
		wg.Go(func() { c.pipeline(ctx, o.window, m) })
	}
	if o.queries {
		wg.Go(func() { q.queryLoop(ctx, m) })
	}
	select {
	case <-time.After(o.warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	m.start()
	select {
	case <-time.After(o.duration):
	case <-ctx.Done():
		return ctx.Err()
	}
	tasks, queries, elapsed := m.stop()
	cancel()

	fmt.Fprintf(stdout, "target: %s (registration %s)\n", o.dir, cf.Endpoint(cf.Registration))
	fmt.Fprintf(stdout, "load: engines=%d clients=%d window=%d duration=%v\n", o.engines, o.clients, o.window, o.duration)
	fmt.Fprintf(stdout, "tasks: %d in %.2fs = %.0f tasks/s\n", len(tasks), elapsed.Seconds(), float64(len(tasks))/elapsed.Seconds())
	fmt.Fprintf(stdout, "task latency: p50=%v p99=%v\n", pct(tasks, 50), pct(tasks, 99))
	if o.queries {
		fmt.Fprintf(stdout, "queries: %d = %.0f/s, latency p50=%v p99=%v\n", len(queries), float64(len(queries))/elapsed.Seconds(), pct(queries, 50), pct(queries, 99))
	}
	return nil
}

// meter collects latencies observed inside the measurement window.
type meter struct {
	mu      sync.Mutex
	on      bool
	t0      time.Time
	tasks   []time.Duration
	queries []time.Duration
}

func (m *meter) start() {
	m.mu.Lock()
	m.on, m.t0 = true, time.Now()
	m.mu.Unlock()
}

func (m *meter) stop() (tasks, queries []time.Duration, elapsed time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.on = false
	return m.tasks, m.queries, time.Since(m.t0)
}

func (m *meter) task(d time.Duration) {
	m.mu.Lock()
	if m.on {
		m.tasks = append(m.tasks, d)
	}
	m.mu.Unlock()
}

func (m *meter) query(d time.Duration) {
	m.mu.Lock()
	if m.on {
		m.queries = append(m.queries, d)
	}
	m.mu.Unlock()
}

// pct returns the p-th percentile of ds (sorted in place).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[(len(ds)-1)*p/100].Round(time.Microsecond)
}
