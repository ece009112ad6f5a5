package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskhub/taskhub/hub"
	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/wire"
	"github.com/taskhub/taskhub/wire/wiretest"
)

// row matches a report row: target, tasks, seconds, tasks/s, cpu s,
// tasks/cpu-s, gen cpu s, task p50, task p99, queries.
var row = regexp.MustCompile(`(?m)^\s*(\S+)\s+(\d+)\s+[\d.]+\s+\d+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(\d+|-)\s`)

// rows returns the tasks and queries counted per target in a report
// ("-", no query loop, counts as 0).
func rows(t *testing.T, report string) map[string][2]int {
	t.Helper()
	got := map[string][2]int{}
	for _, m := range row.FindAllStringSubmatch(report, -1) {
		n, _ := strconv.Atoi(m[2])
		q, _ := strconv.Atoi(m[3])
		got[m[1]] = [2]int{n, q}
	}
	return got
}

// TestRunAgainstHub drives an in-process hub through its connection
// files, bounded by -tasks, and checks the report.
func TestRunAgainstHub(t *testing.T) {
	dir := t.TempDir()
	// A heart is declared dead only after 100 s: engines must leave by
	// unregistering.
	h, err := hub.New(hub.Config{ConnectionDir: dir, HeartbeatPeriod: 100 * time.Millisecond, HeartbeatMaxMisses: 1000},
		dictdb.New(dictdb.Options{}), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// Twice: the engines of the first run must not linger.
	for range 2 {
		var out strings.Builder
		err = run(t.Context(), []string{"-client-file", filepath.Join(dir, connfile.ClientFile), "-dir", dir,
			"-engines", "2", "-clients", "2", "-window", "8", "-tasks", "200", "-duration", "20s", "-warmup", "100ms"}, &out)
		if err != nil {
			t.Fatal(err)
		}
		got := rows(t, out.String())
		if len(got) != 1 {
			t.Fatalf("want one row:\n%s", out.String())
		}
		for _, r := range got {
			if r[0] != 200 {
				t.Errorf("tasks = %d, want 200 (-tasks):\n%s", r[0], out.String())
			}
			if r[1] == 0 {
				t.Errorf("no db_request answered:\n%s", out.String())
			}
		}
		if strings.Contains(out.String(), "error result") {
			t.Errorf("tasks failed:\n%s", out.String())
		}
	}
	// The engines unregistered when the runs ended.
	packer, err := h.ClientInfo().Packer()
	if err != nil {
		t.Fatal(err)
	}
	s, err := wire.NewSession(wire.Config{Key: []byte(h.ClientInfo().Key), SignatureScheme: h.ClientInfo().SignatureScheme, Packer: packer})
	if err != nil {
		t.Fatal(err)
	}
	c, err := dialClient(t.Context(), s, h.ClientInfo())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		r, err := c.query.request(t.Context(), s, s.NewMessage("connection_request", nil, nil), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		es, _ := r.Content["engines"].(map[string]any)
		if len(es) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("engines still registered after the runs: %v", es)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSpawnHub checks -spawn with the in-process hub, the completed
// query and -cpuprofile.
func TestSpawnHub(t *testing.T) {
	var out strings.Builder
	prof := filepath.Join(t.TempDir(), "cpu.out")
	// Bounded by time, not by a task count: a run that ends after N tasks
	// can end before the first db_request returns on a loaded machine.
	err := run(t.Context(), []string{"-spawn", "hub", "-engines", "3", "-duration", "2s",
		"-warmup", "0s", "-query", "completed", "-hwm", "0", "-cpuprofile", prof}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if r := rows(t, out.String())["hub"]; r[0] == 0 || r[1] == 0 {
		t.Errorf("hub row = %v, want some tasks and some queries:\n%s", r, out.String())
	}
	// A CPU profile is a gzipped protocol buffer.
	if b, err := os.ReadFile(prof); err != nil || len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("-cpuprofile wrote %d bytes (err %v), want a gzipped profile", len(b), err)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-dir", t.TempDir()}, // no connection files
		{"-engines", "0"},
		{"-tasks", "-1"},
		{"-scenario", "nope"},
		{"-spawn", "hub,nope"},
		{"-query", "nope"},
		{"extra"},
	} {
		if err := run(t.Context(), args, new(strings.Builder)); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

// python returns the interpreter with ipyparallel, skipping the test
// when there is none (failing instead under CI=true).
func python(t *testing.T) string {
	t.Helper()
	return wiretest.Python(t, "ipyparallel", "msgpack", "zmq", "jupyter_client")
}

// TestCompareReference runs the fake scenario against the hub and the
// reference controller, which also checks that the fake engines work with
// the reference.
func TestCompareReference(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the reference controller")
	}
	py := python(t)
	var out strings.Builder
	err := run(t.Context(), []string{"-python", py, "-spawn", "hub,reference", "-duration", "2s",
		"-warmup", "0s"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	got := rows(t, out.String())
	for _, target := range []string{"hub", "reference"} {
		if got[target][0] == 0 || got[target][1] == 0 {
			t.Errorf("%s row = %v, want some tasks and some queries:\n%s", target, got[target], out.String())
		}
	}
	if !strings.Contains(out.String(), "ratio hub/reference: ") {
		t.Errorf("no ratio:\n%s", out.String())
	}
}

// TestPythonScenario runs the real Client and engines against the hub.
func TestPythonScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Python engines")
	}
	py := python(t)
	var out strings.Builder
	err := run(t.Context(), []string{"-python", py, "-spawn", "hub", "-scenario", "python", "-tasks", "50"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if r := rows(t, out.String())["hub"]; r[0] != 50 {
		t.Errorf("hub row = %v, want 50 tasks:\n%s", r, out.String())
	}
}

// TestSpawnHubd builds cmd/hubd and runs the fake scenario against it,
// which checks the generated configuration and the CPU accounting.
func TestSpawnHubd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts hubd")
	}
	var out strings.Builder
	err := run(t.Context(), []string{"-spawn", "hubd", "-duration", "2s", "-warmup", "0s"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if r := rows(t, out.String())["hubd"]; r[0] == 0 || r[1] == 0 {
		t.Errorf("hubd row = %v, want some tasks and some queries:\n%s", r, out.String())
	}
	if regexp.MustCompile(`(?m)^\s*hubd\s+\d+\s+\S+\s+\d+\s+-`).MatchString(out.String()) {
		t.Errorf("no CPU time for hubd:\n%s", out.String())
	}
}

func TestGroupCPU(t *testing.T) {
	// Burn some CPU so that the clock has ticked.
	for deadline := time.Now().Add(30 * time.Millisecond); time.Now().Before(deadline); {
	}
	d, err := groupCPU(syscall.Getpgrp())
	if err != nil {
		t.Fatal(err)
	}
	if d <= 0 {
		t.Errorf("groupCPU(own group) = %v, want > 0", d)
	}
	if _, err := groupCPU(1 << 30); err == nil {
		t.Error("groupCPU of a group without processes succeeded")
	}
}

// TestMeterReport checks the -tasks bound, failure counting and the ratio
// lines without any network.
func TestMeterReport(t *testing.T) {
	m := newMeter(3)
	m.task("before", time.Second, false) // before start: not measured
	m.start()
	m.task("a", time.Millisecond, true)
	m.task("b", 2*time.Millisecond, false)
	m.query(time.Microsecond)
	m.task("c", 3*time.Millisecond, true)
	select {
	case <-m.full:
	default:
		t.Fatal("meter not full after 3 tasks")
	}
	m.task("d", time.Millisecond, true) // after the limit: not measured
	r := m.stop()
	if r.n != 3 || r.failed != 1 || len(r.tasks) != 3 || len(r.queries) != 1 {
		t.Fatalf("result = %+v, want 3 tasks, 1 failed, 1 query", r)
	}
	if got := m.completed(); len(got) != 5 || got[4] != "d" {
		t.Errorf("completed() = %v, want the 5 msg_ids in order", got)
	}
	r.target, r.elapsed, r.cpu = "hubd", time.Second, 500*time.Millisecond
	ref := result{target: spawnReference, n: 1, elapsed: time.Second, cpu: time.Second}
	var out strings.Builder
	report(&out, options{scenario: scenarioFake, query: queryRecent}, []result{r, ref})
	for _, want := range []string{
		"hubd: 1 of the 3 tasks got an error result",
		"ratio hubd/reference: 3.0x tasks/s, 6.0x tasks per controller CPU-second (goal >= 20x)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
