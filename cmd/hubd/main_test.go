package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taskhub/taskhub/config"
	"github.com/taskhub/taskhub/hub/client"
	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/wire"
)

// waitFor bounds every wait: a working hub starts and stops in
// milliseconds, so reaching it means a bug, not a slow machine.
const waitFor = 20 * time.Second

func writeConfig(tb testing.TB, name, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestCommandLine covers everything that ends before the hub starts.
func TestCommandLine(t *testing.T) {
	bad := writeConfig(t, "hub.yaml", "db:\n  backend: mongo\nlisten:\n  intrface: 0.0.0.0\n")
	good := writeConfig(t, "hub.toml", "[db]\nbackend = \"nodb\"\n[session]\nkey = \"s3cret\"\n[scheduler]\nhwm = 4\n")
	for _, c := range []struct {
		name       string
		args       []string
		env        map[string]string
		code       int
		stdout     []string
		stderr     []string
		notInOuput string
	}{
		{name: "help", args: []string{"--help"}, code: 0, stdout: []string{"Usage:", "hubd [flags] config print", "-db", "db.backend", "-set key=value", "Exit status"}},
		{name: "h", args: []string{"-h"}, code: 0, stdout: []string{"Usage:"}},
		{name: "version", args: []string{"--version"}, code: 0, stdout: []string{"hubd ", "(go1."}},
		{name: "unknown flag", args: []string{"--nope"}, code: 2, stderr: []string{"hubd: flag provided but not defined: -nope (see hubd --help)"}},
		{name: "bad set", args: []string{"--set", "novalue"}, code: 2, stderr: []string{"want key=value"}},
		{name: "unknown command", args: []string{"serve"}, code: 2, stderr: []string{`unknown command "serve"`}},
		{name: "config without print", args: []string{"config"}, code: 2, stderr: []string{`unknown command "config"`}},
		{name: "extra args", args: []string{"config", "print", "x"}, code: 2, stderr: []string{`unexpected arguments "x"`}},
		{name: "missing file", args: []string{"--config", "/nonexistent/hub.yaml"}, code: 2, stderr: []string{"bad configuration", "no such file"}},
		{name: "bad file", args: []string{"--config", bad}, code: 2, stderr: []string{
			`db.backend: "mongo" is not one of dict, nodb, sqlite, postgres`, "listen.intrface (in " + bad + "): unknown key (did you mean listen.interface?)"}},
		{name: "bad flag value", args: []string{"--log-level", "loud", "--set", "heartbeat.period=3"}, code: 2, stderr: []string{
			`log.level: "loud" is not one of debug, info, warn, error`, `heartbeat.period (from flag): "3" is not a duration`}},
		{name: "huge queue", args: []string{"--set", "db.queue=4611686018427387904"}, code: 2, stderr: []string{"db.queue: 4611686018427387904 is not in 1..16777216"}},
		{name: "bad env", args: []string{"config", "print"}, env: map[string]string{"TASKHUB_SCHEDULER_SCHEME": "fifo"}, code: 2,
			stderr: []string{`scheduler.scheme: "fifo" is not one of leastload, lru, plainrandom, twobin`}},
		{name: "config print", args: []string{"--config", good, "config", "print", "--log-level", "debug"},
			env: map[string]string{"TASKHUB_SCHEDULER_HWM": "8", "TASKHUB_LOG_LEVEL": "warn"}, code: 0,
			stdout: []string{"backend: \"nodb\"", "hwm: 8", "level: \"debug\"", `key: "<redacted>"`}, notInOuput: "s3cret"},
		{name: "unknown env", args: []string{"config", "print"}, env: map[string]string{"TASKHUB_SCHEDULER_HVM": "8"}, code: 0,
			stderr: []string{"hubd: ignoring unknown environment variable TASKHUB_SCHEDULER_HVM (did you mean TASKHUB_SCHEDULER_HWM?)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := exitCode(run(t.Context(), c.args, &stdout, &stderr), &stderr)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, &stdout, &stderr)
			}
			for _, w := range c.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, &stdout)
				}
			}
			for _, w := range c.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, &stderr)
				}
			}
			if c.notInOuput != "" && strings.Contains(stdout.String()+stderr.String(), c.notInOuput) {
				t.Errorf("output contains %q", c.notInOuput)
			}
		})
	}
}

// banner is an io.Writer that reports the first write: the start block,
// printed once the hub listens.
type banner struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{}
}

func newBanner() *banner { return &banner{written: make(chan struct{})} }

func (b *banner) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() == 0 {
		defer close(b.written)
	}
	return b.buf.Write(p)
}

