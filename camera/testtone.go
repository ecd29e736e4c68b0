package camera

import (
	"fmt"
	"math"
	"time"

	"github.com/lenscap/lenscap/device"
)

// The tone is generated here rather than by pion/mediadevices' audiotest driver, which
// builds without cgo but registers itself in a global driver manager from init() on import,
// allocates a new wave.Float32Interleaved chunk for every read, paces with time.Sleep (not a
// clock a test can drive, and not interrupted by Close), and plays a fixed 480 Hz. Its
// pkg/wave types are pure Go too, but add nothing between a sine and gopus, which takes
// []float32 directly.

// AudioEncoding selects the codec of a microphone's frames. All use 20 ms frames.
type AudioEncoding int

// The audio encodings lenscap sends; every browser decodes both.
const (
	// AudioOpus is Opus (RFC 6716) of 48 kHz mono, by the pure-Go encoder gopus. It is
	// declared as opus/48000/2 in SDP, as WebRTC requires (RFC 7587); mono packets are valid.
	AudioOpus AudioEncoding = iota
	// AudioPCMU is G.711 μ-law, 8 kHz mono: 160 bytes a frame.
	AudioPCMU
)

// String is the encoding's SDP name.
func (e AudioEncoding) String() string {
	switch e {
	case AudioOpus:
		return "opus"
	case AudioPCMU:
		return "PCMU"
	}
	return fmt.Sprintf("AudioEncoding(%d)", int(e))
}

// audioFrameRate is how many frames a second a microphone delivers: 20 ms frames.
const audioFrameRate = 50

// TestToneOptions configures a simulated microphone. The zero value is the default one.
type TestToneOptions struct {
	// Name is the device's name in errors; default "test tone microphone".
	Name string
	// Encoding is the codec of the frames; default AudioOpus.
	Encoding AudioEncoding
	// Frequency is the tone's frequency in hertz, below half the sample rate (4 kHz for
	// PCMU); default 1000.
	Frequency float64
	// Amplitude is the tone's peak, a fraction of full scale in (0, 1]; default 0.25
	// (-12 dBFS).
	Amplitude float64
	// OpusBitrate is the Opus encoder's target in bits per second; default 32000.
	OpusBitrate int
	// Clock paces the frames and stamps their CaptureTime; nil means the real clock.
	Clock Clock
	// OpenLatency is how long Open takes; default 0.
	OpenLatency time.Duration
}

// TestTone is a simulated microphone with its encoder: it hears a pure sine tone, mono, and
// delivers it in 20 ms frames of Opus or PCMU in real time. It implements device.Driver; the
// exported methods of the embedded bookkeeping (Opens, Closes, IsOpen, FailNextOpen, Vanish,
// Reappear) observe and break it as one would a real microphone. Its methods are safe for
// concurrent use.
type TestTone struct {
	simHardware
	opts       TestToneOptions // defaults applied
	sampleRate int             // of the encoded audio
	codec      device.Codec
}

// NewTestTone returns a simulated microphone. It opens nothing; it fails only when the
// options are invalid.
func NewTestTone(opts TestToneOptions) (*TestTone, error) {
	if opts.Name == "" {
		opts.Name = "test tone microphone"
	}
	if opts.Frequency == 0 {
		opts.Frequency = 1000
	}
	if opts.Amplitude == 0 {
		opts.Amplitude = 0.25
	}
	if opts.OpusBitrate == 0 {
		opts.OpusBitrate = 32000
	}
	t := &TestTone{
		simHardware: newSimHardware(opts.Name, opts.Clock, opts.OpenLatency),
		opts:        opts,
	}
	codec, rate, err := audioCodec(opts.Encoding)
	if err != nil {
		return nil, fmt.Errorf("camera: %s: %w", opts.Name, err)
	}
	t.codec, t.sampleRate = codec, rate
	if !(opts.Frequency > 0 && opts.Frequency < float64(t.sampleRate)/2) {
		return nil, fmt.Errorf("camera: %s: tone frequency %g Hz out of range (0, %d)",
			opts.Name, opts.Frequency, t.sampleRate/2)
	}
	if !(opts.Amplitude > 0 && opts.Amplitude <= 1) {
		return nil, fmt.Errorf("camera: %s: tone amplitude %g out of range (0, 1]", opts.Name, opts.Amplitude)
	}
	if opts.OpusBitrate < 6000 || opts.OpusBitrate > 510000 {
		return nil, fmt.Errorf("camera: %s: opus bitrate %d out of range 6000..510000", opts.Name, opts.OpusBitrate)
	}
	return t, nil
}

