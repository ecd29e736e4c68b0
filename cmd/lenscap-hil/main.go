//go:build linux

// Command lenscap-hil is the in-guest test of the emulated arm64 board (scripts/hil.sh, make hil).
//
// It runs as /init's child in a QEMU guest whose kernel has vivid (camera), vicodec (stateful
// M2M encoder) and gpio-sim (button and LEDs) loaded; it finds them (QUERYCAP, the gpio-sim chip
// by label, lines by name), starts lenscap with an MQTT broker on loopback and the emulated
// board's profile (board.yaml.tmpl), and runs a list of checks. It has no V4L2 or MQTT code
// of its own: the kernel-side video checks use the firmware's binding (camera/v4l2) and
// encoder (camera), and the broker is the firmware's embedded one (mqtt.EmbeddedBroker). Each check passes, fails, or is
// skipped with what it needs ("skipped: needs issue 5: ...") when the firmware lacks the
// feature yet; -strict turns those into failures once everything has landed.
//
// Output: one line per check and a verdict line the host parses:
//
//	HIL PASS  v4l2.vivid-capture        1.20s  10 frames 640x480 YUYV ...
//	HIL VERDICT: PASS pass=9 fail=0 skip=12
//
// The exit status is 0 for PASS, 1 for FAIL.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lenscap/lenscap/camera/v4l2"
)

type status string

const (
	statusPass status = "PASS"
	statusFail status = "FAIL"
	statusSkip status = "SKIP"
)

type result struct {
	status status
	detail string
}

func passf(format string, a ...any) result { return result{statusPass, fmt.Sprintf(format, a...)} }
func failf(format string, a ...any) result { return result{statusFail, fmt.Sprintf(format, a...)} }
func skipf(format string, a ...any) result {
	return result{statusSkip, "needs " + fmt.Sprintf(format, a...)}
}

// check is one line of the table. run answers its result; the harness times it.
type check struct {
	name string
	run  func(ctx context.Context, h *harness) result
}

type options struct {
	lenscap        string
	modulesFailed  string
	strict         bool
	bench          bool
	presses        int
	coded          string // the encoder's coded format's four characters
	width, height  uint32
	guestTimeout   time.Duration
	chipLabel      string
	buttonActiveHi bool
}

func main() {
	var o options
	flag.StringVar(&o.lenscap, "lenscap", "/usr/bin/lenscap", "the firmware binary")
	flag.StringVar(&o.modulesFailed, "modules-failed", "", "modules /init could not load (space separated)")
	flag.BoolVar(&o.strict, "strict", false, "a check skipped for a missing firmware feature fails")
	flag.BoolVar(&o.bench, "bench", false, "run the benchmarks (button edge to camera closed over -presses presses; vicodec fps)")
	flag.IntVar(&o.presses, "presses", 50, "presses for the button benchmark")
	flag.StringVar(&o.coded, "coded-format", "FWHT", "the encoder's coded format (FWHT for vicodec, H264 on a Pi)")
	flag.StringVar(&o.chipLabel, "chip-label", "lenscap-hil", "label of the gpio-sim bank")
	flag.BoolVar(&o.buttonActiveHi, "button-active-high", false, "the button reads 1 when pressed (default: pressed pulls the line down)")
	flag.DurationVar(&o.guestTimeout, "timeout", 80*time.Second, "all checks together")
	flag.Parse()
	o.width, o.height = 640, 480
	if len(o.coded) != 4 {
		fmt.Fprintf(os.Stderr, "lenscap-hil: -coded-format %q: want a four-character code\n", o.coded)
		os.Exit(2)
	}
	os.Exit(runChecks(o))
}