func (b *banner) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lockedBuffer is a bytes.Buffer safe for the hub's log goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startHubd runs run with args plus a temporary connection directory, and
// returns the client connection file once the hub listens, and a function
// that waits for run's result.
func startHubd(t *testing.T, ctx context.Context, args ...string) (connfile.Client, string, *lockedBuffer, func() error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "conn")
	stdout, stderr := newBanner(), &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append(args, "--connection-dir", dir), stdout, stderr) }()
	select {
	case <-stdout.written:
	case err := <-done:
		t.Fatalf("hubd exited at start: %v\n%s", err, stderr)
	case <-time.After(waitFor):
		t.Fatalf("hubd printed nothing within %v", waitFor)
	}
	path := filepath.Join(dir, connfile.ClientFile)
	if !regexp.MustCompile(`(?m)^  client file: +` + regexp.QuoteMeta(path) + `$`).MatchString(stdout.String()) {
		t.Errorf("start block lacks the client file %s:\n%s", path, stdout)
	}
	cf, err := connfile.ReadClient(path)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var runErr error
	wait := func() error {
		once.Do(func() {
			select {
			case runErr = <-done:
			case <-time.After(waitFor):
				runErr = errors.New("hubd did not return")
			}
		})
		return runErr
	}
	return cf, path, stderr, wait
}

func dial(t *testing.T, cf connfile.Client) *client.Client {
	t.Helper()
	c, err := client.Dial(t.Context(), cf, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Cancelling run's context (what SIGINT/SIGTERM do) stops the hub cleanly
// and removes the connection files.
func TestServeUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cf, path, stderr, wait := startHubd(t, ctx, "--log-format", "json", "--packer", "json")
	if cf.Pack != "json" {
		t.Errorf("pack = %q, want json", cf.Pack)
	}
	if h, err := dial(t, cf).History(t.Context()); err != nil || len(h) != 0 {
		t.Errorf("History = %v, %v", h, err)
	}
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("connection file left behind: %v", err)
	}
	// Every log line is a JSON object.
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("log line is not JSON: %q", line)
		}
	}
	if !strings.Contains(stderr.String(), `"msg":"hub started"`) {
		t.Errorf("no start log:\n%s", stderr)
	}
}

func TestShutdownRequest(t *testing.T) {
	cf, _, _, wait := startHubd(t, t.Context())
	if err := dial(t, cf).Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// With --db nodb tasks would still run, but reads fail with NoData.
func TestNoDB(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cf, _, _, wait := startHubd(t, ctx, "--db", "nodb")
	_, err := dial(t, cf).History(t.Context())
	var we *wire.Error
	if !errors.As(err, &we) || we.Name != "NoData" {
		t.Errorf("History on nodb: %v, want NoData", err)
	}
	cancel()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

// With --db sqlite the records live in a file that survives restarts.
func TestSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "tasks.db")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cf, _, _, wait := startHubd(t, ctx, "--db", "sqlite", "--set", "db.sqlite.path="+path, "--set", "db.sqlite.sync=full")
	if h, err := dial(t, cf).History(t.Context()); err != nil || len(h) != 0 {
		t.Errorf("History = %v, %v", h, err)
	}
	cancel()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

// A port already taken is a runtime failure: exit 1.
func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	var stderr bytes.Buffer
	err = run(t.Context(), []string{"--set", "listen.registration=" + port, "--connection-dir", t.TempDir()}, io.Discard, &stderr)
	if code := exitCode(err, &stderr); code != 1 || !strings.Contains(stderr.String(), port) {
		t.Errorf("exit %d, stderr %q; want 1 naming port %s", code, &stderr, port)
	}
}

// The real binary: SIGTERM shuts down gracefully with exit status 0.
func TestSignal(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hubd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "conn")
	cmd := exec.Command(bin, "--connection-dir", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// The start block is printed once the hub listens.
	buf := make([]byte, 4096)
	if _, err := stdout.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { io.Copy(io.Discard, stdout); exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("hubd after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(waitFor):
		t.Fatal("hubd still running after SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(dir, connfile.ClientFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("connection file left behind: %v", err)
	}
}

// failingClose is a database whose final Close fails, as a durable
// backend's last commit can.
type failingClose struct{ taskdb.DB }

var errFinalCommit = errors.New("final commit: disk full")

func (f failingClose) Close() error { return errors.Join(f.DB.Close(), errFinalCommit) }

// A database that fails to close makes the run fail (exit 1): the records
// it could not commit are lost, which must not look like a clean exit.
func TestCloseError(t *testing.T) {
	cfg, err := config.Load("", func(k string) (string, bool) { return map[string]string{"HOME": t.TempDir()}[k], k == "HOME" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the hub stops as soon as it has started
	err = serve(ctx, cfg, failingClose{dictdb.New(dictdb.DefaultOptions())}, slog.New(slog.NewTextHandler(t.Output(), nil)), io.Discard)
	if !errors.Is(err, errFinalCommit) {
		t.Fatalf("serve = %v, want the Close error", err)
	}
	if code := exitCode(err, io.Discard); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}
