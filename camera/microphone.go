package camera

import (
	"fmt"
	"sync"
	"time"

	"github.com/lenscap/lenscap/device"
)

// PCMReader is an open capture of interleaved signed 16-bit PCM: an ALSA device, or a fake
// in tests. Close may be called while ReadPCM blocks; ReadPCM then returns within one
// period.
type PCMReader interface {
	// ReadPCM fills buf (whole frames of all channels) and returns when the first sample
	// of it was captured.
	ReadPCM(buf []int16) (time.Time, error)
	// Close releases the device before it returns.
	Close() error
}

// PCMSource opens PCM captures: the microphone's hardware.
type PCMSource interface {
	// OpenPCM opens a capture of rate samples a second of channels channels, in periods
	// of periodFrames frames.
	OpenPCM(rate, channels, periodFrames int) (PCMReader, error)
}

// MicrophoneOptions configures a microphone. The zero value is ALSA hw:0,0, mono, 48 kHz,
// Opus at 32 kbit/s.
type MicrophoneOptions struct {
	// Name is the microphone's name in errors; default "hw:CARD,DEVICE".
	Name string
	// Card and Device are the ALSA hardware device (hw:Card,Device). gen2brain/alsa opens
	// hardware directly, without plug or dsnoop: rate and channels must be the card's.
	Card, Device uint
	// Rate is the capture rate; default 48000. Opus takes 8000, 12000, 16000, 24000 or
	// 48000 (its RTP clock stays 48 kHz); PCMU takes any multiple of 8000, averaged down.
	Rate int
	// Channels is the card's channel count; default 1. Channels are mixed to mono.
	Channels int
	// Encoding is Opus (default) or PCMU.
	Encoding AudioEncoding
	// OpusBitrate is the Opus target in bits per second; default 32000.
	OpusBitrate int
	// Source opens the PCM capture; nil means ALSA (Linux only).
	Source PCMSource
}

// Microphone is a PCM capture device with its audio encoder, in 20 ms frames. It
// implements device.Driver.
type Microphone struct {
	opts      MicrophoneOptions
	codec     device.Codec
	encRate   int // the encoder's sample rate
	decimate  int // capture samples per encoded sample
	mu        sync.Mutex
	open      bool
	opens     uint64
	closes    uint64
	framesPer int // capture frames per 20 ms
}

// NewMicrophone returns a microphone; it opens nothing.
func NewMicrophone(opts MicrophoneOptions) (*Microphone, error) {
	if opts.Name == "" {
		opts.Name = fmt.Sprintf("hw:%d,%d", opts.Card, opts.Device)
	}
	if opts.Rate == 0 {
		opts.Rate = 48000
	}
	if opts.Channels == 0 {
		opts.Channels = 1
	}
	if opts.OpusBitrate == 0 {
		opts.OpusBitrate = 32000
	}
	if opts.Source == nil {
		opts.Source = alsaSource{card: opts.Card, device: opts.Device}
	}
	codec, _, err := audioCodec(opts.Encoding)
	if err != nil {
		return nil, fmt.Errorf("camera: %s: %w", opts.Name, err)
	}
	m := &Microphone{opts: opts, codec: codec, framesPer: opts.Rate / audioFrameRate}
	switch {
	case opts.Channels < 1 || opts.Channels > 8:
		return nil, fmt.Errorf("camera: %s: %d channels out of range 1..8", opts.Name, opts.Channels)
	case opts.OpusBitrate < 6000 || opts.OpusBitrate > 510000:
		return nil, fmt.Errorf("camera: %s: opus bitrate %d out of range 6000..510000", opts.Name, opts.OpusBitrate)
	case opts.Encoding == AudioPCMU && opts.Rate%8000 == 0 && opts.Rate > 0:
		m.encRate, m.decimate = 8000, opts.Rate/8000
	case opts.Encoding == AudioOpus && (opts.Rate == 8000 || opts.Rate == 12000 || opts.Rate == 16000 ||
		opts.Rate == 24000 || opts.Rate == 48000):
		m.encRate, m.decimate = opts.Rate, 1
	default:
		return nil, fmt.Errorf("camera: %s: %v cannot take %d Hz (Opus: 8000, 12000, 16000, 24000, 48000; PCMU: multiples of 8000)",
			opts.Name, opts.Encoding, opts.Rate)
	}
	return m, nil
}

// Kind is device.KindAudio.
func (m *Microphone) Kind() device.Kind { return device.KindAudio }

