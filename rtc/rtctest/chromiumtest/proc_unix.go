//go:build unix

package chromiumtest

import (
	"os/exec"
	"syscall"
	"time"
)

// killProcessGroup sends SIGKILL to the group led by cmd's process.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // ESRCH: already gone
}

// waitProcessGroupGone waits, at most timeout, until no live process is left
// in the group: children of a killed leader die asynchronously.
func waitProcessGroupGone(cmd *exec.Cmd, timeout time.Duration) {
	if cmd.Process == nil {
		return
	}
	deadline := time.Now().Add(timeout)
	for groupAlive(cmd.Process.Pid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}
