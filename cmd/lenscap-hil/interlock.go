//go:build linux

package main

// The power interlock end to end: lenscap with camera_power_pin on the gpio-sim line
// cam-power, whose simulated load switch unbinds vivid while the line is low.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// checkPowerInterlock presses the button with the interlock wired: the line goes low, the
// camera's node goes away and lenscap reports it powered off; a press brings it back and opens
// it. Then, with the switch stuck on (the simulator stopped), a cut that cannot be confirmed:
// the cut stands, the state says so and the privacy LED blinks, until the power goes after all.
func checkPowerInterlock(ctx context.Context, h *harness) result {
	if r, ok := h.needCamera(); !ok {
		return r
	}
	if err := h.fw.stop(); err != nil {
		return failf("%v", err)
	}
	defer h.restartStandard()
	stopSim, err := h.simulateCameraPower(ctx)
	if err != nil {
		return failf("%v", err)
	}
	fw, err := h.startProfile(h.variant, profile{cameraPower: true})
	if err != nil {
		_ = stopSim()
		return failf("lenscap with camera_power_pin: %s", brief(err))
	}
	h.fw = fw
	detail, res := powerCycle(ctx, h)
	if res != nil {
		_ = stopSim()
		return *res
	}
	if err := stopSim(); err != nil { // the switch is stuck on from now
		return failf("the simulated switch: %v", err)
	}
	unconfirmed, res := powerStuck(ctx, h)
	if res != nil {
		return *res
	}
	return passf("%s; %s", detail, unconfirmed)
}

// powerCycle is a cut and a lift with a working switch.
func powerCycle(ctx context.Context, h *harness) (string, *result) {
	fail := func(format string, args ...any) (string, *result) { r := failf(format, args...); return "", &r }
	if _, _, err := h.fw.waitState(ctx, 5*time.Second, func(s apiState) bool { return s.Video.Powered != nil && *s.Video.Powered && !s.Video.Private }); err != nil {
		return fail("not live and powered at start: %v", err)
	}
	if _, err := h.fw.waitHolds(true, 5*time.Second); err != nil {
		return fail("camera not opened: %v", err)
	}
	edge := time.Now()
	if err := h.press(50 * time.Millisecond); err != nil {
		return fail("%v", err)
	}
	if _, _, err := h.fw.waitState(ctx, 5*time.Second, func(s apiState) bool { return s.Video.Private && s.Video.Powered != nil && !*s.Video.Powered }); err != nil {
		return fail("after a press: %v", err)
	}
	confirmed := time.Since(edge)
	if v, err := h.chip.value(lineCamPower); err != nil || v != 0 {
		return fail("%s reads %d (%v) while powered off", lineCamPower, v, err)
	}
	if _, err := os.Stat("/dev/video0"); !os.IsNotExist(err) {
		return fail("/dev/video0 still there after the power went: %v", err)
	}
	sum, _ := h.fw.metric(ctx, `lenscap_power_switch_seconds_sum{kind="video",op="off"}`)
	if err := h.press(50 * time.Millisecond); err != nil {
		return fail("%v", err)
	}
	if _, _, err := h.fw.waitState(ctx, 5*time.Second, func(s apiState) bool { return !s.Video.Private && s.Video.Powered != nil && *s.Video.Powered }); err != nil {
		return fail("after the second press: %v", err)
	}
	if _, err := h.fw.waitHolds(true, 5*time.Second); err != nil {
		return fail("camera not reopened after power on: %v", err)
	}
	_, journal, err := h.fw.get(ctx, "/api/journal?since=0")
	if err != nil || !strings.Contains(string(journal), `"event":"power"`) || !strings.Contains(string(journal), "off confirmed") {
		return fail("journal has no power entry: %v %.300s", err, journal)
	}
	return fmt.Sprintf("press to power off confirmed %.0fms (edge to state; lenscap's own: cut trigger to absence read back %.0fms), node gone, camera reopened after power on, journal records it",
		confirmed.Seconds()*1000, sum*1000), nil
}

// powerStuck is a cut whose power off cannot be confirmed (vivid stays bound).
func powerStuck(ctx context.Context, h *harness) (string, *result) {
	fail := func(format string, args ...any) (string, *result) { r := failf(format, args...); return "", &r }
	if err := h.press(50 * time.Millisecond); err != nil {
		return fail("%v", err)
	}
	s, _, err := h.fw.waitState(ctx, 5*time.Second, func(s apiState) bool { return s.Video.Private && s.Video.PowerError != "" })
	if err != nil {
		return fail("a cut with the switch stuck on: %v", err)
	}
	if s.Video.Powered == nil || !*s.Video.Powered {
		return fail("unconfirmed power off reported as off: %+v", s.Video)
	}
	if _, err := h.fw.waitHolds(false, 3*time.Second); err != nil {
		return fail("the cut did not stand: %v", err)
	}
	levels := map[int]bool{}
	for range 12 {
		if v, err := h.chip.value(linePriv); err == nil {
			levels[v] = true
		}
		time.Sleep(60 * time.Millisecond)
	}
	if !levels[0] || !levels[1] {
		return fail("privacy LED not blinking while the power off is unconfirmed: saw %v", levels)
	}
	// Lift again, so that the checks after this one start live.
	if err := h.press(50 * time.Millisecond); err != nil {
		return fail("%v", err)
	}
	if _, _, err := h.fw.waitState(ctx, 5*time.Second, func(s apiState) bool { return !s.Video.Private && s.Video.PowerError == "" }); err != nil {
		return fail("a lift after the unconfirmed cut: %v", err)
	}
	return fmt.Sprintf("switch stuck on: cut stands, power_error %q, privacy LED blinking", s.Video.PowerError), nil
}

// restartStandard stops whatever lenscap runs and starts the standard profile again, for the
// checks after this one.
func (h *harness) restartStandard() {
	if h.fw != nil {
		_ = h.fw.stop()
	}
	_ = h.chip.pull(lineButton, !h.opts.buttonActiveHi)
	if fw, err := h.startProfile(h.variant, profile{}); err == nil {
		h.fw = fw
	}
}
