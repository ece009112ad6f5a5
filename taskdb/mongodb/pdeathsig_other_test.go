//go:build !linux

package mongodb

import "os/exec"

// setPdeathsig is Linux only: elsewhere a crashed test run may leave the
// fixture running.
func setPdeathsig(*exec.Cmd) {}
