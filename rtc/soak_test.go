//go:build soak

package rtc_test

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/lenscap/lenscap/rtc/rtctest"
)

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// settle waits for goroutines and file descriptors to come back to at most base+slack.
func settle(t *testing.T, what string, g0, fd0 int) (heap uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if runtime.NumGoroutine() <= g0+2 && openFDs(t) <= fd0+2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("%s: goroutines %d (baseline %d), fds %d (baseline %d), heap %.1f MB",
		what, runtime.NumGoroutine(), g0, openFDs(t), fd0, float64(ms.HeapAlloc)/(1<<20))
	if g := runtime.NumGoroutine(); g > g0+2 {
		t.Errorf("%s: %d goroutines, baseline %d", what, g, g0)
	}
	if fd := openFDs(t); fd > fd0+2 {
		t.Errorf("%s: %d file descriptors, baseline %d", what, fd, fd0)
	}
	return ms.HeapAlloc
}

func TestSoakThousandPrivacyCycles(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 30*time.Minute)
	v := r.dial(ctx, rtctest.Options{Keep: 20})
	must(t, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
	time.Sleep(200 * time.Millisecond)
	g0, fd0 := runtime.NumGoroutine(), openFDs(t)
	var heap0 uint64
	for i := range 1000 {
		n := v.OfferCount()
		_, err := r.dev.PressButton(ctx, time.Now())
		must(t, err)
		must(t, v.WaitFor(ctx, "cut", offerWith(n, "inactive", "inactive")))
		n = v.OfferCount()
		lift := time.Now()
		_, err = r.dev.PressButton(ctx, lift)
		must(t, err)
		must(t, v.WaitFor(ctx, "lift", offerWith(n, "sendonly", "sendonly")))
		must(t, v.WaitFor(ctx, "video", rtctest.Receiving("video", lift)))
		if i == 0 {
			heap0 = settle(t, "privacy cycles", g0, fd0)
		}
		if i%250 == 249 {
			// pion's SRTP contexts keep ~100 bytes for every SSRC they ever carried (each lift
			// is a new sender with a new SSRC) until the viewer disconnects: allow for that.
			if heap := settle(t, "privacy cycles", g0, fd0); heap > heap0+1<<20 {
				t.Errorf("heap grew from %d to %d bytes over %d cycles", heap0, heap, i)
			}
			sdp := 0
			for _, o := range v.Offers() {
				sdp += len(o.SDP)
			}
			last := v.Offers()[len(v.Offers())-1]
			t.Logf("viewer records: %d packets, %d offers, %d SDP bytes (last offer %d bytes)", len(v.Packets()), len(v.Offers()), sdp, len(last.SDP))
		}
	}
	for _, o := range v.Offers() {
		if o.MSections != 2 {
			t.Fatalf("an offer with %d m-sections", o.MSections)
		}
	}
	if p := os.Getenv("LENSCAP_HEAPPROFILE"); p != "" {
		f, err := os.Create(p)
		must(t, err)
		runtime.GC()
		must(t, pprof.WriteHeapProfile(f))
		f.Close()
	}
}

func TestSoakThousandViewerConnections(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 30*time.Minute)
	g0, fd0 := runtime.NumGoroutine(), openFDs(t)
	for i := range 1000 {
		v, err := rtctest.Dial(ctx, r.wsURL(), rtctest.Options{})
		must(t, err)
		must(t, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
		v.Close()
		if i%250 == 249 {
			deadline := time.Now().Add(5 * time.Second)
			for r.srv.Viewers() != 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			settle(t, "viewer connections", g0, fd0)
		}
	}
}