// Kind is device.KindAudio.
func (t *TestTone) Kind() device.Kind { return device.KindAudio }

// Codec is audio/opus 48000/2 with "minptime=10;useinbandfec=1", or audio/PCMU 8000/1.
func (t *TestTone) Codec() device.Codec { return t.codec }

// Open acquires the simulated microphone, sets up its encoder and starts capture: the first
// frame is captured at once (after OpenLatency). Open fails with an error wrapping ErrBusy
// while another stream is open, ErrGone after Vanish, or the error given to FailNextOpen.
func (t *TestTone) Open() (device.Stream, error) {
	s, err := t.open(audioFrameRate)
	if err != nil {
		return nil, err
	}
	spf := t.sampleRate / audioFrameRate
	enc, err := newAudioEncoder(t.opts.Encoding, t.sampleRate, t.opts.OpusBitrate)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("camera: open %s: %w", t.opts.Name, err)
	}
	return &testToneStream{
		session: s,
		step:    t.opts.Frequency / float64(t.sampleRate),
		amp:     t.opts.Amplitude,
		spf:     spf,
		pcm:     make([]float32, spf),
		enc:     enc,
	}, nil
}

// testToneStream is an open TestTone.
type testToneStream struct {
	session *simSession
	step    float64       // tone cycles per sample
	amp     float64       // peak, of full scale
	spf     int           // samples per frame
	pcm     []float32     // one frame of samples; reused
	enc     *audioEncoder // used under session.readMu; its buffer is valid until the next ReadFrame
}

// ReadFrame blocks until the next 20 ms tick of the clock (a reader that falls behind gets
// the latest tick, not a burst: the audio it missed is lost, as in an overrun), and returns
// the 20 ms of tone that start at that tick, encoded: one Opus packet or 160 PCMU bytes. The
// tone's phase follows the clock, so it is continuous across frames. Frame.Data is valid until
// the next ReadFrame or Close; Keyframe is always true. It allocates nothing. After Close it
// returns an error wrapping device.ErrStreamClosed; after Vanish, one wrapping ErrGone.
func (s *testToneStream) ReadFrame() (device.Frame, error) {
	s.session.readMu.Lock()
	defer s.session.readMu.Unlock()
	for {
		n, at, err := s.session.nextTick()
		if err != nil {
			return device.Frame{}, err
		}
		s.synthesize(n)
		data, err := s.enc.encode(s.pcm)
		if err != nil {
			return device.Frame{}, fmt.Errorf("camera: read %s: %w", s.session.hw.name, err)
		}
		if data == nil { // the encoder is still filling its lookahead: no packet this tick
			continue
		}
		return device.Frame{
			Data:        data,
			CaptureTime: at,
			Duration:    time.Second / audioFrameRate,
			Keyframe:    true,
		}, nil
	}
}

// synthesize fills pcm with the tone's samples of frame n counted from the stream's start.
func (s *testToneStream) synthesize(n int64) {
	_, phase := math.Modf(float64(n) * float64(s.spf) * s.step) // in cycles, exact to 2^53 samples
	for i := range s.pcm {
		s.pcm[i] = float32(s.amp * math.Sin(2*math.Pi*phase))
		if phase += s.step; phase >= 1 {
			phase--
		}
	}
}

// RequestKeyframe does nothing: every audio frame is a keyframe. It never blocks.
func (s *testToneStream) RequestKeyframe() {}

// Close stops capture and releases the microphone before it returns, unblocking a pending
// ReadFrame. It is idempotent and always returns nil.
func (s *testToneStream) Close() error {
	s.session.close()
	return nil
}
