package rtc_test

import (
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/lenscap/lenscap/rtc/rtctest"
)

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkCut measures, over 200 button presses with a viewer connected and frames every
// millisecond (so a frame is always on its way): trigger to the last video packet sent,
// trigger to the press returning (gate, fsync, removeTrack, stop, source closed), and trigger
// to the viewer's renegotiation offer. Run with -benchtime=1x.
func BenchmarkCut(b *testing.B) {
	const cuts = 200
	r := newRig(b, rigOptions{interval: time.Millisecond})
	ctx := ctxFor(b, 5*time.Minute)
	v := r.dial(ctx, rtctest.Options{})
	must(b, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
	var lastPacket, closed, offered []time.Duration
	b.ResetTimer()
	for range b.N {
		for range cuts {
			n := v.OfferCount()
			trigger := time.Now()
			_, err := r.dev.PressButton(ctx, trigger)
			must(b, err)
			closed = append(closed, time.Since(trigger))
			must(b, v.WaitFor(ctx, "cut offer", offerWith(n, "inactive", "inactive")))
			offered = append(offered, v.Offers()[len(v.Offers())-1].Arrival.Sub(trigger))
			lastPacket = append(lastPacket, max(0, r.srv.LastSent("video").Sub(trigger)))
			n = v.OfferCount()
			lift := time.Now()
			_, err = r.dev.PressButton(ctx, lift)
			must(b, err)
			must(b, v.WaitFor(ctx, "lift offer", offerWith(n, "sendonly", "sendonly")))
			must(b, v.WaitFor(ctx, "video", rtctest.Receiving("video", lift)))
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentile(lastPacket, 0.5)), "last-packet-p50-ms")
	b.ReportMetric(ms(percentile(lastPacket, 0.99)), "last-packet-p99-ms")
	b.ReportMetric(ms(percentile(closed, 0.5)), "source-closed-p50-ms")
	b.ReportMetric(ms(percentile(closed, 0.99)), "source-closed-p99-ms")
	b.ReportMetric(ms(percentile(offered, 0.5)), "renegotiation-offer-p50-ms")
	b.ReportMetric(ms(percentile(offered, 0.99)), "renegotiation-offer-p99-ms")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkViewersCPU streams 30 fps video and 50 fps audio to 1, 4 and 16 real pion viewers
// for three seconds and reports the process's CPU time per video frame. The viewers run in the
// same process, so the figure includes their receiving (about as costly as sending): it is an
// upper bound for the device, and the slope gives the cost of an extra viewer.
func BenchmarkViewersCPU(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		b.Run("viewers="+strconv.Itoa(n), func(b *testing.B) {
			r := newRig(b, rigOptions{interval: time.Second / 30})
			ctx := ctxFor(b, time.Minute)
			var vs []*rtctest.Viewer
			for range n {
				vs = append(vs, r.dial(ctx, rtctest.Options{}))
			}
			for _, v := range vs {
				must(b, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
			}
			b.ResetTimer()
			for range b.N {
				frames0, cpu0, start := r.video.Frames(), cpuTime(), time.Now()
				time.Sleep(3 * time.Second)
				frames := r.video.Frames() - frames0
				cpu := cpuTime() - cpu0
				b.ReportMetric(float64(cpu.Microseconds())/float64(frames), "cpu-us/frame")
				b.ReportMetric(100*cpu.Seconds()/time.Since(start).Seconds(), "cpu-%")
			}
		})
	}
}
