package rtc

import (
	"log/slog"

	"os"
	"strconv"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device/devicetest"

	"github.com/lenscap/lenscap/device"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// clipFrames splits the simulated camera's clip (one slice per frame, SPS/PPS before each IDR)
// into access units.
func clipFrames(tb testing.TB) []device.Frame {
	tb.Helper()
	clip, err := os.ReadFile("../camera/testdata/testpattern.h264")
	if err != nil {
		tb.Fatal(err)
	}
	var frames []device.Frame
	var au []byte
	key := false
	forEachNAL(clip, func(n []byte) {
		au = append(au, 0, 0, 0, 1)
		au = append(au, n...)
		switch n[0] & 0x1f {
		case 5:
			key = true
			fallthrough
		case 1:
			frames = append(frames, device.Frame{Data: au, Keyframe: key, Duration: time.Second / 30})
			au, key = nil, false
		}
	})
	if len(frames) < 30 {
		tb.Fatalf("clip has %d frames", len(frames))
	}
	return frames
}

// idleTrack is a live track whose source delivers nothing by itself.
func idleTrack(tb testing.TB) *device.Track {
	src := device.NewSource(devicetest.NewDriver(device.KindVideo, devicetest.Options{}), slog.New(slog.DiscardHandler))
	tr, err := src.NewTrack()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tr.Stop)
	return tr
}

type discardWriter struct{ packets, bytes int }

func (w *discardWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.packets++
	w.bytes += len(payload)
	return len(payload), nil
}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

type fakeContext struct {
	id   string
	ssrc webrtc.SSRC
	w    webrtc.TrackLocalWriter
}

func (c *fakeContext) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, PayloadType: 96}}
}
func (c *fakeContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (c *fakeContext) SSRC() webrtc.SSRC                                      { return c.ssrc }
func (c *fakeContext) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (c *fakeContext) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c *fakeContext) WriteStream() webrtc.TrackLocalWriter                   { return c.w }
func (c *fakeContext) ID() string                                             { return c.id }
func (c *fakeContext) RTCPReader() interceptor.RTCPReader                     { return nil }

// BenchmarkFanoutWrite measures lenscap's own fan-out code (packetize once, write to every
// binding) with writers that discard: it must not allocate, whatever the number of viewers.
func BenchmarkFanoutWrite(b *testing.B) {
	frames := clipFrames(b)
	for _, n := range []int{1, 4, 16} {
		b.Run("viewers="+strconv.Itoa(n), func(b *testing.B) {
			f := newFanout(device.KindVideo, device.Codec{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, time.Now())
			tr := idleTrack(b)
			f.track = tr
			w := &discardWriter{}
			for i := range n {
				if _, err := f.Bind(&fakeContext{id: strconv.Itoa(i), ssrc: webrtc.SSRC(i + 1), w: w}); err != nil {
					b.Fatal(err)
				}
			}
			for _, fr := range frames { // warm the buffers, and let every binding see a keyframe
				f.write(tr, fr)
			}
			w.packets = 0
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				fr := frames[i%len(frames)]
				fr.CaptureTime = now.Add(time.Duration(i) * time.Second / 30)
				f.write(tr, fr)
			}
			b.ReportMetric(float64(w.packets)/float64(b.N), "packets/frame")
		})
	}
}

func TestFanoutWriteDoesNotAllocate(t *testing.T) {
	frames := clipFrames(t)
	f := newFanout(device.KindVideo, device.Codec{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, time.Now())
	tr := idleTrack(t)
	f.track = tr
	w := &discardWriter{}
	for i := range 4 {
		if _, err := f.Bind(&fakeContext{id: strconv.Itoa(i), ssrc: webrtc.SSRC(i + 1), w: w}); err != nil {
			t.Fatal(err)
		}
	}
	for _, fr := range frames {
		f.write(tr, fr)
	}
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		f.write(tr, frames[i%len(frames)])
		i++
	})
	if allocs != 0 {
		t.Errorf("fan-out allocates %.1f times per frame, want 0", allocs)
	}
	if w.packets == 0 {
		t.Fatal("nothing written")
	}
}
