package camera

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/lenscap/lenscap/device"
)

func newTestPattern(t testing.TB, c Clock) *TestPattern {
	t.Helper()
	p, err := NewTestPattern(TestPatternOptions{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTestPatternDeclaresH264WithTheClipsProfile(t *testing.T) {
	p := newTestPattern(t, nil)
	want := device.Codec{
		MimeType:    "video/H264",
		ClockRate:   90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + wantProfileLevelID,
	}
	if p.Kind() != device.KindVideo || p.Codec() != want {
		t.Errorf("kind %q codec %+v, want video %+v", p.Kind(), p.Codec(), want)
	}
	if p.Opens() != 0 || p.IsOpen() {
		t.Error("the constructor opened the camera")
	}
}

func TestTestPatternFirstFrameIsAnIDRWithSPSAndPPS(t *testing.T) {
	p := newTestPattern(t, newStepClock())
	for range 2 { // and again after a reopen, mid-clip
		st := mustOpen(t, p)
		f := mustRead(t, st)
		if types := nalTypes(t, f.Data); !f.Keyframe || !bytes.HasPrefix(types, []byte{nalSPS, nalPPS}) || !bytes.Contains(types, []byte{nalIDR}) {
			t.Fatalf("first frame: keyframe %v, NAL types %v; want an IDR with SPS and PPS first", f.Keyframe, types)
		}
		mustRead(t, st)
		_ = st.Close()
	}
}

// TestTestPatternLoopsTheClipWithoutCopying reads the clip twice over: the frames are the
// clip's access units in order, sub-slices of it, keyframes every 30 frames.
func TestTestPatternLoopsTheClipWithoutCopying(t *testing.T) {
	p := newTestPattern(t, newStepClock())
	st := mustOpen(t, p)
	n := len(p.clip.aus)
	for i := range 2*n + 1 {
		f := mustRead(t, st)
		au := p.clip.aus[i%n]
		if &f.Data[0] != &au.data[0] || len(f.Data) != len(au.data) {
			t.Fatalf("frame %d is not access unit %d of the clip", i, i%n)
		}
		if &f.Data[0] != &testPatternClip[bytes.Index(testPatternClip, au.data)] {
			t.Fatalf("frame %d is a copy, not a sub-slice of the embedded clip", i)
		}
		if f.Keyframe != (i%30 == 0) {
			t.Fatalf("frame %d: keyframe %v", i, f.Keyframe)
		}
	}
}

func TestRequestKeyframeMakesTheNextFrameAKeyframe(t *testing.T) {
	p := newTestPattern(t, newStepClock())
	st := mustOpen(t, p)
	for range 5 {
		mustRead(t, st)
	}
	for range 3 { // several requests before a frame: one keyframe
		st.RequestKeyframe()
	}
	if f := mustRead(t, st); !f.Keyframe || &f.Data[0] != &p.clip.aus[30].data[0] {
		t.Fatalf("frame after RequestKeyframe: keyframe %v; want the next GOP's IDR (AU 30)", f.Keyframe)
	}
	if f := mustRead(t, st); f.Keyframe || &f.Data[0] != &p.clip.aus[31].data[0] {
		t.Errorf("second frame after the requests: keyframe %v; want AU 31, a P frame", f.Keyframe)
	}
	// A request when the next frame is an IDR anyway does not skip a GOP.
	for range 28 {
		mustRead(t, st)
	}
	st.RequestKeyframe()
	if f := mustRead(t, st); &f.Data[0] != &p.clip.aus[60].data[0] {
		t.Error("a request at a GOP boundary skipped the GOP")
	}
	// In the last GOP the next IDR is the clip's first.
	for range 35 {
		mustRead(t, st)
	}
	st.RequestKeyframe()
	if f := mustRead(t, st); &f.Data[0] != &p.clip.aus[0].data[0] {
		t.Error("a request in the last GOP did not wrap to the clip's first IDR")
	}
}

// TestTestPatternStreamDecodesAcrossKeyframeJumps checks what a stream sent, keyframe
// requests included: every jump in the clip lands on an IDR, so no frame references a
// picture that was not sent, and ffmpeg decodes every frame. (ffmpeg alone would not notice a
// bad jump: its decoder conceals a frame_num gap silently.)
func TestTestPatternStreamDecodesAcrossKeyframeJumps(t *testing.T) {
	p := newTestPattern(t, newStepClock())
	st := mustOpen(t, p)
	var sent bytes.Buffer
	const frames = 150
	prev, jumps := -1, 0
	for i := range frames {
		if i%17 == 5 {
			st.RequestKeyframe()
		}
		f := mustRead(t, st)
		sent.Write(f.Data)
		idx := auIndex(t, p, f)
		if idx != (prev+1)%len(p.clip.aus) {
			jumps++
			if !f.Keyframe || !p.clip.aus[idx].key {
				t.Fatalf("frame %d jumped from AU %d to AU %d, which is not an IDR", i, prev, idx)
			}
		}
		prev = idx
	}
	if jumps < 5 {
		t.Errorf("%d jumps to a keyframe in %d frames, want at least 5", jumps, frames)
	}

	ffprobe := lookFFmpegTool(t, "ffprobe")
	cmd := exec.Command(ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", "-f", "h264", "-i", "pipe:0")
	cmd.Stdin = &sent
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe: %v\n%s", err, stderr.String())
	}
	if got := strings.TrimSpace(string(out)); got != "150" {
		t.Errorf("ffprobe decoded %s frames, want %d", got, frames)
	}
}

// auIndex is the index of the clip's access unit a frame is.
func auIndex(t *testing.T, p *TestPattern, f device.Frame) int {
	t.Helper()
	for i, au := range p.clip.aus {
		if &au.data[0] == &f.Data[0] {
			return i
		}
	}
	t.Fatal("a frame that is not one of the clip's access units")
	return -1
}

func TestNewTestPatternRejectsBadOptions(t *testing.T) {
	if _, err := NewTestPattern(TestPatternOptions{Clip: []byte("not h264")}); err == nil ||
		!strings.HasPrefix(err.Error(), "camera: test pattern camera: ") {
		t.Errorf("a clip that is not H.264: %v, want a camera: error naming the device", err)
	}
	if _, err := NewTestPattern(TestPatternOptions{FrameRate: -1}); err == nil {
		t.Error("a negative frame rate was accepted")
	}
}

func BenchmarkTestPatternReadFrame(b *testing.B) {
	st, err := newTestPattern(b, newStepClock()).Open()
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
}
