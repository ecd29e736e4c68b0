//go:build linux

package main

// The checks of what lenscap does with the board's hardware: the button and its LEDs on
// gpio-sim lines, the camera held and released (/proc/<pid>/fd), capture and encoding
// stopping while private, an MQTT command's physical effect, an injected camera failure, a
// latching switch on at boot.

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

func checkCameraHeld(ctx context.Context, h *harness) result {
	if r, ok := h.needGPIO(); !ok {
		return r
	}
	if h.variant > variantGeneric {
		return skipf("issue 5: the generic board with the V4L2 camera and encoder (see board.profile)")
	}
	if _, _, err := h.fw.waitState(ctx, 5*time.Second, func(s apiState) bool { return !s.Video.Private }); err != nil {
		return failf("video is not live: %v", err)
	}
	took, err := h.fw.waitHolds(true, 5*time.Second)
	if err != nil {
		return skipf("issue 5: lenscap opening the V4L2 camera (%v)", err)
	}
	h.camHeld = true
	return passf("holds %v (seen after %.0fms)", holders(h.fw.pid(), "/dev/video"), took.Seconds()*1000)
}

func checkButtonEngage(ctx context.Context, h *harness) result {
	if r, ok := h.needGPIO(); !ok {
		return r
	}
	edge := time.Now()
	if err := h.press(50 * time.Millisecond); err != nil {
		return failf("%v", err)
	}
	s, _, err := h.fw.waitState(ctx, 5*time.Second, func(s apiState) bool {
		return s.Video.Private && s.Audio.Private && s.Video.By == "button"
	})
	if err != nil {
		return failf("after a press: %v", err)
	}
	if _, err := h.broker.waitMessage("lenscap/"+deviceID+"/state", 5*time.Second, func(m map[string]any) bool {
		v, _ := m["video"].(map[string]any)
		return v != nil && v["private"] == true && v["by"] == "button"
	}); err != nil {
		return failf("/api/state private by button, but MQTT: %v", err)
	}
	return passf("/api/state and MQTT state: video and audio private by %s (seen %.0fms after the edge; the press lasts %v)",
		s.Video.By, time.Since(edge).Seconds()*1000, 50*time.Millisecond+pressGap)
}

func checkLEDs(_ context.Context, h *harness) result {
	if r, ok := h.needGPIO(); !ok {
		return r
	}
	if _, err := h.chip.waitValue(linePriv, 1, 2*time.Second); err != nil {
		return failf("privacy LED: %v", err)
	}
	if _, err := h.chip.waitValue(lineLive, 0, 2*time.Second); err != nil {
		return failf("live LED: %v", err)
	}
	return passf("%s=1 %s=0", linePriv, lineLive)
}

func checkCameraClosed(_ context.Context, h *harness) result {
	if r, ok := h.needCamera(); !ok {
		return r
	}
	took, err := h.fw.waitHolds(false, 3*time.Second)
	if err != nil {
		return failf("camera still open after the press: %v", err)
	}
	return passf("no /dev/video* held (within %.1fms of the state showing private)", took.Seconds()*1000)
}

func checkCaptureStops(ctx context.Context, h *harness) result {
	if r, ok := h.needCamera(); !ok {
		return r
	}
	a, err := h.fw.metric(ctx, `lenscap_frames_captured_total{kind="video"}`)
	if err != nil {
		return skipf("the lead: frames captured in /metrics (%v)", err)
	}
	time.Sleep(500 * time.Millisecond)
	b, _ := h.fw.metric(ctx, `lenscap_frames_captured_total{kind="video"}`)
	ea, _ := h.fw.metric(ctx, `lenscap_frames_encoded_total{kind="video"}`)
	time.Sleep(500 * time.Millisecond)
	eb, _ := h.fw.metric(ctx, `lenscap_frames_encoded_total{kind="video"}`)
	if a != b || ea != eb {
		return failf("while private: captured %v -> %v, encoded %v -> %v", a, b, ea, eb)
	}
	return passf("captured stays %v, encoded stays %v over 0.5s", a, ea)
}

func checkButtonRelease(ctx context.Context, h *harness) result {
	if r, ok := h.needGPIO(); !ok {
		return r
	}
	edge := time.Now()
	if err := h.press(50 * time.Millisecond); err != nil {
		return failf("%v", err)
	}
	_, _, err := h.fw.waitState(ctx, 5*time.Second, func(s apiState) bool { return !s.Video.Private && !s.Audio.Private })
	if err != nil {
		return failf("after the second press: %v", err)
	}
	if _, err := h.chip.waitValue(linePriv, 0, 2*time.Second); err != nil {
		return failf("privacy LED: %v", err)
	}
	detail := fmt.Sprintf("live again (seen %.0fms after the edge), %s=0", time.Since(edge).Seconds()*1000, linePriv)
	if h.camHeld {
		t, err := h.fw.waitHolds(true, 5*time.Second)
		if err != nil {
			return failf("camera not reopened: %v", err)
		}
		detail += fmt.Sprintf(", camera reopened %.0fms later", t.Seconds()*1000)
	}
	return passf("%s", detail)
}

