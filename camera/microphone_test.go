package camera

import (
	"bytes"
	"errors"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thesyncim/gopus"

	"github.com/lenscap/lenscap/device"
)

// fakePCM is a sound card that hears a sine tone on every channel. Reads return at once
// (no pacing) unless block is set, when they wait until Close.
type fakePCM struct {
	freq, amp float64
	block     bool

	mu                           sync.Mutex
	opens, closes                int
	rate, channels, periodFrames int
	open                         bool
}

func (f *fakePCM) OpenPCM(rate, channels, periodFrames int) (PCMReader, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open {
		return nil, ErrBusy
	}
	f.open, f.rate, f.channels, f.periodFrames = true, rate, channels, periodFrames
	f.opens++
	return &fakePCMReader{card: f, closed: make(chan struct{})}, nil
}

func (f *fakePCM) isOpen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open
}

type fakePCMReader struct {
	card      *fakePCM
	n         int // frames read so far
	closed    chan struct{}
	closeOnce sync.Once
}

func (r *fakePCMReader) ReadPCM(buf []int16) (time.Time, error) {
	c := r.card
	if c.block {
		<-r.closed
		return time.Time{}, errors.New("device closed")
	}
	select {
	case <-r.closed:
		return time.Time{}, errors.New("device closed")
	default:
	}
	at := epoch.Add(time.Duration(r.n) * time.Second / time.Duration(c.rate))
	for i := 0; i < len(buf)/c.channels; i++ {
		v := int16(math.Round(c.amp * 32767 * math.Sin(2*math.Pi*c.freq*float64(r.n)/float64(c.rate))))
		for ch := range c.channels {
			buf[i*c.channels+ch] = v
		}
		r.n++
	}
	return at, nil
}

func (r *fakePCMReader) Close() error {
	r.closeOnce.Do(func() {
		close(r.closed)
		r.card.mu.Lock()
		r.card.open = false
		r.card.closes++
		r.card.mu.Unlock()
	})
	return nil
}

func newFakeMic(t testing.TB, card *fakePCM, opts MicrophoneOptions) *Microphone {
	t.Helper()
	opts.Source = card
	m, err := NewMicrophone(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMicrophoneOpusFromAStereoCardDecodesToTheTone(t *testing.T) {
	card := &fakePCM{freq: 440, amp: 0.3}
	mic := newFakeMic(t, card, MicrophoneOptions{Channels: 2})
	if c := mic.Codec(); c.MimeType != "audio/opus" || c.ClockRate != 48000 {
		t.Errorf("codec %+v, want opus/48000", c)
	}
	frames := readFrames(t, mic, 40)
	if card.rate != 48000 || card.channels != 2 || card.periodFrames != 960 {
		t.Errorf("opened the card at %d Hz x%d, period %d; want 48000 x2, 960", card.rate, card.channels, card.periodFrames)
	}
	dec, err := gopus.NewDecoder(gopus.DefaultDecoderConfig(48000, 1))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 5760)
	var pcm []float64
	for i, pkt := range frames {
		n, err := dec.Decode(pkt, out)
		if err != nil || n != 960 {
			t.Fatalf("packet %d: %d samples, %v", i, n, err)
		}
		for _, v := range out[:n] {
			pcm = append(pcm, float64(v))
		}
	}
	checkTone(t, pcm, 48000, 440, 0.3)
}

func TestMicrophonePCMUFromA48kHzCardIsTheToneAt8kHz(t *testing.T) {
	card := &fakePCM{freq: 500, amp: 0.5}
	mic := newFakeMic(t, card, MicrophoneOptions{Encoding: AudioPCMU})
	frames := readFrames(t, mic, 40)
	var pcm []float64
	for i, f := range frames {
		if len(f) != 160 {
			t.Fatalf("frame %d: %d bytes, want 160", i, len(f))
		}
		for _, u := range f {
			pcm = append(pcm, float64(mulawDecode(u))/32768)
		}
	}
	// Averaging 6 samples attenuates 500 Hz by sinc(500*6/48000) (< 1%).
	checkTone(t, pcm, 8000, 500, 0.5)
	if ffmpeg, err := lookPath("ffmpeg"); err == nil {
		checkTone(t, ffmpegDecode(t, ffmpeg, bytes.NewReader(bytes.Join(frames, nil)),
			"-f", "mulaw", "-ar", "8000", "-ac", "1"), 48000, 500, 0.5)
	}
}

func TestMicrophoneCloseReleasesTheCardAndUnblocksARead(t *testing.T) {
	card := &fakePCM{freq: 440, amp: 0.3, block: true}
	mic := newFakeMic(t, card, MicrophoneOptions{})
	st := mustOpen(t, mic)
	if _, err := mic.Open(); !errors.Is(err, ErrBusy) {
		t.Errorf("second Open: %v, want ErrBusy", err)
	}
	done := readAsync(st)
	time.Sleep(10 * time.Millisecond)
	st.Close()
	select {
	case err := <-done:
		if !errors.Is(err, device.ErrStreamClosed) {
			t.Errorf("pending ReadFrame after Close: %v, want ErrStreamClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock ReadFrame")
	}
	if card.isOpen() || mic.IsOpen() || card.closes != 1 {
		t.Errorf("after Close: card open %v, mic open %v, %d card closes", card.isOpen(), mic.IsOpen(), card.closes)
	}
	st.Close()
	if card.closes != 1 {
		t.Errorf("a second Close closed the card again")
	}
}

func TestMicrophoneReadFrameAllocatesNothing(t *testing.T) {
	for _, enc := range []AudioEncoding{AudioOpus, AudioPCMU} {
		st := mustOpen(t, newFakeMic(t, &fakePCM{freq: 440, amp: 0.3}, MicrophoneOptions{Encoding: enc}))
		mustRead(t, st)
		if a := testing.AllocsPerRun(50, func() { st.ReadFrame() }); a != 0 {
			t.Errorf("%v: ReadFrame allocates %v times per frame", enc, a)
		}
		st.Close()
	}
}

func TestNewMicrophoneRejectsRatesTheEncoderCannotTake(t *testing.T) {
	for _, o := range []MicrophoneOptions{
		{Rate: 44100}, {Rate: 44100, Encoding: AudioPCMU}, {Channels: 9}, {OpusBitrate: 1},
	} {
		o.Source = &fakePCM{}
		if _, err := NewMicrophone(o); err == nil {
			t.Errorf("NewMicrophone(%+v) accepted", o)
		}
	}
	if _, err := NewMicrophone(MicrophoneOptions{Rate: 16000, Source: &fakePCM{}}); err != nil {
		t.Errorf("Opus at 16 kHz: %v", err)
	}
}

// TestMicrophoneWithoutASoundCardFailsOpen documents this machine: no /proc/asound, and
// snd-aloop cannot be loaded in the container, so ALSA is only reached to see it fail.
func TestMicrophoneWithoutASoundCardFailsOpen(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ALSA is Linux only")
	}
	if _, err := os.Stat("/dev/snd/pcmC0D0c"); err == nil {
		t.Skip("this machine has a sound card: see the ALSA test on a Pi")
	}
	mic, err := NewMicrophone(MicrophoneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mic.Open()
	if !errors.Is(err, ErrGone) || !strings.Contains(err.Error(), "hw:0,0") {
		t.Fatalf("Open without a sound card: %v, want ErrGone naming hw:0,0", err)
	}
	if mic.IsOpen() {
		t.Error("a failed Open left the microphone held")
	}
}
