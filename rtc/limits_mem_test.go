package rtc_test

import (
	"bufio"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// usage is what a process holds: goroutines, open files, resident and heap memory.
type usage struct {
	goroutines, fds int
	rss, heap       uint64 // bytes
}

func measure(t *testing.T) usage {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return usage{runtime.NumGoroutine(), len(ents), residentBytes(t), ms.HeapAlloc}
}

// residentBytes is VmRSS from /proc/self/status.
func residentBytes(t *testing.T) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// settled measures once goroutines and files are back to at most base's plus slack (or after
// five seconds).
func settled(t *testing.T, base usage, slack int) usage {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	u := measure(t)
	for (u.goroutines > base.goroutines+slack || u.fds > base.fds+slack) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		u = measure(t)
	}
	return u
}

func mb(b uint64, a uint64) float64 { return (float64(b) - float64(a)) / (1 << 20) }

// refuseMany posts sdp n times through one keep-alive client and checks every answer is want.
func refuseMany(t *testing.T, url, sdp string, n, want int) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer c.CloseIdleConnections()
	for i := range n {
		if got := postOffer(t, c, url, sdp); got.status != want {
			t.Fatalf("offer %d: %d %q, want %d", i, got.status, got.body, want)
		}
	}
}

func TestLimitRefusedOffersAllocateNothing(t *testing.T) {
	const n = 1000
	r := newRig(t, rigOptions{maxViewers: 1})
	w, _ := dialWHEP(t, r.http.URL+"/whep") // the one viewer allowed
	eventually(t, "video", 5*time.Second, func() bool { got, _ := w.count("video", time.Time{}); return got > 0 })
	good := offerSDP(t, 1, 1, false)
	bad := withFingerprints(t, good, func(h, v string) string { return h + " " + v[:len(v)-2] + "zz" })
	// Warm up the HTTP path (a connection, the server's buffers) before the baseline.
	refuseMany(t, r.http.URL+"/whep", good, 10, http.StatusServiceUnavailable)
	base := measure(t)

	start := time.Now()
	refuseMany(t, r.http.URL+"/whep", good, n, http.StatusServiceUnavailable)
	full := settled(t, base, 2)
	t.Logf("%d offers refused for the limit in %v: goroutines %+d, fds %+d, RSS %+.1f MB, heap %+.1f MB",
		n, time.Since(start).Round(time.Millisecond), full.goroutines-base.goroutines, full.fds-base.fds,
		mb(full.rss, base.rss), mb(full.heap, base.heap))

	start = time.Now()
	refuseMany(t, r.http.URL+"/whep", bad, n, http.StatusBadRequest)
	after := settled(t, base, 2)
	t.Logf("%d offers refused for their fingerprint in %v: goroutines %+d, fds %+d, RSS %+.1f MB, heap %+.1f MB",
		n, time.Since(start).Round(time.Millisecond), after.goroutines-base.goroutines, after.fds-base.fds,
		mb(after.rss, base.rss), mb(after.heap, base.heap))

	for _, u := range []usage{full, after} {
		if u.goroutines > base.goroutines+2 || u.fds > base.fds+2 {
			t.Errorf("goroutines %d, fds %d; baseline %d, %d", u.goroutines, u.fds, base.goroutines, base.fds)
		}
		// Before the limit, 500 offers cost 117 MB: a peer connection each.
		if mb(u.rss, base.rss) > 16 || mb(u.heap, base.heap) > 4 {
			t.Errorf("memory grew: RSS %+.1f MB, heap %+.1f MB", mb(u.rss, base.rss), mb(u.heap, base.heap))
		}
	}
	if got := r.srv.ViewersRefused(); got != n+10 {
		t.Errorf("ViewersRefused = %d, want %d", got, n+10)
	}
	if r.srv.Viewers() != 1 || r.srv.ViewerSlots() != 1 {
		t.Errorf("viewers %d, slots %d, want 1, 1", r.srv.Viewers(), r.srv.ViewerSlots())
	}
}
