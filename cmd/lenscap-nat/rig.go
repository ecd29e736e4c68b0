//go:build linux

package main

// The rig's state, its check list and the verdict.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

type status string

const (
	statusPass status = "PASS"
	statusFail status = "FAIL"
	statusSkip status = "SKIP"
)

// result is one check's outcome and what it saw.
type result struct {
	status status
	detail string
}

func passf(format string, a ...any) result { return result{statusPass, fmt.Sprintf(format, a...)} }
func failf(format string, a ...any) result { return result{statusFail, fmt.Sprintf(format, a...)} }
func skipf(format string, a ...any) result { return result{statusSkip, fmt.Sprintf(format, a...)} }

// check is one named step; needs names the checks that must have passed before it runs.
type check struct {
	name  string
	needs []string
	run   func(ctx context.Context) result
}

// rig is everything one run made: namespaces, processes, files, and what the checks learnt.
type rig struct {
	opts  options
	topo  topology
	dir   string
	start time.Time
	sec   secrets

	turn, broker *proc
	cam          *camera

	mu      sync.Mutex
	viewers []*proc // every viewer started, stopped at the end

	pion, chrome *viewerRun // the relayed viewers the cut, lift and restart checks follow
	probe        *viewerRun // the first relayed pion viewer, until it passed its check
	capture      *capture   // RTP headers arriving in the mobile namespace
	passed       map[string]bool
	abort        <-chan struct{} // closed on SIGINT, SIGTERM or the rig's -timeout
	cutPressed   bool            // the cut check pressed the button (the lift check presses it again)
}

func (r *rig) checks() []check {
	return []check{
		{"topology.build", nil, r.checkBuild},
		{"turn.start", []string{"topology.build"}, r.checkTURN},
		{"mosquitto.start", []string{"topology.build"}, r.checkMosquitto},
		{"nat.symmetric-mobile", []string{"topology.build"}, r.checkSymmetric},
		{"nat.no-direct-path", []string{"topology.build"}, r.checkNoDirectPath},
		{"camera.start", []string{"mosquitto.start", "turn.start"}, r.checkCamera},
		{"camera.http-unreachable-from-mobile", []string{"camera.start"}, r.checkUnreachable},
		{"mqtt.camera-online", []string{"camera.start"}, r.checkCameraOnline},
		{"mqtt.websockets-from-mobile", []string{"mosquitto.start"}, r.checkWebSockets},
		{"signal.available", []string{"camera.start"}, r.checkSignalling},
		{"viewer.pion-relay", []string{"signal.available"}, r.checkPionRelay},
		{"viewer.pion-first-keyframe", []string{"viewer.pion-relay"}, r.checkFirstKeyframe},
		{"viewer.chromium-relay", []string{"signal.available"}, r.checkChromiumRelay},
		{"viewer.direct-fails-without-turn", []string{"signal.available"}, r.checkDirectFails},
		{"cut.button", []string{"camera.start"}, r.checkCut},
		{"lift.keyframe", []string{"camera.start"}, r.checkLift},
		{"restart.address-change", []string{"camera.start"}, r.checkRestart},
		{"bench.cut-to-last-packet", []string{"lift.keyframe"}, r.benchCut},
		{"bench.first-frame", []string{"signal.available"}, r.benchFirstFrame},
		{"bench.camera-cpu", []string{"signal.available"}, r.benchCPU},
		{"camera.stop", []string{"camera.start"}, r.checkStop},
	}
}

