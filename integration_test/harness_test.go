package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taskhub/taskhub/wire/wiretest"
)

// Bounds on waits. They are generous: the machine running the tests may be
// loaded, and a wait returns as soon as its condition holds.
const (
	startTimeout    = 30 * time.Second // hubd writes its connection files
	shutdownTimeout = 5 * time.Second  // shutdown_timeout in every config
	exitSlack       = 10 * time.Second // on top of shutdownTimeout
	commandTimeout  = 60 * time.Second // one hubctl run
	driverTimeout   = 3 * time.Minute  // one driver.py run, engines included
)

// bin holds the paths of the binaries TestMain builds.
var bin struct{ hubd, hubctl string }

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "taskhub-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/taskhub/taskhub/cmd/hubd", "github.com/taskhub/taskhub/cmd/hubctl")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	bin.hubd, bin.hubctl = filepath.Join(dir, "hubd"), filepath.Join(dir, "hubctl")
	return m.Run()
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// hubConfig returns a hubd configuration for dir: ports picked by the
// system on 127.0.0.1, connection files in dir/conn, data in dir/data,
// short heartbeats, then extra (YAML top-level keys, e.g. a db: block).
func hubConfig(dir, extra string) string {
	return fmt.Sprintf(`listen:
  interface: "127.0.0.1"
connection_dir: %q
data_dir: %q
heartbeat:
  period: "1s"
  max_misses: 10
engine:
  dead_task_grace: "1s"
shutdown_timeout: %q
log:
  level: "info"
%s`, filepath.Join(dir, "conn"), filepath.Join(dir, "data"), shutdownTimeout.String(), extra)
}

// writeConfig writes content to dir/hub.yaml and returns its path.
func writeConfig(t *testing.T, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// hubd is a running hubd process.
type hubd struct {
	cmd                    *exec.Cmd
	stdout, stderr         *lockedBuffer
	exited                 chan struct{} // closed when the process has exited
	waitErr                error         // set before exited is closed
	clientFile, engineFile string
}

// startHubd starts hubd --config path, with env ("KEY=value") added to its
// environment, and waits until it has written its connection files into
// connDir. The process is killed when the test ends.
func startHubd(t *testing.T, path, connDir string, env ...string) *hubd {
	t.Helper()
	h := &hubd{
		cmd:        exec.Command(bin.hubd, "--config", path),
		stdout:     &lockedBuffer{},
		stderr:     &lockedBuffer{},
		exited:     make(chan struct{}),
		clientFile: filepath.Join(connDir, "ipcontroller-client.json"),
		engineFile: filepath.Join(connDir, "ipcontroller-engine.json"),
	}
	h.cmd.Env = append(os.Environ(), env...)
	h.cmd.Stdout, h.cmd.Stderr = h.stdout, h.stderr
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.waitErr = h.cmd.Wait(); close(h.exited) }()
	t.Cleanup(func() {
		syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		<-h.exited
		if strings.Contains(h.stderr.String(), "WARNING: DATA RACE") {
			t.Error("data race in hubd")
		}
		if t.Failed() {
			t.Logf("hubd stdout:\n%s\nhubd stderr:\n%s", h.stdout, h.stderr)
		}
	})
	deadline := time.Now().Add(startTimeout)
	for !jsonFile(h.clientFile) || !jsonFile(h.engineFile) {
		select {
		case <-h.exited:
			t.Fatalf("hubd exited before writing its connection files: %v\n%s", h.waitErr, h.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("hubd wrote no connection files in %s within %v", connDir, startTimeout)
		}
	}
	return h
}

// jsonFile reports whether path holds a complete JSON object.
func jsonFile(path string) bool {
	b, err := os.ReadFile(path)
	var v map[string]any
	return err == nil && json.Unmarshal(b, &v) == nil
}

// terminate sends SIGTERM and checks that hubd exits 0 within its shutdown
// timeout and removes its connection files.
func (h *hubd) terminate(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	h.waitExit(t, "SIGTERM")
	if d := time.Since(start); d > shutdownTimeout+2*time.Second { // slack for a loaded machine
		t.Errorf("hubd took %v to exit after SIGTERM; shutdown_timeout is %v", d, shutdownTimeout)
	}
}

// waitExit waits for hubd to exit after why, and checks that it exited 0
// and removed its connection files.
func (h *hubd) waitExit(t *testing.T, why string) {
	t.Helper()
	select {
	case <-h.exited:
	case <-time.After(shutdownTimeout + exitSlack):
		t.Fatalf("hubd still running %v after %s", shutdownTimeout+exitSlack, why)
	}
	if h.waitErr != nil {
		t.Errorf("hubd after %s: %v, want exit status 0\n%s", why, h.waitErr, h.stderr)
	}
	for _, f := range []string{h.clientFile, h.engineFile} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after %s, %s is left behind (stat: %v)", why, f, err)
		}
	}
}

