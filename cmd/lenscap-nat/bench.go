//go:build linux

package main

// The measurements of issue 12 part 5: first frame through TURN vs direct, cut to last packet
// at a relayed viewer, and the camera's CPU per relayed viewer vs per direct one.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func list(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strings.Join(parts, ", ")
}

// firstFrames starts n viewers in ns one after another and returns each one's hello to first
// video frame (ms) and its pair type (with "+key" when that frame was a keyframe).
func (r *rig) firstFrames(name, ns string, n int) ([]float64, []string, error) {
	var after []float64
	var pairs []string
	for i := 0; i < n; i++ {
		v, err := r.startPion(fmt.Sprintf("%s-%d", name, i), ns)
		if err != nil {
			return nil, nil, err
		}
		ff, ok := v.waitFor(time.Now().Add(-time.Second), 15*time.Second, named("first-frame", "video"))
		c, _ := v.lastEvent("connected")
		v.stop()
		if !ok {
			return nil, nil, fmt.Errorf("%s: no first frame in 15 s; %s", v.name, v.describe())
		}
		pair := c.str("pair")
		if ff.flag("keyframe") {
			pair += "+key"
		}
		after, pairs = append(after, ff.num("after")), append(pairs, pair)
	}
	return after, pairs, nil
}

// benchFirstFrame: hello to first video frame, relayed (mobile) vs direct (home), with the
// camera's sources already open (a relayed viewer keeps watching).
func (r *rig) benchFirstFrame(ctx context.Context) result {
	if !r.opts.bench {
		return skipf("-bench=false")
	}
	if err := r.ensureLive(ctx); err != nil {
		return failf("%v", err)
	}
	r.chrome.stop() // a browser decoding video would take the 2 cores the camera shares
	r.chrome = nil
	relay, rp, err := r.firstFrames("ff-relayed", r.topo.mobile, r.opts.runs)
	if err != nil {
		return failf("%v", err)
	}
	direct, dp, err := r.firstFrames("ff-direct", r.topo.home, r.opts.runs)
	if err != nil {
		return failf("%v", err)
	}
	return passf("hello to first video frame: through TURN median %.0f ms (%s; pairs %s), direct median %.0f ms (%s; pairs %s; +key: that first frame was a keyframe)",
		median(relay), list(relay), strings.Join(rp, ","), median(direct), list(direct), strings.Join(dp, ","))
}

// cpuRates samples the CPU time of the camera and of coturn in three sub-windows of the window
// and returns the rate of each (ms of CPU per second; the kernel counts in 10 ms ticks).
func (r *rig) cpuRates(window time.Duration) (cam, turn []float64, err error) {
	read := func() (time.Duration, time.Duration, error) {
		c, err := r.cam.cpu()
		if err != nil {
			return 0, 0, err
		}
		t, err := procCPU(r.turn.pid())
		return c, t, err
	}
	pc, pt, err := read()
	if err != nil {
		return nil, nil, err
	}
	last := time.Now()
	for i := 0; i < 3; i++ {
		if !r.pause(window / 3) {
			return nil, nil, errInterrupted()
		}
		c, t, err := read()
		if err != nil {
			return nil, nil, err
		}
		secs := time.Since(last).Seconds()
		cam = append(cam, ms(c-pc)/secs)
		turn = append(turn, ms(t-pt)/secs)
		pc, pt, last = c, t, time.Now()
	}
	return cam, turn, nil
}

// procCPU is a process's utime + stime.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil // USER_HZ 100
}

