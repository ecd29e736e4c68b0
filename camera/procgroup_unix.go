//go:build unix

package camera

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
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

// groupGone waits, at most limit, until no live process is left in the group cmd led (the
// leader reaped, its children killed): SIGKILL is delivered asynchronously, and a child that
// still runs may still hold the camera. Zombies do not count: they hold nothing. Without
// /proc (not Linux) it returns at once.
func groupGone(cmd *exec.Cmd, limit time.Duration) {
	if cmd.Process == nil {
		return
	}
	pgid := strconv.Itoa(cmd.Process.Pid)
	deadline := time.Now().Add(limit)
	for liveInGroup(pgid) > 0 && time.Now().Before(deadline) {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		time.Sleep(time.Millisecond)
	}
}

// liveInGroup counts the processes of group pgid that /proc shows, zombies excepted.
func liveInGroup(pgid string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces; fields follow the last ')'.
		f := bytes.Fields(stat[bytes.LastIndexByte(stat, ')')+1:])
		if len(f) > 2 && string(f[2]) == pgid && string(f[0]) != "Z" {
			n++
		}
	}
	return n
}
