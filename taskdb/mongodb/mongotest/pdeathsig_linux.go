package mongotest

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill the fixture when the test binary
// dies, so a crashed test leaves no server behind.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
