//go:build linux

package main

// Processes the rig starts: each in a process group of its own (so that a browser's children
// go with it), killed by the kernel if the rig dies (Pdeathsig), stopped and waited for at
// the end.

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one running program and the tail of what it printed.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	out     *tail
	done    chan struct{}
	err     error // the exit, once done is closed
}

// startProc starts cmd; each line it prints goes to the tail and, when onLine is not nil, to
// onLine (on the reader's goroutine).
func startProc(name string, cmd *exec.Cmd, onLine func(string)) (*proc, error) {
	p := &proc{name: name, cmd: cmd, out: &tail{max: 256 << 10}, done: make(chan struct{}), started: time.Now()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.out.line(sc.Text())
			if onLine != nil {
				onLine(sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	go func() {
		p.err = cmd.Wait()
		_ = w.Close()
		<-lines
		close(p.done)
	}()
	return p, nil
}

// pid is the program's process id (ip netns exec execs the program: the same process).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the program ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the program's group, SIGKILL after grace, and waits for it.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
	// Children that left the group's leader behind (a browser's helpers) go too.
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
}

// wait waits up to d for the program to end by itself.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// tail keeps the last max bytes of a program's output, by lines.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) line(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, s...)
	t.buf = append(t.buf, '\n')
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// last returns the last n lines.
func (t *tail) last(n int) string {
	lines := strings.Split(strings.TrimRight(t.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// has reports whether the output contains s.
func (t *tail) has(s string) bool { return strings.Contains(t.String(), s) }
