package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

//go:embed driver.py
var driver []byte

// runPython starts o.engines real ipyparallel engines and runs driver.py,
// the real Client submitting o.tasks no-op tasks, against one controller.
func runPython(ctx context.Context, o options, clientFile, engineFile string, cpu cpuClock) (r result, err error) {
	dir, err := os.MkdirTemp("", "hubload-python-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "driver.py")
	if err := os.WriteFile(script, driver, 0o600); err != nil {
		return r, err
	}
	for i := range o.engines {
		// Each engine gets its own profile, so nothing is read from or
		// written to the user's.
		profile := filepath.Join(dir, fmt.Sprintf("engine%d", i))
		if err := os.Mkdir(profile, 0o700); err != nil {
			return r, err
		}
		p, err := startProc(profile+".log", o.python, "-m", "ipyparallel.engine", "--file="+engineFile, "--profile-dir="+profile)
		if err != nil {
			return r, err
		}
		defer func() { err = errors.Join(err, p.stop()) }()
	}

	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.python, script, clientFile, strconv.Itoa(o.tasks), strconv.Itoa(o.engines))
	cmd.Env = append(os.Environ(), "IPYTHONDIR="+filepath.Join(dir, "ipython"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, err
	}
	// The driver prints "start" when it starts measuring, then the result.
	var cpu0 time.Duration
	var ok bool
	var last []byte
	lines := bufio.NewScanner(pipe)
	lines.Buffer(nil, 1<<24)
	for lines.Scan() {
		if last = lines.Bytes(); string(last) == "start" {
			cpu0, ok = cpu.read()
		}
	}
	cpuUsed := cpu.since(cpu0, ok)
	if err := errors.Join(lines.Err(), cmd.Wait()); err != nil {
		return r, fmt.Errorf("driver: %w\n%s", err, stderr.Bytes())
	}
	var out struct {
		Tasks     int       `json:"tasks"`
		Seconds   float64   `json:"seconds"`
		Latencies []float64 `json:"latencies"`
	}
	if err := json.Unmarshal(last, &out); err != nil {
		return r, fmt.Errorf("driver output %q: %w", last, err)
	}
	r = result{n: out.Tasks, elapsed: time.Duration(out.Seconds * float64(time.Second)), cpu: cpuUsed, scenario: scenarioPython}
	for _, l := range out.Latencies {
		r.tasks = append(r.tasks, time.Duration(l*float64(time.Second)))
	}
	return r, nil
}
