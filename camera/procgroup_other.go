//go:build !unix

package camera

import (
	"os/exec"
	"time"
)

func ownProcessGroup(*exec.Cmd) {}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		cmd.Process.Kill()
	}
}

func groupGone(*exec.Cmd, time.Duration) {}