// loadWith starts n viewers in ns, waits for their first frames, measures, and stops them.
func (r *rig) loadWith(name, ns string, n int) (cam, turn []float64, pairs []string, err error) {
	var vs []*viewerRun
	defer func() {
		for _, v := range vs {
			v.stop()
		}
	}()
	for i := 0; i < n; i++ {
		v, err := r.startPion(fmt.Sprintf("%s-%d", name, i), ns)
		if err != nil {
			return nil, nil, nil, err
		}
		vs = append(vs, v)
	}
	for _, v := range vs {
		if _, ok := v.waitFor(time.Now().Add(-time.Minute), 20*time.Second, named("first-frame", "video")); !ok {
			return nil, nil, nil, fmt.Errorf("%s: no first frame in 20 s; %s", v.name, v.describe())
		}
		c, _ := v.lastEvent("connected")
		pairs = append(pairs, c.str("pair"))
	}
	if !r.pause(time.Second) {
		return nil, nil, nil, errInterrupted()
	}
	cam, turn, err = r.cpuRates(r.opts.window)
	return cam, turn, pairs, err
}

// benchCPU: the camera's CPU with N more relayed viewers, then with N more direct ones, over
// its CPU with the one relayed viewer that keeps the sources open.
func (r *rig) benchCPU(_ context.Context) result {
	if !r.opts.bench {
		return skipf("-bench=false")
	}
	n := r.opts.viewers
	base, baseTurn, err := r.cpuRates(r.opts.window)
	if err != nil {
		return failf("%v", err)
	}
	relay, relayTurn, rp, err := r.loadWith("cpu-relayed", r.topo.mobile, n)
	if err != nil {
		return failf("%v", err)
	}
	if !r.pause(time.Second) {
		return failf("%v", errInterrupted())
	}
	direct, directTurn, dp, err := r.loadWith("cpu-direct", r.topo.home, n)
	if err != nil {
		return failf("%v", err)
	}
	per := func(xs []float64, b []float64) float64 { return (median(xs) - median(b)) / float64(n) }
	return passf("camera CPU ms/s (medians of 3 windows of %s): 1 relayed viewer %.1f [%s]; +%d relayed %.1f [%s] (pairs %s); +%d direct %.1f [%s] (pairs %s): "+
		"per relayed viewer %.2f ms/s, per direct %.2f ms/s; coturn %.1f / %.1f / %.1f ms/s",
		r.opts.window/3, median(base), list(base), n, median(relay), list(relay), strings.Join(rp, ","), n, median(direct), list(direct), strings.Join(dp, ","),
		per(relay, base), per(direct, base), median(baseTurn), median(relayTurn), median(directTurn))
}

// benchCut: cut and lift cycles; for each cut, the last video packet to reach each relayed
// viewer after the press (from the press's send: an upper bound of trigger to last packet).
func (r *rig) benchCut(ctx context.Context) result {
	if !r.opts.bench {
		return skipf("-bench=false")
	}
	last := map[string][]float64{}
	for i := 0; i < r.opts.cuts; i++ {
		if !r.pause(time.Second) {
			return failf("%v", errInterrupted())
		}
		cuts, _, _, err := r.cutAt(ctx)
		if err != nil {
			return failf("cut %d: %v", i+1, err)
		}
		for v, cs := range cuts {
			for _, c := range cs {
				if c.leaks > 0 {
					return failf("cut %d: %s ssrc %d: %d packets captured after the cut", i+1, v.name, c.ssrc, c.leaks)
				}
				if c.clock == 90000 {
					last[v.name] = append(last[v.name], ms(c.lastAfter))
				}
			}
		}
		began := time.Now()
		if _, _, _, err := r.cam.press(ctx); err != nil {
			return failf("lift %d: %v", i+1, err)
		}
		if r.pion != nil {
			if _, ok := r.pion.waitFor(began, 10*time.Second, named("first-frame", "video")); !ok {
				return failf("lift %d: no video at %s within 10 s", i+1, r.pion.name)
			}
		}
	}
	var parts []string
	for name, xs := range last {
		parts = append(parts, fmt.Sprintf("%s median %.1f ms, max %.1f ms [%s]", name, median(xs), slices.Max(xs), list(xs)))
	}
	slices.Sort(parts)
	return passf("%d cuts, press sent to the last video packet at the viewer (0: none after the press): %s; no packet captured after a cut",
		r.opts.cuts, strings.Join(parts, "; "))
}
