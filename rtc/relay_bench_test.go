package rtc_test

import (
	"testing"
	"time"

	"github.com/lenscap/lenscap/rtc"
	"github.com/lenscap/lenscap/rtc/rtctest"
	"github.com/pion/webrtc/v4"
)

// BenchmarkRelay compares a viewer reached directly with one reached through a real coturn on
// loopback (the camera on relay only): the first video packet after a viewer dials, the last
// video packet to arrive after a cut's trigger (frames every 10 ms), and the process's CPU per
// video frame with 4 viewers (the viewers run in the process: an upper bound for the camera).
// Run with -benchtime=1x.
func BenchmarkRelay(b *testing.B) {
	turn := rtctest.StartTURN(b)
	for _, path := range []string{"direct", "turn"} {
		b.Run(path, func(b *testing.B) {
			o := rigOptions{interval: 10 * time.Millisecond}
			if path == "turn" {
				o.policy = webrtc.ICETransportPolicyRelay
				o.iceServers = func(string) []webrtc.ICEServer {
					user, pass := rtc.TURNCredentials(turn.Secret, "lenscap-bench", time.Now().Add(time.Hour))
					return []webrtc.ICEServer{{URLs: []string{turn.URL}, Username: user, Credential: pass}}
				}
			}
			r := newRig(b, o)
			ctx := ctxFor(b, 5*time.Minute)
			b.ResetTimer()
			for range b.N {
				first := relayFirstFrames(b, r, 10)
				last := relayCuts(b, r, 50)
				b.ReportMetric(ms(percentile(first, 0.5)), "first-frame-p50-ms")
				b.ReportMetric(ms(percentile(last, 0.5)), "cut-to-last-arrival-p50-ms")
				b.ReportMetric(ms(percentile(last, 0.99)), "cut-to-last-arrival-p99-ms")
				var vs []*rtctest.Viewer
				for range 4 {
					vs = append(vs, r.dial(ctx, rtctest.Options{}))
				}
				for _, v := range vs {
					must(b, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
				}
				frames0, cpu0 := r.video.Frames(), cpuTime()
				time.Sleep(3 * time.Second)
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(r.video.Frames()-frames0), "cpu-us/frame-4-viewers")
				for _, v := range vs {
					v.Close()
				}
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// relayFirstFrames dials n viewers one after another: from each dial to its first video packet.
func relayFirstFrames(b *testing.B, r *rig, n int) []time.Duration {
	var out []time.Duration
	for range n {
		ctx := ctxFor(b, 30*time.Second)
		start := time.Now()
		v, err := rtctest.Dial(ctx, r.wsURL(), rtctest.Options{})
		must(b, err)
		must(b, v.WaitFor(ctx, "video", rtctest.Receiving("video", start)))
		for _, p := range v.Packets() {
			if p.Kind == "video" {
				out = append(out, p.Arrival.Sub(start))
				break
			}
		}
		v.Close()
	}
	return out
}

// relayCuts presses the button n times (cut, then lift) with one viewer: from each cut's
// trigger to the last video packet that arrived after it.
func relayCuts(b *testing.B, r *rig, n int) []time.Duration {
	ctx := ctxFor(b, 5*time.Minute)
	v := r.dial(ctx, rtctest.Options{})
	defer v.Close()
	must(b, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
	var out []time.Duration
	for range n {
		k := v.OfferCount()
		trigger := time.Now()
		_, err := r.dev.PressButton(ctx, trigger)
		must(b, err)
		must(b, v.WaitFor(ctx, "cut offer", rtctest.NothingSent(k)))
		time.Sleep(100 * time.Millisecond) // what was in flight has arrived
		last := trigger
		for _, p := range v.Packets() {
			if p.Kind == "video" && p.Arrival.After(last) {
				last = p.Arrival
			}
		}
		out = append(out, last.Sub(trigger))
		lift := time.Now()
		_, err = r.dev.PressButton(ctx, lift)
		must(b, err)
		must(b, v.WaitFor(ctx, "video", rtctest.Receiving("video", lift)))
	}
	return out
}
