package camera

import (
	"fmt"
	"log/slog"

	"github.com/lenscap/lenscap/camera/v4l2"
	"github.com/lenscap/lenscap/device"
)

// V4L2CameraOptions configures a V4L2 camera (a USB UVC camera, vivid on the emulated
// board). The zero value is the first capture device, 1280x720 at 30 fps, in the first of
// H.264 (passed through), YU12, NV12, YUYV, MJPG it offers, encoded as EncoderAuto decides.
type V4L2CameraOptions struct {
	// Name is the camera's name in errors and logs; default the device path.
	Name string
	// Device is the capture node ("/dev/video0"). Empty: the first /dev/video* node whose
	// QUERYCAP says VIDEO_CAPTURE(_MPLANE) and STREAMING and that matches Driver and Card.
	Device string
	// Driver, when set, is the QUERYCAP driver name the node must have ("uvcvideo",
	// "vivid"); it picks among several nodes when Device is empty.
	Driver string
	// Card, when set, must be a substring of the node's QUERYCAP card name.
	Card string
	// Format is what to capture; a zero PixelFormat picks one (see above), zero sizes
	// mean 1280x720, a zero rate 30. Open fails with ErrFormat, listing what the camera
	// offers, when the driver sets another pixel format or size; a different frame rate is
	// accepted and logged.
	Format RawFormat
	// Buffers is the number of capture buffers; default 4.
	Buffers int
	// Encoder chooses and configures the encoder. H.264 from the camera is passed through.
	Encoder EncoderOptions
	// PassthroughProfileLevelID is the SDP profile-level-id declared for a camera's own
	// H.264 before its first SPS is seen; default "42e01f".
	PassthroughProfileLevelID string
	// Logger receives the choices made at Open; nil discards.
	Logger *slog.Logger
}

// V4L2Camera is a V4L2 capture device with its encoder: a hardware memory-to-memory
// encoder, the ffmpeg software encoder, or none for a camera that makes H.264 itself. It
// implements device.Driver; nothing is opened before Open.
type V4L2Camera struct {
	opts V4L2CameraOptions
	log  *slog.Logger
	desc describer
}

// NewV4L2Camera returns a camera; it opens nothing and fails only on invalid options.
func NewV4L2Camera(opts V4L2CameraOptions) (*V4L2Camera, error) {
	if opts.Format.Width == 0 || opts.Format.Height == 0 {
		opts.Format.Width, opts.Format.Height = 1280, 720
	}
	if opts.Format.FrameRate == 0 {
		opts.Format.FrameRate = 30
	}
	if opts.Buffers == 0 {
		opts.Buffers = 4
	}
	if opts.PassthroughProfileLevelID == "" {
		opts.PassthroughProfileLevelID = "42e01f"
	}
	if opts.Name == "" {
		opts.Name = opts.Device
		if opts.Name == "" {
			opts.Name = "V4L2 camera"
		}
	}
	f := opts.Format
	if f.Width < 16 || f.Height < 16 || f.Width > 8192 || f.Height > 8192 || f.FrameRate < 1 || f.FrameRate > 240 ||
		opts.Buffers < 2 || opts.Buffers > 32 {
		return nil, fmt.Errorf("camera: %s: invalid options: %v, %d buffers", opts.Name, f, opts.Buffers)
	}
	opts.Encoder = opts.Encoder.withDefaults(f)
	return &V4L2Camera{opts: opts, log: loggerOrDiscard(opts.Logger)}, nil
}

// Kind is device.KindVideo.
func (c *V4L2Camera) Kind() device.Kind { return device.KindVideo }

// Codec is H.264 (constrained baseline at the format's level when lenscap encodes; the
// configured profile-level-id for a camera's own H.264), or video/x-fwht for a FWHT
// hardware encoder.
func (c *V4L2Camera) Codec() device.Codec {
	if c.opts.Format.PixelFormat == v4l2.PixFmtH264 {
		return device.Codec{MimeType: "video/H264", ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + c.opts.PassthroughProfileLevelID}
	}
	if c.opts.Encoder.Kind == EncoderSoftware {
		return codecFor(v4l2.PixFmtH264, c.opts.Format)
	}
	return codecFor(c.opts.Encoder.CodedFormat, c.opts.Format)
}

// Describe says what the last Open used: device, driver, format and encoder.
func (c *V4L2Camera) Describe() string {
	return c.desc.get(fmt.Sprintf("%s (not opened yet; encoder %s)", c.opts.Name, c.opts.Encoder.Kind))
}
