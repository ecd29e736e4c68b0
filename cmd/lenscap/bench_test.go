package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/rtc/rtctest"
)

// process is the lenscap binary running as its own process, as on a camera.
type process struct {
	cmd  *exec.Cmd
	url  string
	Addr string
}

func buildBinary(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "lenscap")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var listenLine = regexp.MustCompile(`listening on http://([0-9.:]+)`)

func startProcess(tb testing.TB, bin string, args ...string) *process {
	tb.Helper()
	cmd := exec.Command(bin, append([]string{"--board", "sim", "--listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--state-dir", tb.TempDir()}, args...)...)
	cmd.Env = append(os.Environ(), "LENSCAP_CONFIG=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			tb.Error("lenscap did not exit on SIGINT")
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	p := &process{cmd: cmd}
	select {
	case p.Addr = <-addr:
	case <-time.After(10 * time.Second):
		tb.Fatal("lenscap did not log its address")
	}
	p.url = "http://" + p.Addr
	return p
}

// rss is the process's resident set size in bytes, from /proc.
func (p *process) rss(tb testing.TB) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// BenchmarkResidentMemory4Viewers runs lenscap as its own process with four pion viewers
// receiving 720p30 H.264 (2.5 Mbit/s, made by scripts/make-testclip.sh) for
// LENSCAP_BENCH_SECONDS (default 60) and reports its resident set size.
func BenchmarkResidentMemory4Viewers(b *testing.B) {
	secs := 60
	if s, err := strconv.Atoi(os.Getenv("LENSCAP_BENCH_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	bin := buildBinary(b)
	clip := filepath.Join(b.TempDir(), "720p.h264")
	gen := exec.Command("sh", "../../scripts/make-testclip.sh")
	gen.Env = append(os.Environ(), "OUT="+clip, "SIZE=1280x720", "BITRATE=2500k")
	if out, err := gen.CombinedOutput(); err != nil {
		b.Fatalf("make the 720p clip: %v\n%s", err, out)
	}
	for range b.N {
		p := startProcess(b, bin, "--sim-clip", clip)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+30)*time.Second)
		defer cancel()
		var vs []*rtctest.Viewer
		for range 4 {
			v, err := rtctest.Dial(ctx, "ws://"+p.Addr+"/ws", rtctest.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer v.Close()
			vs = append(vs, v)
		}
		start := time.Now()
		idle := p.rss(b)
		time.Sleep(time.Duration(secs) * time.Second)
		for _, v := range vs {
			if len(v.Packets()) == 0 {
				b.Fatal("a viewer received nothing")
			}
			n := 0
			for _, pk := range v.Packets() {
				if pk.Kind == "video" && pk.Arrival.After(start) {
					n++
				}
			}
			if n == 0 {
				b.Fatal("a viewer stopped receiving video")
			}
		}
		b.ReportMetric(float64(idle)/(1<<20), "rss-at-connect-MB")
		b.ReportMetric(float64(p.rss(b))/(1<<20), "rss-MB")
	}
}

// BenchmarkStartToFirstFrame measures process start to the first video packet at a viewer
// that connects as soon as the daemon listens.
func BenchmarkStartToFirstFrame(b *testing.B) {
	bin := buildBinary(b)
	var worst time.Duration
	var total time.Duration
	for range b.N {
		start := time.Now()
		p := startProcess(b, bin)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		v, err := rtctest.Dial(ctx, "ws://"+p.Addr+"/ws", rtctest.Options{})
		if err != nil {
			b.Fatal(err)
		}
		err = v.WaitFor(ctx, "first video packet", func(v *rtctest.Viewer) bool {
			for _, pk := range v.Packets() {
				if pk.Kind == "video" {
					return true
				}
			}
			return false
		})
		if err != nil {
			b.Fatal(err)
		}
		var first time.Time
		for _, pk := range v.Packets() {
			if pk.Kind == "video" {
				first = pk.Arrival
				break
			}
		}
		d := first.Sub(start)
		total += d
		worst = max(worst, d)
		v.Close()
		cancel()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "start-to-first-frame-ms")
	b.ReportMetric(float64(worst.Milliseconds()), "worst-ms")
}

// BenchmarkOnDemandFirstFrame measures, with capture: on_demand and every source closed, the time
// from a viewer's WebSocket dial to its first video packet: the cold open (the camera opened,
// the tracks added, a renegotiation, a keyframe).
func BenchmarkOnDemandFirstFrame(b *testing.B) {
	d := startDaemon(b, b.TempDir(), "--capture", "on_demand", "--capture-linger", "50ms",
		"--rate-api", "1000/s,1000", "--rate-ws", "1000/s,1000") // the benchmark is not a flood
	var times []time.Duration
	for range b.N {
		d.waitState(b, "the sources closed", func(st apiState) bool { return st.Idle && !st.Video.Live })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		v, err := rtctest.Dial(ctx, "ws"+strings.TrimPrefix(d.url, "http")+"/ws", rtctest.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
		v.Close()
		cancel()
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "first-frame-p50-ms")
	b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "first-frame-max-ms")
}