// runChecks runs every check in order and prints the verdict.
func (r *rig) runChecks(ctx context.Context) int {
	r.passed, r.abort = map[string]bool{}, ctx.Done()
	counts := map[status]int{}
	var failed []string
	for _, c := range r.checks() {
		if ctx.Err() != nil {
			counts[statusFail]++
			failed = append(failed, fmt.Sprintf("NAT FAILED %s and the checks after it: not run: %v", c.name, context.Cause(ctx)))
			break
		}
		res := r.runCheck(ctx, c)
		counts[res.status]++
		if res.status == statusFail {
			failed = append(failed, fmt.Sprintf("NAT FAILED %s: %s", c.name, res.detail))
		}
		if c.name == r.opts.until {
			break
		}
	}
	if counts[statusFail] > 0 {
		r.printLogs()
	}
	for _, f := range failed {
		fmt.Println(f)
	}
	verdict := statusPass
	if counts[statusFail] > 0 {
		verdict = statusFail
	}
	fmt.Printf("NAT VERDICT: %s pass=%d fail=%d skip=%d (%.1fs)\n", verdict, counts[statusPass],
		counts[statusFail], counts[statusSkip], time.Since(r.start).Seconds())
	if verdict != statusPass {
		return 1
	}
	return 0
}

func (r *rig) runCheck(ctx context.Context, c check) result {
	began := time.Now()
	res := r.needsMet(c)
	if res.status == "" {
		res = c.run(ctx)
	}
	if res.status == statusPass {
		r.passed[c.name] = true
	}
	fmt.Printf("NAT %s %-38s %6.2fs  %s\n", res.status, c.name, time.Since(began).Seconds(), res.detail)
	return res
}

// needsMet skips a check whose prerequisites did not pass; a prerequisite that failed has
// already failed the run.
func (r *rig) needsMet(c check) result {
	for _, n := range c.needs {
		if !r.passed[n] {
			return skipf("needs %s", n)
		}
	}
	return result{}
}

// printLogs shows the end of each service's log after a failure.
func (r *rig) printLogs() {
	logs := []*proc{r.turn, r.broker, r.camProc()}
	r.mu.Lock()
	logs = append(logs, r.viewers...)
	r.mu.Unlock()
	for _, p := range logs {
		if p == nil {
			continue
		}
		fmt.Printf("NAT log of %s (last lines):\n", p.name)
		for _, l := range strings.Split(p.out.last(20), "\n") {
			fmt.Println("NAT | " + l)
		}
	}
}

// track remembers a viewer process so that teardown stops it.
func (r *rig) track(p *proc) {
	r.mu.Lock()
	r.viewers = append(r.viewers, p)
	r.mu.Unlock()
}

// teardown stops every process, then deletes the namespaces; it says what it could not undo.
func (r *rig) teardown() {
	r.mu.Lock()
	procs := append([]*proc(nil), r.viewers...)
	r.mu.Unlock()
	for _, p := range procs {
		p.stop(2 * time.Second)
	}
	r.capture.close()
	r.camProc().stop(5 * time.Second)
	r.broker.stop(2 * time.Second)
	r.turn.stop(2 * time.Second)
	if r.opts.keep {
		r.keepLogs(append(procs, r.turn, r.broker, r.camProc()))
	}
	if err := r.topo.destroy(); err != nil {
		fmt.Printf("nat: cleanup: %v\n", err)
	}
}

// randomSecret is 32 hex characters from crypto/rand.
func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (r *rig) camProc() *proc {
	if r.cam == nil {
		return nil
	}
	return r.cam.p
}

// keepLogs writes what each process printed (its last 256 KiB) into the run's directory.
func (r *rig) keepLogs(procs []*proc) {
	dir := filepath.Join(r.dir, "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	for _, p := range procs {
		if p != nil {
			_ = os.WriteFile(filepath.Join(dir, p.name+".log"), []byte(p.out.String()), 0o644)
		}
	}
}

// errInterrupted is what a check returns when the rig was interrupted during one of its waits.
func errInterrupted() error {
	return errors.New("interrupted (Ctrl-C, SIGTERM or the rig's -timeout)")
}

// pause waits d, or less when the rig is interrupted; it reports whether it waited d.
func (r *rig) pause(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.abort:
		return false
	case <-t.C:
		return true
	}
}