// result is the outcome of a command that ran to its end.
type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// runCommand runs name with args, bounded by commandTimeout.
func runCommand(t *testing.T, name string, args ...string) result {
	t.Helper()
	return runCommandEnv(t, nil, name, args...)
}

// runCommandEnv is runCommand with env ("KEY=value") added to the
// environment.
func runCommandEnv(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if strings.Contains(r.stderr, "WARNING: DATA RACE") {
		t.Errorf("data race in %s %q:\n%s", filepath.Base(name), args, r.stderr)
	}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %q still running after %v", filepath.Base(name), args, commandTimeout)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// hubctl runs hubctl --file h.clientFile args.
func (h *hubd) hubctl(t *testing.T, args ...string) result {
	t.Helper()
	return runCommand(t, bin.hubctl, append([]string{"--file", h.clientFile}, args...)...)
}

// ok runs hubctl like hubctl, and fails the test unless it exits 0.
func (h *hubd) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := h.hubctl(t, args...)
	if r.code != 0 {
		t.Fatalf("hubctl %q: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// python returns the interpreter for the tests driving real ipyparallel
// peers: they skip without it, and fail under CI=true.
func python(t *testing.T) string {
	t.Helper()
	return wiretest.Python(t, "ipyparallel", "zmq", "msgpack")
}

// startEngines starts n real ipyparallel engines on h, each in its own
// process group, logging into dir. The returned function kills them; so
// does the end of the test.
func startEngines(t *testing.T, py string, h *hubd, dir string, n int) (kill func()) {
	t.Helper()
	var kills []func()
	for i := range n {
		logPath := filepath.Join(dir, fmt.Sprintf("engine%d.log", i))
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(py, "-m", "ipyparallel.engine", "--file="+h.engineFile, "--log-level=WARN")
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		kills = append(kills, sync.OnceFunc(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
			logf.Close()
		}))
		t.Cleanup(func() {
			kills[i]()
			if t.Failed() {
				b, _ := os.ReadFile(logPath)
				t.Logf("%s:\n%s", logPath, b)
			}
		})
	}
	return func() {
		for _, k := range kills {
			k()
		}
	}
}

// remoteError is how driver.py reports a read the hub refused.
type remoteError struct {
	Ename  string `json:"ename"`
	Evalue string `json:"evalue"`
}

// record is a task record as driver.py reports it: dates as ISO strings,
// "" for null.
type record struct {
	MsgID      string `json:"msg_id"`
	Submitted  string `json:"submitted"`
	Completed  string `json:"completed"`
	EngineUUID string `json:"engine_uuid"`
	Stdout     string `json:"stdout"`
	Queue      string `json:"queue"`
}

// report is driver.py's output. History, Records and Results hold either
// the value or a remoteError.
type report struct {
	Engines int             `json:"engines"`
	Squares []int           `json:"squares"`
	Answer  int             `json:"answer"`
	MapIDs  []string        `json:"map_ids"`
	GreetID string          `json:"greet_id"`
	History json.RawMessage `json:"history"`
	Records json.RawMessage `json:"records"`
	Results json.RawMessage `json:"results"` // report mode: the tasks' return values
}

// taskIDs are the msg_ids of the tasks run, in submission order.
func (r report) taskIDs() []string { return append(append([]string(nil), r.MapIDs...), r.GreetID) }

func (r report) history(t *testing.T) []string {
	t.Helper()
	var h []string
	if err := json.Unmarshal(r.History, &h); err != nil {
		t.Fatalf("rc.hub_history() = %s, want a list of msg_ids", r.History)
	}
	return h
}

func (r report) records(t *testing.T) map[string]record {
	t.Helper()
	var recs []record
	if err := json.Unmarshal(r.Records, &recs); err != nil {
		t.Fatalf("rc.db_query() = %s, want a list of records", r.Records)
	}
	m := map[string]record{}
	for _, rec := range recs {
		m[rec.MsgID] = rec
	}
	return m
}

// driver runs testdata/driver.py against h's client file and decodes its
// report.
func driver(t *testing.T, py string, h *hubd, args ...string) report {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), driverTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{"testdata/driver.py", h.clientFile}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("driver.py %q: %v (timeout %v)\nstdout:\n%s\nstderr:\n%s", args, err, driverTimeout, &stdout, &stderr)
	}
	var r report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("driver.py %q printed %q: %v\nstderr:\n%s", args, &stdout, err, &stderr)
	}
	return r
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