// Codec is audio/opus 48000/2 or audio/PCMU 8000/1.
func (m *Microphone) Codec() device.Codec { return m.codec }

// IsOpen reports whether a stream holds the microphone.
func (m *Microphone) IsOpen() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.open
}

// Describe names the device and encoding.
func (m *Microphone) Describe() string {
	return fmt.Sprintf("microphone %s, %d Hz x%d -> %v", m.opts.Name, m.opts.Rate, m.opts.Channels, m.opts.Encoding)
}

// Open opens the PCM device and the encoder. It fails with ErrBusy while a stream is open.
func (m *Microphone) Open() (device.Stream, error) {
	m.mu.Lock()
	if m.open {
		m.mu.Unlock()
		return nil, fmt.Errorf("camera: open %s: %w", m.opts.Name, ErrBusy)
	}
	m.open = true
	m.mu.Unlock()
	fail := func(err error) (device.Stream, error) {
		m.mu.Lock()
		m.open = false
		m.mu.Unlock()
		return nil, fmt.Errorf("camera: open %s: %w", m.opts.Name, err)
	}
	enc, err := newAudioEncoder(m.opts.Encoding, m.encRate, m.opts.OpusBitrate)
	if err != nil {
		return fail(err)
	}
	r, err := m.opts.Source.OpenPCM(m.opts.Rate, m.opts.Channels, m.framesPer)
	if err != nil {
		return fail(err)
	}
	m.mu.Lock()
	m.opens++
	m.mu.Unlock()
	return &micStream{mic: m, r: r, enc: enc, raw: make([]int16, m.framesPer*m.opts.Channels),
		pcm: make([]float32, m.encRate/audioFrameRate), closed: make(chan struct{})}, nil
}

// micStream is an open microphone. Frames are read and encoded inside ReadFrame.
type micStream struct {
	mic       *Microphone
	r         PCMReader
	enc       *audioEncoder
	raw       []int16   // one period of capture; reused
	pcm       []float32 // mono at the encoder's rate; reused
	readMu    sync.Mutex
	closed    chan struct{}
	closeOnce sync.Once
}

// ReadFrame reads 20 ms of PCM, mixes it to mono (and averages it down to 8 kHz for PCMU)
// and returns it encoded. Data is valid until the next ReadFrame. It allocates nothing.
// A capture error ends the stream; after Close it returns device.ErrStreamClosed.
func (s *micStream) ReadFrame() (device.Frame, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for {
		if err := s.closedErr(); err != nil {
			return device.Frame{}, err
		}
		at, err := s.r.ReadPCM(s.raw)
		if err != nil {
			if e := s.closedErr(); e != nil {
				return device.Frame{}, e
			}
			return device.Frame{}, fmt.Errorf("camera: read %s: %w", s.mic.opts.Name, err)
		}
		s.mix()
		data, err := s.enc.encode(s.pcm)
		if err != nil {
			return device.Frame{}, fmt.Errorf("camera: read %s: %w", s.mic.opts.Name, err)
		}
		if data == nil {
			continue
		}
		return device.Frame{Data: data, CaptureTime: at, Duration: time.Second / audioFrameRate, Keyframe: true}, nil
	}
}

// mix averages channels and decimate consecutive samples into each output sample.
func (s *micStream) mix() {
	ch, dec := s.mic.opts.Channels, s.mic.decimate
	scale := 1 / float32(ch*dec*32768)
	for i := range s.pcm {
		var sum int32
		for _, v := range s.raw[i*ch*dec : (i+1)*ch*dec] {
			sum += int32(v)
		}
		s.pcm[i] = float32(sum) * scale
	}
}

func (s *micStream) closedErr() error {
	select {
	case <-s.closed:
		return fmt.Errorf("camera: read %s: %w", s.mic.opts.Name, device.ErrStreamClosed)
	default:
		return nil
	}
}

// RequestKeyframe does nothing: every audio frame is a keyframe.
func (s *micStream) RequestKeyframe() {}

// Close closes the PCM device before it returns (a pending ReadFrame returns within one
// period). Idempotent.
func (s *micStream) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		err = s.r.Close()
		s.readMu.Lock() // the pending read has let go of the device
		s.readMu.Unlock()
		s.mic.mu.Lock()
		s.mic.open = false
		s.mic.closes++
		s.mic.mu.Unlock()
	})
	return err
}
