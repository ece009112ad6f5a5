package hub

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskhub/taskhub/wire/wiretest"
)

// interopScript drives an unmodified ipyparallel 7.1 Client against the
// hub and its 2 real engines. It prints "ok <check>" per check and exits
// non-zero (with a traceback) on the first failure.
const interopScript = `
import os, sys, time
import ipyparallel as ipp

def ok(name):
    print("ok", name, flush=True)

rc = ipp.Client(sys.argv[1])
rc.wait_for_engines(2, timeout=30)
assert len(rc.ids) == 2, rc.ids
ok("connect")

lv = rc.load_balanced_view()
assert lv.map_sync(lambda x: x * x, range(100)) == [x * x for x in range(100)]
ok("map_sync")

pids = rc[:].apply_sync(os.getpid)
assert len(set(pids)) == 2, pids
ok("apply_sync")

def boom():
    raise ValueError("boom")
ar = lv.apply_async(boom)
try:
    ar.get(timeout=20)
    raise AssertionError("no error")
except ipp.RemoteError as e:
    assert e.ename == "ValueError", e.ename
ok("raise")

def hello():
    print("hello from task")
    return 7
ar = lv.apply_async(hello)
assert ar.get(timeout=20) == 7
for _ in range(200):
    recs = rc.db_query({"msg_id": ar.msg_ids[0]}, keys=["stdout", "completed", "engine_uuid"])
    if recs and "hello from task" in (recs[0]["stdout"] or ""):
        break
    time.sleep(0.05)
else:
    raise AssertionError(recs)
assert recs[0]["completed"] is not None and recs[0]["engine_uuid"] in rc._engines.values()
ok("stdout")

recs = rc.db_query({"completed": {"$ne": None}, "queue": {"$in": ["task", "mux"]}}, keys=["msg_id", "queue", "completed"])
assert len(recs) >= 104, len(recs)
late = rc.db_query({"completed": {"$gte": recs[0]["completed"]}}, keys=["completed"])
assert 0 < len(late) <= len(recs), (len(late), len(recs))
none = rc.db_query({"msg_id": {"$in": []}})
assert none == [], none
withbufs = rc.db_query({"msg_id": ar.msg_ids[0]}, keys=["buffers", "result_buffers"])
assert len(withbufs) == 1 and withbufs[0]["buffers"] and withbufs[0]["result_buffers"], withbufs
ok("db_query")

hist = rc.hub_history()
assert ar.msg_ids[0] in hist and len(hist) >= 104, len(hist)
ok("hub_history")

qs = rc.queue_status(verbose=True)
assert set(qs) == {0, 1, "unassigned"}, qs
assert all(isinstance(qs[i]["completed"], list) for i in (0, 1))
qs = rc.queue_status(targets=[0])
assert set(qs) == {0, "unassigned"} or set(qs) == {"queue", "completed", "tasks"}, qs
ok("queue_status")

st = rc.result_status(ar.msg_ids)
assert st["completed"] == ar.msg_ids, st
ok("result_status")

rc2 = ipp.Client(sys.argv[1])
other = rc2.get_result(ar.msg_ids[0])
assert other.get(timeout=20) == 7
rc2.close()
ok("get_result")

def three():
    return 3
ar3 = lv.apply_async(three)
ar3.get(timeout=20)
ar4 = rc.resubmit(ar3.msg_ids)
got = ar4.get(timeout=20)
assert got == [3], got
ok("resubmit")

rc.purge_hub_results(ar3.msg_ids)
assert ar3.msg_ids[0] not in rc.hub_history()
rc.purge_hub_results(targets=[1])
rc.purge_hub_results("all")
assert rc.db_query({"completed": {"$ne": None}}, keys=["msg_id"]) == []
ok("purge")

for coalescing in (False, True):
    try:
        rc.broadcast_view(is_coalescing=coalescing).apply_sync(lambda: 1)
        raise AssertionError("broadcast ran")
    except (ipp.RemoteError, ipp.CompositeError) as e:
        assert "NotImplementedError" in str(e), e
ok("broadcast_error")

victim = rc.ids[0]
pid = rc[victim].apply_sync(os.getpid)
slow = rc.load_balanced_view(targets=[victim]).apply_async(time.sleep, 60)
time.sleep(1)
os.kill(pid, 9)
try:
    slow.get(timeout=30)
    raise AssertionError("no error")
except ipp.RemoteError as e:
    assert e.ename == "EngineError", e.ename
ok("engine_killed")

rc.shutdown(hub=True, block=True)
ok("shutdown")
rc.close()
`

var interopChecks = []string{
	"connect", "map_sync", "apply_sync", "raise", "stdout", "db_query", "hub_history",
	"queue_status", "result_status", "get_result", "resubmit", "purge", "broadcast_error", "engine_killed", "shutdown",
}

func TestInteropPython(t *testing.T) {
	py := wiretest.Python(t, "ipyparallel", "msgpack", "zmq")
	for _, packer := range []string{"json", "msgpack"} {
		t.Run(packer, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Packer = packer
			cfg.HeartbeatPeriod = 500 * time.Millisecond
			cfg.DeadEngineGrace = time.Second
			cfg.ShutdownTimeout = 3 * time.Second
			h := startHub(t, cfg, nil)
			cf, ef := h.ConnectionFiles()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			for i := range 2 {
				startPython(t, ctx, filepath.Join(filepath.Dir(ef), "engine"+string(rune('0'+i))+".log"),
					py, "-m", "ipyparallel.engine", "--file="+ef, "--log-level=WARN")
			}
			script := filepath.Join(t.TempDir(), "client.py")
			writeFile(t, script, interopScript)
			cmd := exec.CommandContext(ctx, py, script, cf)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			passed := map[string]bool{}
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if name, ok := strings.CutPrefix(sc.Text(), "ok "); ok {
					passed[name] = true
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("client script: %v\n%s", err, stderr.String())
			}
			for _, c := range interopChecks {
				if !passed[c] {
					t.Errorf("check %s did not pass", c)
				}
			}
			if s := h.Stats(); s.DBErrors != 0 || s.BadMessages != 0 {
				t.Errorf("stats %+v", s)
			}
			// rc.shutdown(hub=True) stopped the hub: its files go away
			deadline := time.Now().Add(cfg.ShutdownTimeout + time.Second)
			for fileExists(cf) {
				if time.Now().After(deadline) {
					t.Fatal("hub still running after shutdown_request")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// startPython starts a Python process in its own process group, logging
// to logPath, and kills the group when the test ends.
func startPython(t *testing.T, ctx context.Context, logPath, py string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf := createFile(t, logPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(-pgid, syscall.SIGKILL)
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			t.Logf("%s:\n%s", logPath, readFile(t, logPath))
		}
	})
}
