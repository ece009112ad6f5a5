package client_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/taskhub/taskhub/hub/client"
	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/wire/wiretest"
)

// The client speaks to the reference: a real ipyparallel 7.1 controller.
func TestPythonController(t *testing.T) {
	py := wiretest.Python(t, "ipyparallel")
	profile := t.TempDir()
	cmd := exec.Command(py, "-m", "ipyparallel.controller", "--ip=127.0.0.1", "--profile-dir="+profile, "--log-level=WARN")
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	// The controller forks schedulers: kill its whole process group, and
	// do not wait for children still holding the output pipe.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed once the controller is reaped
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	path := filepath.Join(profile, "security", connfile.ClientFile)
	var cf connfile.Client
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var err error
		if cf, err = connfile.ReadClient(path); err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || time.Now().After(deadline) {
			t.Fatalf("controller's connection file: %v", err)
		}
		select {
		case <-exited:
			t.Fatalf("controller exited: %v", cmd.ProcessState)
		default:
		}
	}
	c, err := client.Dial(t.Context(), cf, client.Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	if engines, err := c.Connection(ctx); err != nil || len(engines) != 0 {
		t.Errorf("Connection = %v, %v", engines, err)
	}
	if qs, err := c.QueueStatus(ctx, nil, true); err != nil || len(qs.Engines) != 0 {
		t.Errorf("QueueStatus = %+v, %v", qs, err)
	}
	if h, err := c.History(ctx); err != nil || len(h) != 0 {
		t.Errorf("History = %v, %v", h, err)
	}
	if recs, err := c.DBQuery(ctx, map[string]any{"msg_id": map[string]any{"$ne": nil}}, []string{"buffers", "result_buffers"}); err != nil || len(recs) != 0 {
		t.Errorf("DBQuery = %v, %v", recs, err)
	}
	_, err = c.Resubmit(ctx, []string{"nope"})
	wantWireError(t, err, "KeyError")
	if err := c.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Error("controller still running 30s after shutdown_request")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("connection file left behind: %v", err)
	}
}
