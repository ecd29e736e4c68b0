package camera

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/lenscap/lenscap/camera/v4l2"
	"github.com/lenscap/lenscap/device"
)

// EncoderKind chooses how a camera's raw frames are encoded.
type EncoderKind int

const (
	// EncoderAuto uses a V4L2 memory-to-memory hardware encoder when one is found, else
	// the ffmpeg software encoder; a camera that makes H.264 itself is passed through.
	EncoderAuto EncoderKind = iota
	// EncoderHardware requires a V4L2 memory-to-memory encoder (bcm2835-codec, vicodec).
	EncoderHardware
	// EncoderSoftware always uses an ffmpeg (libx264) subprocess.
	EncoderSoftware
)

func (k EncoderKind) String() string {
	switch k {
	case EncoderAuto:
		return "auto"
	case EncoderHardware:
		return "hardware"
	case EncoderSoftware:
		return "software"
	}
	return fmt.Sprintf("EncoderKind(%d)", int(k))
}

// EncoderOptions configures a camera's video encoder. The zero value is a sensible H.264
// encoder: hardware when found, else software; 2 Mbit/s; an IDR with SPS and PPS every
// second.
type EncoderOptions struct {
	// Kind chooses hardware, software or automatic; default EncoderAuto.
	Kind EncoderKind
	// Device is the memory-to-memory encoder's node ("/dev/video11"). Empty: the first node
	// whose QUERYCAP says VIDEO_M2M(_MPLANE) and whose CAPTURE queue offers CodedFormat
	// and OUTPUT queue offers the raw format. A node given here is checked the same way.
	Device string
	// CodedFormat is the hardware encoder's coded pixel format: v4l2.PixFmtH264 (default,
	// a Pi's bcm2835-codec) or v4l2.PixFmtFWHT (vicodec, for tests on the emulated board;
	// its frames are not H.264 and are labelled video/x-fwht).
	CodedFormat uint32
	// Bitrate is the target in bits per second; default 2,000,000. A hardware stream can
	// change it while streaming (see BitrateSetter).
	Bitrate int
	// KeyframePeriod is the number of frames from one IDR to the next; default the frame
	// rate (one a second).
	KeyframePeriod int
	// H264Profile is the hardware encoder's V4L2_CID_MPEG_VIDEO_H264_PROFILE value;
	// default v4l2.H264ProfileConstrainedBaseline. The software encoder always makes
	// constrained baseline.
	H264Profile int32
	// H264Level is the V4L2_CID_MPEG_VIDEO_H264_LEVEL value; default: the lowest level
	// that fits the size and rate.
	H264Level int32
	// FFmpeg is the software encoder's program; default "ffmpeg" on PATH.
	FFmpeg string
	// Preset is libx264's preset; default "ultrafast" (a Pi 5 or a laptop core).
	Preset string
}

func (o EncoderOptions) withDefaults(f RawFormat) EncoderOptions {
	if o.CodedFormat == 0 {
		o.CodedFormat = v4l2.PixFmtH264
	}
	if o.Bitrate == 0 {
		o.Bitrate = 2_000_000
	}
	if o.KeyframePeriod == 0 {
		o.KeyframePeriod = max(f.FrameRate, 1)
	}
	if o.H264Profile == 0 {
		o.H264Profile = v4l2.H264ProfileConstrainedBaseline
	}
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if o.Preset == "" {
		o.Preset = "ultrafast"
	}
	return o
}

// Errors of encoders and cameras callers check with errors.Is.
var (
	// ErrNoEncoder is returned by Open when EncoderHardware was asked for and no
	// memory-to-memory encoder can code the camera's frames.
	ErrNoEncoder = errors.New("no hardware video encoder (V4L2 memory-to-memory) for this format; use the software encoder")
	// ErrEncoder wraps a failure of an encoder while streaming: the hardware reported an
	// error, or the ffmpeg subprocess exited. The stream has ended.
	ErrEncoder = errors.New("video encoder failed")
	// ErrUnsupported is returned on systems without V4L2 or ALSA (not Linux).
	ErrUnsupported = errors.New("not supported on this operating system (V4L2 and ALSA need Linux)")
	// ErrFormat is returned by Open when the device cannot deliver the format, size or
	// rate asked for; the error lists what it can do.
	ErrFormat = errors.New("format not supported by the device")
)

// BitrateSetter is implemented by streams whose encoder can change its bitrate while
// streaming (the hardware encoder).
type BitrateSetter interface {
	SetBitrate(bitsPerSecond int) error
}

// h264Level is the lowest H.264 level (level_idc, and the V4L2 LEVEL control's value)
// whose macroblock limits (Table A-1) fit width x height at fps.
func h264Level(width, height, fps int) (levelIDC int, ctrl int32) {
	mbs := ((width + 15) / 16) * ((height + 15) / 16)
	for _, l := range [...]struct {
		idc, ctrl    int
		mbps, frameS int
	}{
		{30, 8, 40500, 1620}, {31, 9, 108000, 3600}, {32, 10, 216000, 5120},
		{40, 11, 245760, 8192}, {41, 12, 245760, 8192}, {42, 13, 522240, 8704},
		{50, 14, 589824, 22080}, {51, 15, 983040, 36864},
	} {
		if mbs <= l.frameS && mbs*fps <= l.mbps {
			return l.idc, int32(l.ctrl)
		}
	}
	return 51, 15
}

// h264Codec is the device.Codec of constrained-baseline H.264 at a level.
func h264Codec(levelIDC int) device.Codec {
	return device.Codec{
		MimeType:  "video/H264",
		ClockRate: 90000,
		SDPFmtpLine: fmt.Sprintf("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42c0%02x",
			levelIDC),
	}
}

// codecFor is the device.Codec of an encoder's output.
func codecFor(coded uint32, f RawFormat) device.Codec {
	if coded == v4l2.PixFmtFWHT {
		return device.Codec{MimeType: "video/x-fwht", ClockRate: 90000}
	}
	idc, _ := h264Level(f.Width, f.Height, f.FrameRate)
	return h264Codec(idc)
}

// describer keeps a driver's description of what it opened last, for logs and `doctor`.
type describer struct {
	mu   sync.Mutex
	text string
}

func (d *describer) set(s string) {
	d.mu.Lock()
	d.text = s
	d.mu.Unlock()
}

func (d *describer) get(def string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.text == "" {
		return def
	}
	return d.text
}

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
