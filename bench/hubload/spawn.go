package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/taskhub/taskhub/hub"
	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/taskdb/dictdb"
)

// Controllers -spawn starts.
const (
	spawnHub       = "hub"       // in-process hub.Hub
	spawnHubd      = "hubd"      // the hubd binary
	spawnReference = "reference" // python -m ipyparallel.controller
)

// runSpawned starts a controller of the given kind in a temporary
// directory, runs the scenario against it, and stops it.
func runSpawned(ctx context.Context, o options, kind string) (r result, err error) {
	dir, err := os.MkdirTemp("", "hubload-"+kind+"-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(o.log, "starting %s in %s\n", kind, dir)
	var c controller
	switch kind {
	case spawnHub:
		as(ctx, partyHub, func(ctx context.Context) { c, err = startHub(ctx, o, dir) })
	case spawnHubd:
		c, err = startHubd(ctx, o, dir)
	case spawnReference:
		c, err = startReference(o, dir)
	}
	if err != nil {
		return r, err
	}
	defer func() { err = errors.Join(err, c.stop()) }()
	clientFile, engineFile := filepath.Join(dir, connfile.ClientFile), filepath.Join(dir, connfile.EngineFile)
	if kind == spawnReference {
		clientFile, engineFile = filepath.Join(dir, "security", connfile.ClientFile), filepath.Join(dir, "security", connfile.EngineFile)
	}
	if err := waitFiles(ctx, c, clientFile, engineFile); err != nil {
		return r, err
	}
	r, err = runScenario(ctx, o, clientFile, engineFile, c.cpu)
	r.target = kind
	return r, err
}

// controller is a started controller.
type controller interface {
	// exited returns an error if the controller has ended.
	exited() error
	// stop ends the controller and waits for it.
	stop() error
	// cpu returns the CPU time the controller used so far.
	cpu() (time.Duration, error)
}

// startHub runs an in-process hub with the defaults hubd uses (dict
// database with ipyparallel's limits, leastload) and hwm o.hwm.
func startHub(ctx context.Context, o options, dir string) (controller, error) {
	hwm := o.hwm
	if hwm == 0 {
		hwm = -1 // hub.Config's spelling of unlimited
	}
	h, err := hub.New(hub.Config{ConnectionDir: dir, HWM: hwm}, dictdb.New(dictdb.DefaultOptions()), slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	if err := h.Listen(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &inProcess{cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- h.Run(ctx) }()
	return c, nil
}

// inProcess is a hub running in this process.
type inProcess struct {
	cancel context.CancelFunc
	done   chan error
}

func (c *inProcess) exited() error {
	select {
	case err := <-c.done:
		c.done <- err
		return fmt.Errorf("hub stopped: %v", err)
	default:
		return nil
	}
}

// cpu is unknown: the hub shares the process with the load.
func (c *inProcess) cpu() (time.Duration, error) {
	return 0, errors.New("in-process hub: CPU time not separable from the load generator")
}

func (c *inProcess) stop() error {
	c.cancel()
	err := <-c.done
	c.done <- err
	return err
}

// startHubd builds (unless -hubd names a binary) and runs hubd with a
// configuration that binds loopback and writes the connection files to dir.
func startHubd(ctx context.Context, o options, dir string) (controller, error) {
	bin := o.hubd
	if bin == "" {
		bin = filepath.Join(dir, "hubd")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/taskhub/taskhub/cmd/hubd").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go build ./cmd/hubd: %w\n%s", err, out)
		}
	}
	cfg := filepath.Join(dir, "hub.yaml")
	yaml := fmt.Sprintf("listen:\n  interface: \"127.0.0.1\"\nconnection_dir: %q\ndata_dir: %q\nscheduler:\n  hwm: %d\n", dir, dir, o.hwm)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	return startProc(filepath.Join(dir, "hubd.log"), bin, "--config", cfg)
}

// startReference runs the reference controller with a profile in dir; it
// writes its connection files to dir/security.
func startReference(o options, dir string) (controller, error) {
	return startProc(filepath.Join(dir, "controller.log"), o.python, "-m", "ipyparallel.controller",
		"--ip=127.0.0.1", "--profile-dir="+dir, fmt.Sprintf("--TaskScheduler.hwm=%d", o.hwm))
}

// proc is a child process in its own process group, so that stopping it
// also stops the processes it started (the reference's schedulers).
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan error
}

// startProc starts name with args, its output going to the file log.
func startProc(log, name string, args ...string) (*proc, error) {
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, log: log, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// stop sends SIGTERM to the process group, then SIGKILL after 5 s.
// Exiting because of the signal is not an error.
func (p *proc) stop() error {
	pg := -p.cmd.Process.Pid
	syscall.Kill(pg, syscall.SIGTERM)
	var err error
	select {
	case err = <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(pg, syscall.SIGKILL)
		err = <-p.done
	}
	// Children that outlived the leader.
	syscall.Kill(pg, syscall.SIGKILL)
	var ee *exec.ExitError
	if errors.As(err, &ee) && (ee.ExitCode() == -1 || ee.ExitCode() == 128+int(syscall.SIGTERM)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", p.cmd.Path, err, tail(p.log))
	}
	return nil
}

// cpu returns the CPU time used by the processes of p's group: the live
// ones and, through their parents' cutime, the ones that ended.
func (p *proc) cpu() (time.Duration, error) {
	return groupCPU(p.cmd.Process.Pid)
}

// exited reports whether the process has ended, with its error and log.
func (p *proc) exited() error {
	select {
	case err := <-p.done:
		p.done <- err
		return fmt.Errorf("%s exited: %v\n%s", p.cmd.Path, err, tail(p.log))
	default:
		return nil
	}
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2048 {
		b = b[len(b)-2048:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// waitFiles waits until both connection files can be read.
func waitFiles(ctx context.Context, c controller, clientFile, engineFile string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, cerr := connfile.ReadClient(clientFile)
		_, eerr := connfile.ReadEngine(engineFile)
		if cerr == nil && eerr == nil {
			return nil
		}
		if err := c.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("connection files not ready within 60s: %w", errors.Join(cerr, eerr))
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on
// Linux whatever the kernel's HZ).
const userHZ = 100

// groupCPU sums utime, stime, cutime and cstime over the processes of
// process group pgid, from /proc (Linux).
func groupCPU(pgid int) (time.Duration, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	var ticks int64
	found := false
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
		// majflt cmajflt utime stime cutime cstime ...; comm may hold spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		for _, s := range f[11:15] {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", path, err)
			}
			ticks += n
		}
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no process in group %d", pgid)
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
