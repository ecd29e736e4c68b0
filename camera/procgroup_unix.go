//go:build unix

package camera

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup makes cmd's process lead a new process group, so killGroup reaches the
// helpers it starts (a shell script's cat, rpicam-vid's children).
func ownProcessGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills cmd's process and its process group.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Process.Kill()
}
