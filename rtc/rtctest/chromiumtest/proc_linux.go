package chromiumtest

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// setProcessGroup makes Chromium the leader of a new process group, so that
// Close can end its zygote, renderer and utility processes with it, and has
// the kernel kill it if the test process dies without Close (its children
// follow it within ~100 ms). Pdeathsig follows the thread that started
// Chromium: Go keeps its threads unless a goroutine exits locked to one.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// groupAlive reports whether a process of group pgid is still running. The
// orphaned children of a killed Chromium become zombies of PID 1, which may
// reap them late; a zombie holds nothing and does not count.
func groupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := readProcStat(pid)
		if ok && st.pgrp == pgid && st.running() {
			return true
		}
	}
	return false
}

// procStat holds fields of /proc/PID/stat.
type procStat struct {
	state      string
	ppid, pgrp int
}

func (s procStat) running() bool { return s.state != "Z" && s.state != "X" }

func readProcStat(pid int) (procStat, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 3 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{state: f[0], ppid: ppid, pgrp: pgrp}, true
}
