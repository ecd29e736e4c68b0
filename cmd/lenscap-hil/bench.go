//go:build linux

package main

// The benchmarks (-bench; bench.vicodec-fps also runs, shorter, without it). Under TCG they
// are regression signals, not board figures.

import (
	"context"
	"fmt"
	"slices"
	"time"
)

func benchVicodec(_ context.Context, h *harness) result {
	if h.encoder == nil {
		return skipf("v4l2.find-encoder")
	}
	n := 20
	if h.opts.bench {
		n = 100
	}
	e, err := encodeFrames(h.encoder.Path, h.opts.codedFormat(), int(h.opts.width), int(h.opts.height), n)
	if err != nil {
		return failf("%v", err)
	}
	total := 0
	for _, s := range e.sizes {
		total += s
	}
	return passf("%.1f fps %dx%d over %d frames, %d bytes/frame, camera's M2M encoder (TCG: a regression signal, not a board figure)",
		e.fps, h.opts.width, h.opts.height, n, total/len(e.sizes))
}

// benchButtonState: button edge to /api/state private, over -presses presses (polling the API
// every millisecond, so it includes the HTTP round trip and the debounce).
func benchButtonState(ctx context.Context, h *harness) result {
	took, r, ok := pressBench(h, h.needGPIO, func() (time.Duration, error) { return pressToPrivate(ctx, h) })
	if !ok {
		return r
	}
	return passf("button edge to /api/state private over %d presses: %s (debounce and HTTP polling included; TCG)",
		len(took), percentiles(took, time.Millisecond))
}

// benchButton: button edge to the camera closed (no /dev/video* held), over -presses presses.
func benchButton(_ context.Context, h *harness) result {
	took, r, ok := pressBench(h, h.needCamera, func() (time.Duration, error) { return pressToClosed(h) })
	if !ok {
		return r
	}
	return passf("button edge to camera closed over %d presses: %s (includes debounce)", len(took), percentiles(took, 0))
}

// pressBench measures -presses presses with press, which makes one, measures it and lifts
// privacy again; it answers the latencies sorted, or the result to report instead.
func pressBench(h *harness, need func() (result, bool), press func() (time.Duration, error)) ([]time.Duration, result, bool) {
	if !h.opts.bench {
		return nil, result{statusSkip, "benchmark: LENSCAP_HIL_ARGS=-bench make hil"}, false
	}
	if r, ok := need(); !ok {
		return nil, r, false
	}
	var took []time.Duration
	for i := range h.opts.presses {
		d, err := press()
		if err != nil {
			return nil, failf("press %d: %v", i, err), false
		}
		took = append(took, d)
	}
	slices.Sort(took)
	return took, result{}, true
}

// percentiles says p50, p99 and max of sorted latencies, rounded to round (0: not rounded).
func percentiles(sorted []time.Duration, round time.Duration) string {
	p := func(q float64) time.Duration { return sorted[int(q*float64(len(sorted)-1))].Round(round) }
	return fmt.Sprintf("p50 %v p99 %v max %v", p(0.5), p(0.99), p(1))
}

// pressToPrivate presses the button and polls /api/state until video is private; then it
// lifts privacy with a second press.
func pressToPrivate(ctx context.Context, h *harness) (time.Duration, error) {
	start := time.Now()
	if err := h.chip.pull(lineButton, h.opts.buttonActiveHi); err != nil {
		return 0, err
	}
	for {
		s, err := h.fw.state(ctx)
		if err == nil && s.Video.Private {
			break
		}
		if time.Since(start) > 5*time.Second {
			return 0, fmt.Errorf("not private after 5s (%v)", err)
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	_ = h.chip.pull(lineButton, !h.opts.buttonActiveHi)
	time.Sleep(pressGap)
	_ = h.press(50 * time.Millisecond)
	if _, _, err := h.fw.waitState(ctx, 5*time.Second, func(s apiState) bool { return !s.Video.Private }); err != nil {
		return 0, fmt.Errorf("not lifted: %w", err)
	}
	return took, nil
}

// pressToClosed waits for the camera to be open, presses the button and waits until lenscap
// holds no /dev/video*; then it lifts privacy with a second press.
func pressToClosed(h *harness) (time.Duration, error) {
	if _, err := h.fw.waitHolds(true, 5*time.Second); err != nil {
		return 0, fmt.Errorf("camera not open: %w", err)
	}
	if err := h.chip.pull(lineButton, h.opts.buttonActiveHi); err != nil {
		return 0, err
	}
	took, err := h.fw.waitHolds(false, 5*time.Second)
	if err != nil {
		return 0, err
	}
	_ = h.chip.pull(lineButton, !h.opts.buttonActiveHi)
	time.Sleep(pressGap)
	_ = h.press(50 * time.Millisecond) // lift
	return took, nil
}
