//go:build linux

package main

// The kernel-side checks: the modules /init loaded, vivid and vicodec through the firmware's
// V4L2 code (v4l2.go), the gpio-sim chip (gpio.go). They run before lenscap starts.

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

func checkModules(_ context.Context, h *harness) result {
	if f := strings.TrimSpace(h.opts.modulesFailed); f != "" {
		return failf("insmod failed for: %s (see the console)", f)
	}
	return passf("configfs gpio-sim vivid vicodec and their dependencies loaded")
}

func checkNodes(_ context.Context, h *harness) result {
	nodes, err := videoNodes()
	h.nodes = nodes
	if err != nil {
		return failf("%v", err)
	}
	var s []string
	for _, n := range nodes {
		s = append(s, fmt.Sprintf("%s=%s", filepath.Base(n.Path), n.Driver()))
	}
	return passf("%s", strings.Join(s, " "))
}

func checkFindCamera(_ context.Context, h *harness) result {
	n, ok := findCapture(h.nodes, "vivid")
	if !ok {
		return failf("no vivid capture node among %d nodes", len(h.nodes))
	}
	h.camera = &n
	formats := fourccs(n.Input)
	if len(formats) > 6 {
		formats = append(formats[:6:6], fmt.Sprintf("... (%d)", len(n.Input)))
	}
	return passf("%s card %q caps %#x formats %s", n.Path, n.Card(), n.Caps, strings.Join(formats, ","))
}

func checkFindEncoder(_ context.Context, h *harness) result {
	n, ok := findEncoder(h.nodes, h.opts.codedFormat())
	if !ok {
		return failf("no memory-to-memory node codes %s", h.opts.coded)
	}
	h.encoder = &n
	raw := fourccs(n.Output)
	return passf("%s driver %s: %d raw formats (%s...) -> %s", n.Path, n.Driver(), len(raw),
		strings.Join(raw[:min(3, len(raw))], ","), strings.Join(fourccs(n.Input), ","))
}

func checkCapture(_ context.Context, h *harness) result {
	if h.camera == nil {
		return skipf("v4l2.find-camera")
	}
	detail, err := captureFrames(h.camera.Path, h.opts.width, h.opts.height, 10)
	if err != nil {
		return failf("%s: %v", h.camera.Path, err)
	}
	return passf("%s (camera/v4l2, MMAP)", detail)
}

func checkEncode(_ context.Context, h *harness) result {
	if h.encoder == nil {
		return skipf("v4l2.find-encoder")
	}
	e, err := encodeFrames(h.encoder.Path, h.opts.codedFormat(), int(h.opts.width), int(h.opts.height), 1)
	if err != nil {
		return failf("%s: %v", h.encoder.Path, err)
	}
	if e.sizes[0] == 0 || !e.firstKey {
		return failf("first coded frame: %d bytes, keyframe %v", e.sizes[0], e.firstKey)
	}
	return passf("%dx%d YU12 -> %s keyframe, %d bytes (camera's M2M encoder: %s)",
		h.opts.width, h.opts.height, h.opts.coded, e.sizes[0], e.desc)
}

// checkFatalError proves the camera.failure check's tool on the kernel side: with vivid's
// "Inject Fatal Streaming Error", a streaming capture's next VIDIOC_DQBUF fails.
func checkFatalError(_ context.Context, h *harness) result {
	if h.camera == nil {
		return skipf("v4l2.find-camera")
	}
	err := captureThenFail(h.camera.Path, h.opts.width, h.opts.height)
	if err != nil {
		return failf("%v", err)
	}
	return passf("%q: VIDIOC_DQBUF fails after it", vividFatalError)
}

func checkFindChip(_ context.Context, h *harness) result {
	c, err := findSimChip(h.opts.chipLabel)
	if err != nil {
		return failf("%v", err)
	}
	for _, l := range []string{lineButton, linePriv, lineLive} {
		if _, ok := c.Lines[l]; !ok {
			return failf("%s (%s) has no line %q: %v", c.Name, c.Label, l, c.Lines)
		}
	}
	h.chip = &c
	return passf("%s label %s lines %v", c.Name, c.Label, c.Lines)
}

func checkSimPull(_ context.Context, h *harness) result {
	if h.chip == nil {
		return skipf("gpio.find-chip")
	}
	for _, up := range []bool{false, true} {
		if err := h.chip.pull(lineButton, up); err != nil {
			return failf("pull %s: %v", lineButton, err)
		}
		want := 0
		if up {
			want = 1
		}
		if _, err := h.chip.waitValue(lineButton, want, time.Second); err != nil {
			return failf("%v", err)
		}
	}
	// Leave the button released.
	if err := h.chip.pull(lineButton, !h.opts.buttonActiveHi); err != nil {
		return failf("%v", err)
	}
	return passf("%s: pull-down reads 0, pull-up reads 1 (released = pull-%s)", lineButton, map[bool]string{true: "down", false: "up"}[h.opts.buttonActiveHi])
}