func checkKeyframeFirst(ctx context.Context, h *harness) result {
	if r, ok := h.needCamera(); !ok {
		return r
	}
	// The camera was closed and reopened by the presses before: every stream it started
	// must have begun with a keyframe (an intra FWHT frame here, an IDR on a Pi), so encoding
	// resumes decodable. Wait for the latest stream's first frame, then compare.
	const (
		opens    = `lenscap_source_opens_total{kind="video"}`
		keyFirst = `lenscap_streams_keyframe_first_total{kind="video"}`
	)
	deadline := time.Now().Add(5 * time.Second)
	for {
		o, err1 := h.fw.metric(ctx, opens)
		k, err2 := h.fw.metric(ctx, keyFirst)
		if err1 != nil || err2 != nil {
			return failf("metrics: %v %v", err1, err2)
		}
		if o >= 2 && k == o {
			return passf("all %v streams of the camera began with a keyframe", o)
		}
		if time.Now().After(deadline) {
			return failf("%v streams opened, %v began with a keyframe", o, k)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func checkBounce(ctx context.Context, h *harness) result {
	if r, ok := h.needGPIO(); !ok {
		return r
	}
	before, err := h.fw.state(ctx)
	if err != nil || before.Video.Private {
		return failf("not live before the bounce: %v %+v", err, before.Video)
	}
	// Six edges within ~6 ms, ending pressed, then released after the debounce window.
	for i := 0; i < 3; i++ {
		_ = h.chip.pull(lineButton, h.opts.buttonActiveHi)
		time.Sleep(time.Millisecond)
		_ = h.chip.pull(lineButton, !h.opts.buttonActiveHi)
		time.Sleep(time.Millisecond)
	}
	_ = h.chip.pull(lineButton, h.opts.buttonActiveHi)
	time.Sleep(100 * time.Millisecond)
	_ = h.chip.pull(lineButton, !h.opts.buttonActiveHi)
	time.Sleep(pressGap)
	s, _, err := h.fw.waitState(ctx, 3*time.Second, func(s apiState) bool { return s.Video.Private })
	if err != nil {
		return failf("a bouncing press did not engage privacy: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if s, err = h.fw.state(ctx); err != nil || !s.Video.Private {
		return failf("a bouncing press toggled more than once: %+v %v", s.Video, err)
	}
	// Back to live for the next checks.
	_ = h.press(50 * time.Millisecond)
	if _, _, err := h.fw.waitState(ctx, 3*time.Second, func(s apiState) bool { return !s.Video.Private }); err != nil {
		return failf("a clean press after the bounce did not lift: %v", err)
	}
	return passf("7 edges in ~7ms counted as one press")
}

// checkStalledPress presses while lenscap cannot run (SIGSTOP: a board too busy to schedule
// the button's goroutine): the line is long released when it reads the edges, and the press
// must still count, from the kernel's record of each edge's direction and time.
func checkStalledPress(ctx context.Context, h *harness) result {
	if r, ok := h.needGPIO(); !ok {
		return r
	}
	if s, err := h.fw.state(ctx); err != nil || s.Video.Private {
		return failf("not live before the press: %v %+v", err, s.Video)
	}
	p := h.fw.cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return failf("SIGSTOP: %v", err)
	}
	err := h.press(50 * time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	if cerr := p.Signal(syscall.SIGCONT); cerr != nil {
		return failf("SIGCONT: %v", cerr)
	}
	if err != nil {
		return failf("%v", err)
	}
	resumed := time.Now()
	if _, _, err := h.fw.waitState(ctx, 3*time.Second, func(s apiState) bool { return s.Video.Private && s.Video.By == "button" }); err != nil {
		return failf("a 50ms press while lenscap was stopped for 500ms was lost: %v", err)
	}
	took := time.Since(resumed)
	_ = h.press(50 * time.Millisecond)
	if _, _, err := h.fw.waitState(ctx, 3*time.Second, func(s apiState) bool { return !s.Video.Private }); err != nil {
		return failf("a press after the stalled one did not lift: %v", err)
	}
	return passf("a 50ms press while lenscap was stopped counted: private %.0fms after SIGCONT", took.Seconds()*1000)
}

func checkMQTTPhysical(ctx context.Context, h *harness) result {
	if r, ok := h.needCamera(); !ok {
		return r
	}
	id, cmd := h.command(true)
	start := time.Now()
	if err := h.broker.publish("lenscap/"+deviceID+"/cmd", cmd); err != nil {
		return failf("%v", err)
	}
	if _, err := h.fw.waitHolds(false, 5*time.Second); err != nil {
		return failf("camera still open after an MQTT privacy command: %v", err)
	}
	closed := time.Since(start)
	if _, err := h.chip.waitValue(linePriv, 1, 2*time.Second); err != nil {
		return failf("privacy LED: %v", err)
	}
	_, lift := h.command(false)
	_ = h.broker.publish("lenscap/"+deviceID+"/cmd", lift)
	if _, err := h.fw.waitHolds(true, 5*time.Second); err != nil {
		return failf("camera not reopened after the MQTT lift: %v", err)
	}
	return passf("command %s: camera closed %.0fms after publishing, privacy LED on", id, closed.Seconds()*1000)
}

func checkCameraFailure(ctx context.Context, h *harness) result {
	if r, ok := h.needCamera(); !ok {
		return r
	}
	// vivid ignores the injection unless the queue is streaming: wait for frames to flow (a
	// lift by the previous check may still be starting the camera).
	const encoded = `lenscap_frames_encoded_total{kind="video"}`
	first, _ := h.fw.metric(ctx, encoded)
	deadline := time.Now().Add(5 * time.Second)
	for n, _ := h.fw.metric(ctx, encoded); n <= first+1; n, _ = h.fw.metric(ctx, encoded) {
		if time.Now().After(deadline) {
			return failf("no frames flowing before the injection: %v encoded", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// vivid's error injection: the capture queue fails for good (vb2_queue_error), as a
	// vanished camera's would; v4l2.vivid-fatal-error proves it on the kernel side.
	if err := vividControl(h.camera.Path, vividFatalError, 1); err != nil {
		return failf("vivid error injection: %v", err)
	}
	s, took, err := h.fw.waitState(ctx, 5*time.Second, func(s apiState) bool {
		return s.Video.Error != "" || (s.Video.Live != nil && !*s.Video.Live)
	})
	if err != nil {
		a, _ := h.fw.metric(ctx, `lenscap_frames_encoded_total{kind="video"}`)
		time.Sleep(time.Second)
		b, _ := h.fw.metric(ctx, `lenscap_frames_encoded_total{kind="video"}`)
		return failf("an injected fatal streaming error was not reported: %v (frames encoded %v then %v a second later)", err, a, b)
	}
	return passf("reported after %.0fms: live=%v error=%q", took.Seconds()*1000, s.Video.Live != nil && *s.Video.Live, s.Video.Error)
}

func checkLatching(ctx context.Context, h *harness) result {
	if r, ok := h.needGPIO(); !ok {
		return r
	}
	if err := h.fw.stop(); err != nil {
		return failf("%v", err)
	}
	// The switch is on (private) while lenscap boots.
	_ = h.chip.pull(lineButton, h.opts.buttonActiveHi)
	fw, err := h.startProfile(h.variant, profile{latching: true})
	if err != nil {
		_ = h.chip.pull(lineButton, !h.opts.buttonActiveHi)
		if fw, err2 := h.startProfile(h.variant, profile{}); err2 == nil {
			h.fw = fw
		}
		return skipf("issue 4: a latching switch in the board config (%v)", brief(err))
	}
	h.fw = fw
	s, _, err := fw.waitState(ctx, 5*time.Second, func(s apiState) bool { return s.Video.Private && s.Audio.Private })
	if err != nil {
		return failf("latching switch on at boot: %v", err)
	}
	if _, err := h.chip.waitValue(linePriv, 1, 2*time.Second); err != nil {
		return failf("switch on at boot: privacy LED: %v", err)
	}
	detail := fmt.Sprintf("booted private by %s, privacy LED on", s.Video.By)
	if h.camHeld {
		time.Sleep(300 * time.Millisecond)
		if held := holders(fw.pid(), "/dev/video"); len(held) > 0 {
			return failf("switch on at boot but lenscap holds %v", held)
		}
		detail += ", camera never opened"
	}
	_ = h.chip.pull(lineButton, !h.opts.buttonActiveHi)
	if _, _, err := fw.waitState(ctx, 5*time.Second, func(s apiState) bool { return !s.Video.Private && !s.Audio.Private }); err != nil {
		return failf("switch off after boot: %v", err)
	}
	detail += "; switch off lifted it"
	if h.camHeld {
		if _, err := fw.waitHolds(true, 5*time.Second); err != nil {
			return failf("switch off did not open the camera: %v", err)
		}
		detail += " and opened the camera"
	}
	return passf("%s", detail)
}
