package device

import (
	"errors"
	"time"
)

// Kind is a kind of media, as MediaStreamTrack.kind.
type Kind string

// The two kinds a camera has.
const (
	KindVideo Kind = "video"
	KindAudio Kind = "audio"
)

// Kinds lists every kind, in a stable order.
var Kinds = [...]Kind{KindVideo, KindAudio}

// Valid reports whether k is a kind lenscap knows.
func (k Kind) Valid() bool { return k == KindVideo || k == KindAudio }

// Frame is one encoded unit of media: an H.264 access unit in Annex-B form (video), or one
// Opus or PCMU packet (audio).
type Frame struct {
	// Data is the encoded frame. It stays valid and unmodified until the next ReadFrame or
	// Close of the stream that returned it; a consumer that keeps it longer copies it.
	Data []byte
	// CaptureTime is when the frame's first sample was captured by the hardware (or the
	// simulated hardware). The privacy cut and the RTP timestamps are based on it.
	CaptureTime time.Time
	// Duration is how much media the frame holds.
	Duration time.Duration
	// Keyframe is true for a frame a decoder can start from (an IDR with SPS/PPS before it).
	// Audio frames are always keyframes.
	Keyframe bool
}

// Codec describes the encoded format a driver produces, in the terms of RTCRtpCodecParameters.
type Codec struct {
	MimeType    string // "video/H264", "audio/opus", "audio/PCMU"
	ClockRate   uint32
	Channels    uint16
	SDPFmtpLine string // the encoder's real parameters, e.g. "profile-level-id=42e01f;packetization-mode=1"
}

// Driver is a piece of capture hardware (a camera with its encoder, a microphone with its
// encoder), or its simulation. It is implemented by package camera.
type Driver interface {
	// Kind is the kind of media the driver produces.
	Kind() Kind
	// Codec is the encoded format of the frames its streams return.
	Codec() Codec
	// Open acquires the hardware and starts capture. A driver is opened at most once at a
	// time: the Source calls Open again only after the previous Stream's Close returned.
	// Open fails with a wrapped error saying which device and why when the hardware is
	// missing or busy.
	Open() (Stream, error)
}

// Stream is an open capture. Its methods may be called from different goroutines.
type Stream interface {
	// ReadFrame blocks until the next frame is captured and encoded, and returns it. The
	// first frame of a video stream is a keyframe. After Close (or once the hardware has
	// gone away) it returns an error; after Close that error wraps ErrStreamClosed.
	ReadFrame() (Frame, error)
	// RequestKeyframe asks for the next frame to be a keyframe. It never blocks, and
	// requests made before the next frame is captured become one keyframe.
	RequestKeyframe()
	// Close stops capture and releases the hardware (the device file is closed, the helper
	// process has exited) before it returns, and unblocks a pending ReadFrame. It is
	// idempotent.
	Close() error
}

// Errors callers check with errors.Is.
var (
	// ErrStreamClosed is returned by Stream.ReadFrame after Close.
	ErrStreamClosed = errors.New("device: stream closed")
	// ErrTrackEnded is returned when a track is used after it ended.
	ErrTrackEnded = errors.New("device: track ended")
	// ErrButtonWins refuses a remote lift of privacy the button engaged.
	ErrButtonWins = errors.New("privacy was engaged by the button and can only be lifted by the button")
	// ErrInvalidChange is a privacy change that names no kind or an unknown one.
	ErrInvalidChange = errors.New("device: invalid privacy change")
)
