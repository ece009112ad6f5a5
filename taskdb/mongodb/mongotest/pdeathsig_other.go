//go:build !linux

package mongotest

import "os/exec"

// setPdeathsig is Linux only: elsewhere a crashed test may leave the
// fixture running.
func setPdeathsig(*exec.Cmd) {}
