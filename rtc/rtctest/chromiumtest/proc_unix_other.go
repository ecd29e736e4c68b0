//go:build unix && !linux

package chromiumtest

import (
	"errors"
	"os/exec"
	"syscall"
)

// setProcessGroup makes Chromium the leader of a new process group, so that
// Close can end its zygote, renderer and utility processes with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// groupAlive reports whether group pgid still has a process, zombies included.
func groupAlive(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}
