package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskhub/taskhub/hub"
	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/wire/wiretest"
)

// clientScript runs tasks through an unmodified ipyparallel Client and
// prints their msg_ids as JSON: {"ok": [...], "failed": id, "printed": id}.
const clientScript = `
import json, sys
import ipyparallel as ipp
c = ipp.Client(sys.argv[1], timeout=30)
c.wait_for_engines(1, timeout=30)
v = c.load_balanced_view()
ok = v.map_async(lambda x: x * x, range(4))
assert ok.get(30) == [0, 1, 4, 9]
def fail():
    return 1 / 0
bad = v.apply_async(fail)
try:
    bad.get(30)
except Exception:
    pass
def talk():
    print("hello from engine")
    return 42
printed = c[:].apply_async(talk)
assert printed.get(30) == [42]
print(json.dumps({"ok": ok.msg_ids, "failed": bad.msg_ids[0], "printed": printed.msg_ids[0]}))
c.close()
`

// hubctl works against a hub running a real ipyparallel engine, with
// tasks submitted by a real ipyparallel client.
func TestPythonEngine(t *testing.T) {
	py := wiretest.Python(t, "ipyparallel")
	dir := t.TempDir()
	h, err := hub.New(hub.Config{ConnectionDir: dir, HeartbeatPeriod: 300 * time.Millisecond}, dictdb.New(dictdb.DefaultOptions()),
		slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { h.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	clientFile, engineFile := h.ConnectionFiles()

	engine := exec.Command(py, "-m", "ipyparallel.engine", "--file="+engineFile, "--log-level=WARN")
	engine.Stderr = t.Output()                               // stdout only echoes every request
	engine.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the engine forks a nanny
	engine.WaitDelay = 5 * time.Second
	if err := engine.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-engine.Process.Pid, syscall.SIGKILL)
		engine.Wait()
	})

	script := filepath.Join(dir, "client.py")
	if err := os.WriteFile(script, []byte(clientScript), 0o600); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer pcancel()
	out, err := exec.CommandContext(pctx, py, script, clientFile).Output()
	if err != nil {
		t.Fatalf("ipyparallel client: %v\n%s", err, out)
	}
	var ids struct {
		OK      []string `json:"ok"`
		Failed  string   `json:"failed"`
		Printed string   `json:"printed"`
	}
	if err := json.Unmarshal(out, &ids); err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}

	hubctl := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := exitCode(run(t.Context(), append([]string{"--file", clientFile}, args...), &stdout, &stderr), &stderr); code != 0 {
			t.Fatalf("hubctl %v: exit %d: %s", args, code, &stderr)
		}
		return stdout.String()
	}
	jsonl := hubctl("query", `{"completed": {"$ne": null}}`, "--format", "jsonl", "--keys", "engine_uuid,result_content")
	if n := strings.Count(jsonl, "\n"); n != len(ids.OK)+2 {
		t.Errorf("query found %d completed tasks, want %d:\n%s", n, len(ids.OK)+2, jsonl)
	}
	table := hubctl("query", `{"submitted": {"$gte": "2000-01-01T00:00:00Z"}}`)
	for _, id := range append(ids.OK, ids.Failed, ids.Printed) {
		if !strings.Contains(table, id) {
			t.Errorf("query table lacks %s:\n%s", id, table)
		}
	}
	if got := hubctl("result", ids.Failed); !strings.Contains(got, "completed, error") || !strings.Contains(got, "ZeroDivisionError: division by zero") {
		t.Errorf("result of the failed task:\n%s", got)
	}
	if got := hubctl("result", ids.Printed); !strings.Contains(got, `stdout:    hello from engine\n`) {
		t.Errorf("result of the printing task:\n%s", got)
	}
	if got := hubctl("history"); !strings.Contains(got, ids.Printed+"\n") {
		t.Errorf("history lacks %s:\n%s", ids.Printed, got)
	}
	watch := hubctl("watch", "--count", "2", "--interval", "100ms")
	if !strings.Contains(watch, "engines: 1 ") || !strings.Contains(watch, "completed: 6") || !strings.Contains(watch, "tasks/s: 0.0") {
		t.Errorf("watch:\n%s", watch)
	}
}
