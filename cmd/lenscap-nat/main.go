//go:build linux

// Command lenscap-nat is the NAT test rig (make nat, issue 12): network namespaces put the
// camera behind a home NAT and the viewers behind a symmetric mobile NAT, with coturn and
// mosquitto on a public segment, and checks that viewers reach the camera over MQTT signalling
// through TURN only, that the cut and the lift reach them, and that ICE restart recovers a
// viewer whose address changed. It prints one line per check and `NAT VERDICT: PASS` or
// `NAT VERDICT: FAIL`.
//
// Exit status: 0 pass, 1 a check failed, 2 this machine cannot run the rig (not root, no
// network namespaces, a missing tool).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the rig's flags.
type options struct {
	bin      string        // directory with lenscap and lenscapctl
	timeout  time.Duration // all checks together
	bench    bool          // the measurements (first frame, CPU)
	viewers  int           // viewers of each kind for the CPU measurement
	window   time.Duration // the CPU measurement's window
	runs     int           // first-frame runs of each kind
	cuts     int           // cut and lift cycles of the cut benchmark
	keep     bool          // keep the run's directory (logs, configuration)
	chromium string        // the Chromium executable ("" : chromiumtest's default)
	until    string        // the last check to run ("": all)
	hold     time.Duration // keep the rig up this long after the checks, to look at it by hand
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == chromiumSubcommand {
		os.Exit(runChromiumViewer(os.Args[2:]))
	}
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the lenscap and lenscapctl binaries to test")
	flag.DurationVar(&o.timeout, "timeout", 170*time.Second, "all checks together")
	flag.BoolVar(&o.bench, "bench", true, "measure first frame (TURN vs direct) and the camera's CPU per viewer")
	flag.IntVar(&o.viewers, "cpu-viewers", 6, "viewers of each kind for the CPU measurement")
	flag.DurationVar(&o.window, "cpu-window", 15*time.Second, "the CPU measurement's window (three sub-windows)")
	flag.IntVar(&o.runs, "first-frame-runs", 3, "first-frame measurements of each kind")
	flag.IntVar(&o.cuts, "cuts", 5, "cut and lift cycles of the cut benchmark")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's directory (logs, configuration) and print it")
	flag.StringVar(&o.chromium, "chromium", "", "the Chromium executable (default: $CHROMIUM, then /usr/bin/chromium)")
	flag.StringVar(&o.until, "until", "", "run the checks up to this one only (to look at a failure; with -keep)")
	flag.DurationVar(&o.hold, "hold", 0, "keep the rig up this long after the checks (Ctrl-C ends it), to look at it by hand")
	flag.Parse()
	os.Exit(run(o))
}

// run sets up the rig, runs the checks, tears everything down (also on SIGINT and SIGTERM)
// and returns the exit status.
func run(o options) int {
	if why := cannotRun(); why != "" {
		fmt.Printf("NAT CANNOT RUN: %s\n", why)
		return 2
	}
	removeStale()
	// A reader of the output that went away (a pipe closed by Ctrl-C) must not kill the rig
	// before it cleans up: writes then fail instead.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", runDirPrefix, os.Getpid()))
	if err != nil {
		fmt.Printf("NAT CANNOT RUN: %v\n", err)
		return 2
	}
	r := &rig{opts: o, topo: newTopology(), dir: dir, start: time.Now()}
	defer func() {
		r.teardown()
		if o.keep {
			fmt.Printf("nat: run directory kept: %s\n", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}()
	rc := r.runChecks(ctx)
	if o.hold > 0 {
		fmt.Printf("nat: holding the rig for %s (Ctrl-C ends it): ip netns exec %s ...\n", o.hold, r.topo.home)
		hctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		select {
		case <-hctx.Done():
		case <-time.After(o.hold):
		}
	}
	return rc
}

// cannotRun says why this machine cannot run the rig, or "".
func cannotRun() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces, nftables): run as root"
	}
	var missing []string
	for _, t := range []string{"ip", "nft", "conntrack", "turnserver", "mosquitto", "mosquitto_passwd"} {
		if _, err := lookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return "missing " + strings.Join(missing, ", ") + " (scripts/install-deps.sh installs them)"
	}
	probe := fmt.Sprintf("%sprobe-%d", nsPrefix, os.Getpid())
	if err := sh(context.Background(), "ip", "netns", "add", probe); err != nil {
		return fmt.Sprintf("cannot make a network namespace: %v", err)
	}
	_ = delNS(probe)
	return ""
}

// lookPath finds a tool on PATH or in the sbin directories (root's tools).
func lookPath(name string) (string, error) {
	for _, d := range append(filepath.SplitList(os.Getenv("PATH")), "/usr/sbin", "/sbin") {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}
