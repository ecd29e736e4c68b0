// Command lenscap-hil is the in-guest test of the emulated arm64 board (scripts/hil.sh, make hil).
//
// It runs as /init's child in a QEMU guest whose kernel has vivid (camera), vicodec (stateful
// M2M encoder) and gpio-sim (button and LEDs) loaded; it finds them (QUERYCAP, the gpio-sim chip
// by label, lines by name), starts lenscap with an MQTT broker on loopback and the emulated
// board's profile (board.yaml.tmpl), and runs a list of checks. Each check passes, fails, or is
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
	coded          string
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
	os.Exit(runChecks(o))
}

func runChecks(o options) int {
	ctx, cancel := context.WithTimeout(context.Background(), o.guestTimeout)
	defer cancel()
	h := &harness{opts: o}
	defer h.cleanup()
	counts := map[status]int{}
	for _, c := range checks {
		fmt.Printf("hil-run: %s\n", c.name)
		start := time.Now()
		var res result
		if ctx.Err() != nil {
			res = failf("guest timeout (%v) before this check", o.guestTimeout)
		} else {
			res = c.run(ctx, h)
		}
		if res.status == statusSkip && o.strict && strings.HasPrefix(res.detail, "needs issue") {
			res.status = statusFail
			res.detail = "strict: " + res.detail
		}
		took := time.Since(start)
		counts[res.status]++
		fmt.Printf("HIL %-4s %-28s %7.2fs  %s\n", res.status, c.name, took.Seconds(), res.detail)
		if res.status == statusFail && h.fw != nil {
			// What lenscap said just then (its MQTT client's chatter left out).
			var lines []string
			for _, l := range strings.Split(h.fw.log.tail(2000), "\n") {
				if !strings.Contains(l, "component=paho") && !strings.Contains(l, "component=pion") {
					lines = append(lines, l)
				}
			}
			// A crash: its first lines say why; the rest is goroutine stacks.
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
	}
	if counts[statusFail] > 0 && h.fw != nil {
		fmt.Println("HIL lenscap log (last lines):")
		for _, l := range strings.Split(h.fw.log.tail(25), "\n") {
			fmt.Println("HIL | " + l)
		}
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
