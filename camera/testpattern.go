package camera

import (
	_ "embed"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/lenscap/lenscap/device"
)

// testPatternClip is the camera's picture: 4 s of ffmpeg's testsrc2 (with a frame counter),
// 640x360 at 30 fps, H.264 constrained baseline (profile-level-id 42c01f, as libx264 writes
// it), an IDR with SPS and PPS every 30 frames, no B-frames, one slice per frame, no SEI or
// AUD, Annex-B, 222 KB. Made by scripts/make-testclip.sh. It is read, never written:
// streams hand out sub-slices of it.
//
//go:embed testdata/testpattern.h264
var testPatternClip []byte

// TestPatternOptions configures a simulated camera. The zero value is the default camera.
type TestPatternOptions struct {
	// Name is the device's name in errors; default "test pattern camera".
	Name string
	// Clock paces the frames and stamps their CaptureTime; nil means the real clock.
	Clock Clock
	// OpenLatency is how long Open takes, as a real camera's power-up and first exposure
	// (tens to hundreds of milliseconds); default 0.
	OpenLatency time.Duration
	// Clip is an Annex-B H.264 stream to loop instead of the embedded test pattern. It must
	// start with an IDR and carry SPS and PPS before every IDR; it is never modified, and
	// must not be while the driver is used. Its profile-level-id is read from its SPS.
	Clip []byte
	// FrameRate is the clip's frames per second; default 30.
	FrameRate int
}

// TestPattern is a simulated camera with its H.264 encoder: each stream loops a clip (by
// default the embedded test pattern) in real time. It implements device.Driver; the exported
// methods of the embedded bookkeeping (Opens, Closes, IsOpen, FailNextOpen, Vanish,
// Reappear) observe and break it as one would a real camera. Its methods are safe for
// concurrent use.
type TestPattern struct {
	simHardware
	clip     h264Clip
	fps      int
	duration time.Duration // of one frame
	codec    device.Codec
}

// NewTestPattern returns a simulated camera. It parses the clip into access units once and
// opens nothing; it fails only when the clip or the options are invalid.
func NewTestPattern(opts TestPatternOptions) (*TestPattern, error) {
	if opts.Name == "" {
		opts.Name = "test pattern camera"
	}
	if opts.FrameRate == 0 {
		opts.FrameRate = 30
	}
	if opts.FrameRate < 0 || opts.FrameRate > 1000 {
		return nil, fmt.Errorf("camera: %s: frame rate %d out of range 1..1000", opts.Name, opts.FrameRate)
	}
	data := opts.Clip
	if data == nil {
		data = testPatternClip
	}
	clip, err := parseH264Clip(data)
	if err != nil {
		return nil, fmt.Errorf("camera: %s: %w", opts.Name, err)
	}
	return &TestPattern{
		simHardware: newSimHardware(opts.Name, opts.Clock, opts.OpenLatency),
		clip:        clip,
		fps:         opts.FrameRate,
		duration:    time.Second / time.Duration(opts.FrameRate),
		codec: device.Codec{
			MimeType:  "video/H264",
			ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" +
				clip.profileLevelID,
		},
	}, nil
}

// Kind is device.KindVideo.
func (p *TestPattern) Kind() device.Kind { return device.KindVideo }

// Codec is H.264 at 90 kHz with the clip's real profile-level-id (42c01f for the embedded
// clip) and packetization-mode 1.
func (p *TestPattern) Codec() device.Codec { return p.codec }

// Open acquires the simulated camera and starts capture: the first frame is captured at once
// (after OpenLatency) and is an IDR with SPS and PPS, the clip's first. Open fails with an
// error wrapping ErrBusy while another stream is open, ErrGone after Vanish, or the error
// given to FailNextOpen.
func (p *TestPattern) Open() (device.Stream, error) {
	s, err := p.open(p.fps)
	if err != nil {
		return nil, err
	}
	return &testPatternStream{session: s, clip: &p.clip, duration: p.duration}, nil
}

// testPatternStream is an open TestPattern: it returns the clip's access units in order,
// looping, one per tick of the clock.
type testPatternStream struct {
	session  *simSession
	clip     *h264Clip
	duration time.Duration
	pos      int         // index of the next access unit; guarded by session.readMu
	keyReq   atomic.Bool // a keyframe was requested and not yet delivered
}

// ReadFrame blocks until the next tick of the clock (1/30 s after the previous one by
// default; a reader that falls behind gets the latest tick, not a burst) and returns the next
// access unit, stamped with the tick's time. Frame.Data is a sub-slice of the clip, valid
// forever, and must not be modified. It allocates nothing. After Close it returns an error
// wrapping device.ErrStreamClosed; after Vanish, one wrapping ErrGone.
func (s *testPatternStream) ReadFrame() (device.Frame, error) {
	s.session.readMu.Lock()
	defer s.session.readMu.Unlock()
	_, at, err := s.session.nextTick()
	if err != nil {
		return device.Frame{}, err
	}
	if s.keyReq.Swap(false) {
		s.pos = s.clip.nextKey(s.pos)
	}
	au := s.clip.aus[s.pos]
	s.pos = (s.pos + 1) % len(s.clip.aus)
	return device.Frame{Data: au.data, CaptureTime: at, Duration: s.duration, Keyframe: au.key}, nil
}

// RequestKeyframe makes the next frame an IDR, as an encoder's FORCE_KEY_FRAME: the stream
// jumps to the clip's next IDR (the picture's frame counter jumps with it). It never blocks;
// requests before the next frame give one keyframe.
func (s *testPatternStream) RequestKeyframe() { s.keyReq.Store(true) }

// Close stops capture and releases the camera before it returns, unblocking a pending
// ReadFrame. It is idempotent and always returns nil.
func (s *testPatternStream) Close() error {
	s.session.close()
	return nil
}
