//go:build linux

package main

// What the checks share (harness): what was found, the broker, the running firmware and the
// variant of the emulated board's profile it runs; and the moves the checks make with it.

import (
	"fmt"
	"strings"
	"time"

	"github.com/lenscap/lenscap/camera/v4l2"
)

const (
	deviceID   = "hil-cam"
	brokerAddr = "127.0.0.1:1883"
	stateDir   = "/tmp/hil/state"
	lineButton = "button"
	linePriv   = "led-privacy"
	lineLive   = "led-live"
)

// harness is what the checks share: what was found, the broker, the running firmware.
type harness struct {
	opts    options
	nodes   []v4l2.Node
	camera  *v4l2.Node // vivid's capture node
	encoder *v4l2.Node // vicodec's stateful encoder
	chip    *simChip
	broker  *broker
	fw      *firmware
	variant variant            // what lenscap runs
	why     map[variant]string // why each better variant was refused
	camHeld bool               // lenscap was seen holding a /dev/video* node while video was live
	nextCmd int
}

// variant is how much of the emulated board lenscap runs on; lenscap.start tries them in order.
type variant int

const (
	variantFull    variant = iota // the generic board with the camera keys of board.yaml.tmpl
	variantGeneric                // the generic board with its default camera (v4l2:/dev/video0)
	variantSimGPIO                // simulated media, the button and LEDs on gpio-sim's lines
	variantSim                    // --board sim: simulated media and button
)

var variantNames = map[variant]string{
	variantFull:    "generic board, camera keys",
	variantGeneric: "generic board, default camera",
	variantSimGPIO: "simulated media, button and LEDs on gpio-sim",
	variantSim:     "simulated board",
}

func (v variant) board() string {
	if v <= variantGeneric {
		return "generic"
	}
	return "sim"
}

func (h *harness) cleanup() {
	if h.fw != nil {
		_ = h.fw.stop()
	}
	if h.broker != nil {
		h.broker.close()
	}
}

// needGPIO skips a check while lenscap does not take its button and LEDs from gpio-sim.
func (h *harness) needGPIO() (result, bool) {
	if h.fw == nil {
		return skipf("lenscap.start"), false
	}
	if h.variant > variantSimGPIO {
		return skipf("issue 4: the button and LEDs on gpio-sim lines from config (see board.profile)"), false
	}
	return result{}, true
}

// needCamera skips a check while lenscap does not hold the V4L2 camera.
func (h *harness) needCamera() (result, bool) {
	if r, ok := h.needGPIO(); !ok {
		return r, false
	}
	if h.variant > variantGeneric {
		return skipf("issue 5: the generic board with the V4L2 camera and encoder (see board.profile)"), false
	}
	if !h.camHeld {
		return skipf("issue 5: lenscap holding the V4L2 camera (camera.held)"), false
	}
	return result{}, true
}

// pressGap is how long the button stays released after a press before the test presses it
// again: longer than lenscap's debounce (30 ms), or the next press is a glitch of this one.
const pressGap = 100 * time.Millisecond

// press makes one press of the button: the line goes active, back after hold, and stays
// released for pressGap.
func (h *harness) press(hold time.Duration) error {
	if err := h.chip.pull(lineButton, h.opts.buttonActiveHi); err != nil {
		return err
	}
	time.Sleep(hold)
	if err := h.chip.pull(lineButton, !h.opts.buttonActiveHi); err != nil {
		return err
	}
	time.Sleep(pressGap)
	return nil
}

func (h *harness) command(video bool) (string, []byte) {
	h.nextCmd++
	id := fmt.Sprintf("hil-%d-%d", time.Now().UnixNano(), h.nextCmd)
	return id, []byte(fmt.Sprintf(`{"id":%q,"action":"privacy","video":%v}`, id, video))
}

// brief is an error without the config file's path, on one line, at most 300 bytes.
func brief(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n", " ")
	if i := strings.Index(s, "config: "); i >= 0 {
		s = s[i+len("config: "):]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
