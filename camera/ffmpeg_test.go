package camera

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/camera/v4l2"
	"github.com/lenscap/lenscap/device"
)

// newSoftwareCamera is a synthetic 320x240 camera through the ffmpeg encoder, paced by a
// step clock (frames as fast as they are read), skipping the test without ffmpeg.
func newSoftwareCamera(t testing.TB, opts SyntheticCameraOptions) *SyntheticCamera {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil && opts.Encoder.FFmpeg == "" {
		t.Skip("ffmpeg not installed:", err)
	}
	if opts.Format.Width == 0 {
		opts.Format = RawFormat{PixelFormat: v4l2.PixFmtYUV420, Width: 320, Height: 240, FrameRate: 30}
	}
	if opts.Clock == nil {
		opts.Clock = newStepClock()
	}
	opts.Encoder.Kind = EncoderSoftware
	c, err := NewSyntheticCamera(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openFDs counts this process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

func TestSoftwareEncoderOutputSplitsIntoAccessUnitsAndFFprobeDecodesIt(t *testing.T) {
	ffprobe := lookFFmpegTool(t, "ffprobe")
	for _, pix := range []uint32{v4l2.PixFmtYUV420, v4l2.PixFmtNV12, v4l2.PixFmtYUYV} {
		t.Run(v4l2.FourccString(pix), func(t *testing.T) {
			cam := newSoftwareCamera(t, SyntheticCameraOptions{
				Format: RawFormat{PixelFormat: pix, Width: 320, Height: 240, FrameRate: 30},
			})
			if got := cam.Codec(); got.MimeType != "video/H264" || !strings.Contains(got.SDPFmtpLine, "profile-level-id=42c0") {
				t.Errorf("codec %+v, want constrained-baseline H.264", got)
			}
			st := mustOpen(t, cam)
			defer st.Close()
			var stream bytes.Buffer
			const n = 45
			var last time.Time
			for i := range n {
				f := mustRead(t, st)
				if want := i%30 == 0; f.Keyframe != want {
					t.Errorf("frame %d: keyframe %v, want %v (IDR every 30 frames)", i, f.Keyframe, want)
				}
				if !f.CaptureTime.After(last) || f.Duration != time.Second/30 {
					t.Errorf("frame %d: capture time %v after %v, duration %v", i, f.CaptureTime, last, f.Duration)
				}
				last = f.CaptureTime
				clip, err := parseH264Clip(bytes.Clone(f.Data))
				if f.Keyframe && err != nil {
					t.Errorf("frame %d: not a standalone IDR access unit with SPS and PPS: %v", i, err)
				}
				if err == nil && len(clip.aus) != 1 {
					t.Errorf("frame %d holds %d access units, want 1", i, len(clip.aus))
				}
				stream.Write(f.Data)
			}
			clip, err := parseH264Clip(stream.Bytes())
			if err != nil || len(clip.aus) != n {
				t.Fatalf("the stream parses into %d access units (%v), want %d", len(clip.aus), err, n)
			}
			cmd := exec.Command(ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
				"-show_entries", "stream=profile,width,height,has_b_frames,nb_read_frames",
				"-of", "default=noprint_wrappers=1", "-f", "h264", "-i", "pipe:0")
			cmd.Stdin = &stream
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || stderr.Len() > 0 {
				t.Fatalf("ffprobe: %v\n%s", err, stderr.String())
			}
			for _, want := range []string{"profile=Constrained Baseline", "width=320", "height=240",
				"has_b_frames=0", "nb_read_frames=45"} {
				if !strings.Contains(string(out), want+"\n") {
					t.Errorf("ffprobe says\n%s\nwant %s", out, want)
				}
			}
		})
	}
}

func TestSoftwareEncoderCloseKillsFFmpegAndLeavesNoFileOpen(t *testing.T) {
	cam := newSoftwareCamera(t, SyntheticCameraOptions{})
	before, goroutines := openFDs(t), runtime.NumGoroutine()
	for range 3 {
		st := mustOpen(t, cam)
		mustRead(t, st)
		ff := st.(*ffmpegStream)
		if ff.reaped() {
			t.Fatal("ffmpeg exited while streaming")
		}
		start := time.Now()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if !ff.reaped() || ff.cmd.ProcessState.Pid() != ff.cmd.Process.Pid {
			t.Fatal("Close returned before ffmpeg was reaped")
		}
		if cam.IsOpen() {
			t.Fatal("Close returned while the camera was held")
		}
		if _, err := st.ReadFrame(); !errors.Is(err, device.ErrStreamClosed) {
			t.Fatalf("ReadFrame after Close: %v, want ErrStreamClosed", err)
		}
		st.Close() // idempotent
		t.Logf("Close took %v", took)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d file descriptors open after Close, %d before", after, before)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > goroutines {
		t.Errorf("%d goroutines after Close, %d before", g, goroutines)
	}
}

func TestSoftwareEncoderCrashEndsTheStreamWithAnEncoderError(t *testing.T) {
	cam := newSoftwareCamera(t, SyntheticCameraOptions{})
	st := mustOpen(t, cam)
	defer st.Close()
	mustRead(t, st)
	st.(*ffmpegStream).cmd.Process.Kill()
	var err error
	for range 100 {
		if _, err = st.ReadFrame(); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrEncoder) {
		t.Fatalf("ReadFrame after ffmpeg died: %v, want ErrEncoder", err)
	}
	if _, err2 := st.ReadFrame(); !errors.Is(err2, ErrEncoder) {
		t.Errorf("the next ReadFrame: %v, want the same failure", err2)
	}
}

func TestSoftwareEncoderFailureSaysWhatFFmpegSaid(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "ffmpeg")
	script := "#!/bin/sh\necho 'Unknown encoder libx264' >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cam := newSoftwareCamera(t, SyntheticCameraOptions{Encoder: EncoderOptions{FFmpeg: fake}})
	st := mustOpen(t, cam)
	defer st.Close()
	_, err := st.ReadFrame()
	if !errors.Is(err, ErrEncoder) || !strings.Contains(err.Error(), "Unknown encoder libx264") {
		t.Fatalf("ReadFrame: %v, want ErrEncoder with ffmpeg's message", err)
	}
}

func TestSoftwareEncoderMissingProgramFailsOpenAndReleasesTheCamera(t *testing.T) {
	cam := newSoftwareCamera(t, SyntheticCameraOptions{Encoder: EncoderOptions{FFmpeg: "/nonexistent/ffmpeg"}})
	if _, err := cam.Open(); err == nil || !strings.Contains(err.Error(), "/nonexistent/ffmpeg") {
		t.Fatalf("Open: %v, want an error naming the program", err)
	}
	if cam.IsOpen() {
		t.Error("a failed Open left the camera held")
	}
}

func TestSoftwareEncoderVanishedCameraEndsTheStream(t *testing.T) {
	cam := newSoftwareCamera(t, SyntheticCameraOptions{})
	st := mustOpen(t, cam)
	defer st.Close()
	mustRead(t, st)
	cam.Vanish()
	var err error
	for range 100 {
		if _, err = st.ReadFrame(); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrGone) {
		t.Fatalf("ReadFrame after Vanish: %v, want ErrGone", err)
	}
}

func TestAutoEncoderFallsBackToSoftwareAndSaysSo(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	var logs bytes.Buffer
	cam, err := NewSyntheticCamera(SyntheticCameraOptions{
		Format: RawFormat{PixelFormat: v4l2.PixFmtYUV420, Width: 320, Height: 240, FrameRate: 30},
		Clock:  newStepClock(),
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		// An encoder node that is not one: nothing here is a memory-to-memory encoder.
		Encoder: EncoderOptions{Device: "/dev/null"},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := mustOpen(t, cam)
	defer st.Close()
	if f := mustRead(t, st); !f.Keyframe {
		t.Error("first frame is not a keyframe")
	}
	if d := cam.Describe(); !strings.Contains(d, "software encoder") {
		t.Errorf("Describe() = %q, want it to name the software encoder", d)
	}
	if !strings.Contains(logs.String(), "using the software encoder") {
		t.Errorf("log %q does not say the software encoder was chosen", logs.String())
	}
}

func TestHardwareEncoderRequiredFailsWithoutOne(t *testing.T) {
	cam, err := NewSyntheticCamera(SyntheticCameraOptions{Encoder: EncoderOptions{Kind: EncoderHardware, Device: "/dev/null"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cam.Open(); !errors.Is(err, ErrNoEncoder) {
		t.Fatalf("Open: %v, want ErrNoEncoder", err)
	}
	if cam.IsOpen() {
		t.Error("a failed Open left the camera held")
	}
}

func TestFFmpegArgsAskForZeroLatencyConstrainedBaselineWithRepeatedHeaders(t *testing.T) {
	args, err := ffmpegArgs(RawFormat{PixelFormat: v4l2.PixFmtNV12, Width: 1280, Height: 720, FrameRate: 30},
		EncoderOptions{}.withDefaults(RawFormat{FrameRate: 30}))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{"-pix_fmt nv12", "-video_size 1280x720", "-tune zerolatency", "-profile:v baseline",
		"-level 3.1", "-bf 0", "-g 30", "repeat-headers=1", "-b:v 2000000"} {
		if !strings.Contains(line, want) {
			t.Errorf("ffmpeg %s\nlacks %q", line, want)
		}
	}
	if _, err := ffmpegArgs(RawFormat{PixelFormat: v4l2.PixFmtH264}, EncoderOptions{}); !errors.Is(err, ErrFormat) {
		t.Errorf("H.264 input: %v, want ErrFormat", err)
	}
}

func lookPath(name string) (string, error) { return exec.LookPath(name) }

// oneFrameRaw gives one generated frame, then blocks until closed: what a camera does when
// its next frame is not captured yet.
type oneFrameRaw struct {
	f      RawFormat
	given  bool
	closed chan struct{}
}

func (r *oneFrameRaw) next() ([]byte, time.Time, error) {
	if !r.given {
		r.given = true
		buf := make([]byte, r.f.frameSize())
		drawPattern(buf, r.f, 0)
		return buf, time.Now(), nil
	}
	<-r.closed
	return nil, time.Time{}, device.ErrStreamClosed
}

func (r *oneFrameRaw) stop() { r.close() }

func (r *oneFrameRaw) close() error {
	select {
	case <-r.closed:
	default:
		close(r.closed)
	}
	return nil
}

func TestSoftwareEncoderReturnsAFrameBeforeTheNextIsCaptured(t *testing.T) {
	lookFFmpegTool(t, "ffmpeg")
	f := RawFormat{PixelFormat: v4l2.PixFmtYUV420, Width: 640, Height: 360, FrameRate: 30}
	src := &oneFrameRaw{f: f, closed: make(chan struct{})}
	st, err := startFFmpeg("one frame", src, f, EncoderOptions{}.withDefaults(f))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := make(chan error, 1)
	go func() {
		fr, err := st.ReadFrame()
		if err == nil && !fr.Keyframe {
			err = errors.New("the first frame is not a keyframe")
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ffmpeg holds the only frame: the software path would add a frame of latency")
	}
}

func TestSoftwareEncoderReadFrameAllocatesNothing(t *testing.T) {
	cam := newSoftwareCamera(t, SyntheticCameraOptions{})
	st := mustOpen(t, cam)
	defer st.Close()
	for range 5 {
		mustRead(t, st)
	}
	// AllocsPerRun counts every goroutine: the feeder and reader included.
	if a := testing.AllocsPerRun(30, func() { st.ReadFrame() }); a >= 1 {
		t.Errorf("%v allocations per frame in the capture -> ffmpeg -> frame loop", a)
	}
}
