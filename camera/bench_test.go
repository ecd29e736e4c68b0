package camera

import (
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"

	"github.com/lenscap/lenscap/camera/v4l2"
)

// BenchmarkSoftwareEncoder720p30 runs the software path as on a camera: a 1280x720 YU12
// sensor paced at 30 fps by the real clock, ffmpeg libx264 (ultrafast, zerolatency), and
// pion's H.264 payloader for the first RTP packet of each frame. It reports the latency
// from capture to the first RTP packet (p50, p99), the CPU of ffmpeg and of this process
// in percent of one core, and (with -benchmem) the allocations per frame of the whole
// loop, every goroutine of the pipeline included. One op is one frame, so -benchtime=300x
// is ten seconds of video.
//
// On a Pi 4 (cross-compile, copy, run; ffmpeg from Raspberry Pi OS):
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go test -c -o camera.test ./camera
//	scp camera.test pi:  &&  ssh pi ./camera.test -test.run '^$' -test.bench 'SoftwareEncoder|HardwareEncoder' -test.benchmem -test.benchtime 300x
//
// and for the hardware encoder (bcm2835-codec at /dev/video11) the same binary with
// LENSCAP_V4L2_ENCODER=/dev/video11 runs BenchmarkHardwareEncoder720p30.
func BenchmarkSoftwareEncoder720p30(b *testing.B) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		b.Skip("ffmpeg not installed")
	}
	benchEncoder(b, EncoderOptions{Kind: EncoderSoftware})
}

func benchEncoder(b *testing.B, enc EncoderOptions) {
	cam, err := NewSyntheticCamera(SyntheticCameraOptions{
		Format:  RawFormat{PixelFormat: v4l2.PixFmtYUV420, Width: 1280, Height: 720, FrameRate: 30},
		Encoder: enc,
	})
	if err != nil {
		b.Fatal(err)
	}
	st, err := cam.Open()
	if err != nil {
		b.Fatal(err)
	}
	b.Log(cam.Describe())
	pay := &codecs.H264Payloader{}
	h264 := cam.Codec().MimeType == "video/H264"
	for range 10 { // warm up: ffmpeg start, first IDR, buffers grown
		f, err := st.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		pay.Payload(1200, f.Data)
	}
	lat := make([]time.Duration, 0, b.N)
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	b.ResetTimer()
	for range b.N {
		f, err := st.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if h264 {
			if pkts := pay.Payload(1200, f.Data); len(pkts) == 0 {
				b.Fatal("no RTP packet")
			}
		}
		lat = append(lat, time.Since(f.CaptureTime))
	}
	b.StopTimer()
	wall := time.Since(start)
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	// Allocations of lenscap's loop alone (capture, encoder, every goroutine of it), without
	// pion's payloader, which allocates its packets.
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	const n = 30
	for range n {
		if _, err := st.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/n, "loop-allocs/frame")
	st.Close()
	if ff, ok := st.(*ffmpegStream); ok && ff.cmd.ProcessState != nil {
		cpu := ff.cmd.ProcessState.UserTime() + ff.cmd.ProcessState.SystemTime()
		b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "ffmpeg-cpu-%")
	}
	self := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	b.ReportMetric(100*self.Seconds()/wall.Seconds(), "lenscap-cpu-%")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkDrawPattern720p is the synthetic sensor's own cost per 1280x720 YU12 frame, to
// subtract from the lenscap CPU of the encoder benchmarks (a real camera costs nothing here:
// its frames arrive by DMA).
func BenchmarkDrawPattern720p(b *testing.B) {
	f := RawFormat{PixelFormat: v4l2.PixFmtYUV420, Width: 1280, Height: 720, FrameRate: 30}
	buf := make([]byte, f.frameSize())
	for i := range b.N {
		drawPattern(buf, f, i)
	}
}
