//go:build !unix

package chromiumtest

import (
	"os/exec"
	"time"
)

func setProcessGroup(*exec.Cmd) {}

func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

func waitProcessGroupGone(*exec.Cmd, time.Duration) {}
