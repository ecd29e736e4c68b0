package camera

import (
	"bytes"
	"io"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/thesyncim/gopus"
	"github.com/thesyncim/gopus/container/ogg"

	"github.com/lenscap/lenscap/device"
)

func newTestTone(t testing.TB, opts TestToneOptions) *TestTone {
	t.Helper()
	d, err := NewTestTone(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// readFrames reads n frames from a fresh stream of d, copying their data.
func readFrames(t *testing.T, d device.Driver, n int) [][]byte {
	t.Helper()
	st := mustOpen(t, d)
	frames := make([][]byte, n)
	for i := range frames {
		f := mustRead(t, st)
		if f.Duration != 20*time.Millisecond || !f.Keyframe {
			t.Fatalf("frame %d: duration %v, keyframe %v; want 20ms, true", i, f.Duration, f.Keyframe)
		}
		frames[i] = bytes.Clone(f.Data)
	}
	return frames
}

// checkTone asserts that pcm, sampled at rate, is a sine of frequency freq (within 2%,
// counted by zero crossings) holding at least 90% of the signal's power (Goertzel), at
// roughly the amplitude asked for. It looks at 0.5 s after the first 0.1 s.
func checkTone(t *testing.T, pcm []float64, rate int, freq, amp float64) {
	t.Helper()
	skip, n := rate/10, rate/2
	if len(pcm) < skip+n {
		t.Fatalf("%d samples decoded, want at least %d", len(pcm), skip+n)
	}
	x := pcm[skip : skip+n]

	var first, last float64 // positions of the first and last rising zero crossings
	crossings := 0
	for i := 1; i < len(x); i++ {
		if x[i-1] < 0 && x[i] >= 0 {
			pos := float64(i-1) + x[i-1]/(x[i-1]-x[i])
			if crossings == 0 {
				first = pos
			}
			last = pos
			crossings++
		}
	}
	if crossings < 2 {
		t.Fatalf("no tone: %d rising zero crossings", crossings)
	}
	got := float64(crossings-1) / (last - first) * float64(rate)
	if math.Abs(got-freq) > 0.02*freq {
		t.Errorf("tone at %.1f Hz, want %g Hz within 2%%", got, freq)
	}

	var power float64
	for _, v := range x {
		power += v * v
	}
	power /= float64(n)
	coeff := 2 * math.Cos(2*math.Pi*freq/float64(rate))
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+coeff*s1-s2, s1
	}
	atFreq := 2 * (s1*s1 + s2*s2 - coeff*s1*s2) / float64(n*n) // mean power of the component at freq
	if atFreq < 0.9*power {
		t.Errorf("%g Hz holds %.0f%% of the power, want at least 90%%", freq, 100*atFreq/power)
	}
	if peak := math.Sqrt(2 * atFreq); math.Abs(peak-amp) > 0.2*amp {
		t.Errorf("tone amplitude %.3f, want %.3f within 20%%", peak, amp)
	}
}

func TestTestToneDeclaresWebRTCCodecs(t *testing.T) {
	opus := newTestTone(t, TestToneOptions{})
	if want := (device.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}); opus.Codec() != want || opus.Kind() != device.KindAudio {
		t.Errorf("default tone: kind %q codec %+v, want audio %+v", opus.Kind(), opus.Codec(), want)
	}
	pcmu := newTestTone(t, TestToneOptions{Encoding: AudioPCMU})
	if want := (device.Codec{MimeType: "audio/PCMU", ClockRate: 8000, Channels: 1}); pcmu.Codec() != want {
		t.Errorf("PCMU tone: codec %+v, want %+v", pcmu.Codec(), want)
	}
	if opus.IsOpen() || pcmu.Opens() != 0 {
		t.Error("the constructor opened the microphone")
	}
}

func TestTestToneOpusDecodesToTheConfiguredFrequency(t *testing.T) {
	const freq, amp = 1000, 0.25
	frames := readFrames(t, newTestTone(t, TestToneOptions{Clock: newStepClock()}), 40)
	dec, err := gopus.NewDecoder(gopus.DefaultDecoderConfig(48000, 1))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 5760)
	var pcm []float64
	for i, pkt := range frames {
		if toc := pkt[0]; toc&0x04 != 0 {
			t.Fatalf("packet %d is stereo (TOC %#x): the microphone is mono", i, toc)
		}
		n, err := dec.Decode(pkt, out)
		if err != nil {
			t.Fatalf("decode packet %d: %v", i, err)
		}
		if n != 960 {
			t.Fatalf("packet %d holds %d samples, want 960 (20 ms)", i, n)
		}
		for _, v := range out[:n] {
			pcm = append(pcm, float64(v))
		}
	}
	checkTone(t, pcm, 48000, freq, amp)
}