// checks is the table, in the order it runs: the kernel side first (kernel.go), then lenscap
// (lenscap_checks.go), the button and the camera under lenscap (button.go), the benchmarks
// (bench.go).
var checks = []check{
	{"kernel.modules", checkModules},
	{"v4l2.nodes", checkNodes},
	{"v4l2.find-camera", checkFindCamera},
	{"v4l2.find-encoder", checkFindEncoder},
	{"v4l2.vivid-capture", checkCapture},
	{"v4l2.vicodec-encode", checkEncode},
	{"v4l2.vivid-fatal-error", checkFatalError},
	{"gpio.find-chip", checkFindChip},
	{"gpio.sim-pull", checkSimPull},
	{"lenscap.doctor", checkDoctor},
	{"lenscap.start", checkStart},
	{"lenscap.healthz", checkHealthz},
	{"lenscap.api-state", checkAPIState},
	{"lenscap.metrics", checkMetrics},
	{"mqtt.state", checkMQTTState},
	{"mqtt.command", checkMQTTCommand},
	{"board.profile", checkProfile},
	{"camera.held", checkCameraHeld},
	{"button.engage", checkButtonEngage},
	{"button.leds", checkLEDs},
	{"button.camera-closed", checkCameraClosed},
	{"metrics.capture-stops", checkCaptureStops},
	{"button.release", checkButtonRelease},
	{"button.keyframe-first", checkKeyframeFirst},
	{"button.bounce", checkBounce},
	{"button.stalled-press", checkStalledPress},
	{"mqtt.camera-closed", checkMQTTPhysical},
	{"journal.verify", checkJournal},
	{"camera.failure", checkCameraFailure},
	{"button.latching-boot", checkLatching},
	{"power.interlock", checkPowerInterlock},
	{"power.usb-deauthorize", checkUSBDeauthorize},
	{"power.vivid-unbind", checkVividUnbind},
	{"bench.vicodec-fps", benchVicodec},
	{"bench.button-to-private", benchButtonState},
	{"bench.button-to-closed", benchButton},
	{"lenscap.stop", checkStop},
}

func runChecks(o options) int {
	ctx, cancel := context.WithTimeout(context.Background(), o.guestTimeout)
	defer cancel()
	h := &harness{opts: o}
	defer h.cleanup()
	counts := map[status]int{}
	var failed []string
	for _, c := range checks {
		res := runCheck(ctx, h, c)
		counts[res.status]++
		if res.status == statusFail {
			failed = append(failed, fmt.Sprintf("HIL FAILED %s: %s", c.name, res.detail))
		}
		if res.status == statusFail && h.fw != nil {
			printFailureLog(h.fw.log.tail(2000))
		}
	}
	if counts[statusFail] > 0 && h.fw != nil {
		fmt.Println("HIL lenscap log (last lines):")
		for _, l := range strings.Split(h.fw.log.tail(25), "\n") {
			fmt.Println("HIL | " + l)
		}
	}
	// Again at the end, where a log that keeps only its last lines still shows them.
	for _, f := range failed {
		fmt.Println(f)
	}
	verdict := statusPass
	if counts[statusFail] > 0 {
		verdict = statusFail
	}
	fmt.Printf("HIL VERDICT: %s pass=%d fail=%d skip=%d\n", verdict, counts[statusPass], counts[statusFail], counts[statusSkip])
	if verdict != statusPass {
		return 1
	}
	return 0
}

// runCheck runs one check, times it and prints its line of the table.
func runCheck(ctx context.Context, h *harness, c check) result {
	fmt.Printf("hil-run: %s\n", c.name)
	start := time.Now()
	var res result
	if ctx.Err() != nil {
		res = failf("guest timeout (%v) before this check", h.opts.guestTimeout)
	} else {
		res = c.run(ctx, h)
	}
	if res.status == statusSkip && h.opts.strict && strings.HasPrefix(res.detail, "needs issue") {
		res.status = statusFail
		res.detail = "strict: " + res.detail
	}
	fmt.Printf("HIL %-4s %-28s %7.2fs  %s\n", res.status, c.name, time.Since(start).Seconds(), res.detail)
	return res
}

// printFailureLog prints what lenscap said just before a check failed (log: its last lines),
// its MQTT client's and WebRTC stack's chatter left out; for a crash, the lines around the
// panic rather than the goroutine stacks after it.
func printFailureLog(log string) {
	var lines []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "component=paho") && !strings.Contains(l, "component=pion") {
			lines = append(lines, l)
		}
	}
	for i, l := range lines {
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") {
			lines = lines[max(0, i-10):min(len(lines), i+30)]
			break
		}
	}
	for _, l := range lines[max(0, len(lines)-40):] {
		fmt.Println("HIL | " + l)
	}
}

// codedFormat is the encoder's coded format as a V4L2 pixel format code.
func (o options) codedFormat() uint32 {
	return v4l2.Fourcc(o.coded[0], o.coded[1], o.coded[2], o.coded[3])
}