func TestTestToneOpusDecodesInFFmpeg(t *testing.T) {
	ffmpeg := lookFFmpegTool(t, "ffmpeg")
	const freq = 440
	frames := readFrames(t, newTestTone(t, TestToneOptions{Clock: newStepClock(), Frequency: freq}), 40)
	var file bytes.Buffer
	w, err := ogg.NewWriter(&file, 48000, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkt := range frames {
		if err := w.WritePacket(pkt, 960); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pcm := ffmpegDecode(t, ffmpeg, &file, "-f", "ogg")
	checkTone(t, pcm, 48000, freq, 0.25)
}

func TestTestTonePCMUFramesAre160BytesOfTheTone(t *testing.T) {
	const freq, amp = 1000, 0.5
	frames := readFrames(t, newTestTone(t, TestToneOptions{Encoding: AudioPCMU, Clock: newStepClock(), Amplitude: amp}), 40)
	var pcm []float64
	for i, f := range frames {
		if len(f) != 160 {
			t.Fatalf("frame %d has %d bytes, want 160", i, len(f))
		}
		for _, u := range f {
			pcm = append(pcm, float64(mulawDecode(u))/32768)
		}
	}
	checkTone(t, pcm, 8000, freq, amp)

	ffmpeg := lookFFmpegTool(t, "ffmpeg")
	checkTone(t, ffmpegDecode(t, ffmpeg, bytes.NewReader(bytes.Join(frames, nil)),
		"-f", "mulaw", "-ar", "8000", "-ac", "1"), 48000, freq, amp)
}

func TestToneIsContinuousAcrossFramesAndSkippedTicks(t *testing.T) {
	c := newFakeClock()
	st := mustOpen(t, newTestTone(t, TestToneOptions{Encoding: AudioPCMU, Clock: c, Frequency: 125}))
	a := bytes.Clone(mustRead(t, st).Data)
	c.Advance(40 * time.Millisecond) // one tick missed: the tone goes on meanwhile
	b := mustRead(t, st).Data
	// 125 Hz is 8 cycles in 64 ms, 64 samples; the frame at 40 ms starts 320 samples, 5
	// cycles, in: the same samples as the first frame.
	if !bytes.Equal(a, b) {
		t.Error("the tone's phase does not follow the clock across a missed tick")
	}
}

func TestMulawMatchesG711(t *testing.T) {
	for _, tc := range []struct {
		in   int16
		want byte
	}{{0, 0xff}, {-1, 0x7f}, {32767, 0x80}, {-32768, 0x00}, {1000, 0xce}, {-1000, 0x4e}} {
		if got := mulaw(tc.in); got != tc.want {
			t.Errorf("mulaw(%d) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
	for s := math.MinInt16; s <= math.MaxInt16; s++ {
		// The quantization step of segment k is 8<<k: the decoded value is within half of it.
		back := int(mulawDecode(mulaw(int16(s))))
		clipped := max(min(s, 32635), -32635)
		step := 8 << ((^mulaw(int16(s)) >> 4) & 7)
		if diff := back - clipped; diff > step/2 || diff < -step/2 {
			t.Fatalf("mulaw round trip of %d gives %d, off by more than half a step (%d)", s, back, step)
		}
	}
}

func TestNewTestToneRejectsBadOptions(t *testing.T) {
	for _, opts := range []TestToneOptions{
		{Encoding: AudioPCMU, Frequency: 5000},
		{Frequency: -1},
		{Amplitude: 1.5},
		{Encoding: AudioEncoding(7)},
		{OpusBitrate: 100},
	} {
		if _, err := NewTestTone(opts); err == nil || !strings.HasPrefix(err.Error(), "camera: test tone microphone: ") {
			t.Errorf("NewTestTone(%+v): %v, want a camera: error naming the device", opts, err)
		}
	}
}

// mulawDecode is the G.711 μ-law decoder, for the tests.
func mulawDecode(u byte) int16 {
	u = ^u
	seg := (u >> 4) & 7
	x := ((int32(u&0x0f) << 3) + 0x84) << seg
	x -= 0x84
	if u&0x80 != 0 {
		return int16(-x)
	}
	return int16(x)
}

// ffmpegDecode decodes audio with ffmpeg to 48 kHz mono, as floats in [-1, 1].
func ffmpegDecode(t *testing.T, ffmpeg string, in io.Reader, inputFormat ...string) []float64 {
	t.Helper()
	args := append([]string{"-v", "error"}, inputFormat...)
	args = append(args, "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", "48000", "pipe:1")
	cmd := exec.Command(ffmpeg, args...)
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, stderr.String())
	}
	pcm := make([]float64, len(out)/2)
	for i := range pcm {
		pcm[i] = float64(int16(uint16(out[2*i])|uint16(out[2*i+1])<<8)) / 32768
	}
	return pcm
}

func BenchmarkTestToneReadFrame(b *testing.B) {
	for _, enc := range []AudioEncoding{AudioOpus, AudioPCMU} {
		b.Run(enc.String(), func(b *testing.B) {
			st, err := newTestTone(b, TestToneOptions{Encoding: enc, Clock: newStepClock()}).Open()
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
		})
	}
}
