package camera

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/lenscap/lenscap/camera/v4l2"
	"github.com/lenscap/lenscap/device"
)

// SyntheticCameraOptions configures a SyntheticCamera. The zero value is 1280x720 YU12 at
// 30 fps through the automatic encoder choice.
type SyntheticCameraOptions struct {
	// Name is the device's name in errors; default "synthetic camera".
	Name string
	// Format is the raw format generated: YU12, NV12 or YUYV; default YU12 1280x720@30.
	Format RawFormat
	// Encoder chooses and configures the encoder, as for a V4L2 camera.
	Encoder EncoderOptions
	// Clock paces the frames; nil means the real clock.
	Clock Clock
	// Logger receives the encoder choice; nil discards.
	Logger *slog.Logger
}

// SyntheticCamera is a camera whose sensor is simulated (a generated pattern of moving bars
// and a box) and whose encoder is real: the ffmpeg subprocess, or a V4L2 memory-to-memory
// encoder (vicodec on the emulated board, bcm2835-codec on a Pi). It exercises the encoders
// without a camera. It implements device.Driver; the embedded bookkeeping's methods (Opens,
// Closes, IsOpen, FailNextOpen, Vanish, Reappear) observe and break its sensor.
type SyntheticCamera struct {
	simHardware
	format  RawFormat
	encoder EncoderOptions
	log     *slog.Logger
	desc    describer
}

// NewSyntheticCamera returns a synthetic camera; it opens nothing.
func NewSyntheticCamera(opts SyntheticCameraOptions) (*SyntheticCamera, error) {
	if opts.Name == "" {
		opts.Name = "synthetic camera"
	}
	f := opts.Format
	if f.PixelFormat == 0 {
		f.PixelFormat = v4l2.PixFmtYUV420
	}
	if f.Width == 0 || f.Height == 0 {
		f.Width, f.Height = 1280, 720
	}
	if f.FrameRate == 0 {
		f.FrameRate = 30
	}
	if f.frameSize() == 0 {
		return nil, fmt.Errorf("camera: %s: %w: synthetic frames are YU12, NV12 or YUYV, not %s",
			opts.Name, ErrFormat, v4l2.FourccString(f.PixelFormat))
	}
	if f.Width%2 != 0 || f.Height%2 != 0 || f.Width > 4096 || f.Height > 4096 || f.FrameRate < 1 || f.FrameRate > 240 {
		return nil, fmt.Errorf("camera: %s: %w: %v", opts.Name, ErrFormat, f)
	}
	return &SyntheticCamera{
		simHardware: newSimHardware(opts.Name, opts.Clock, 0),
		format:      f,
		encoder:     opts.Encoder.withDefaults(f),
		log:         loggerOrDiscard(opts.Logger),
	}, nil
}

// Kind is device.KindVideo.
func (c *SyntheticCamera) Kind() device.Kind { return device.KindVideo }

// Codec is constrained-baseline H.264 at the level of the format (video/x-fwht for a FWHT
// hardware encoder).
func (c *SyntheticCamera) Codec() device.Codec {
	if c.encoder.Kind == EncoderSoftware {
		return codecFor(v4l2.PixFmtH264, c.format)
	}
	return codecFor(c.encoder.CodedFormat, c.format)
}

// Describe says what the last Open chose ("synthetic camera YU12 1280x720@30 -> software
// encoder ffmpeg libx264 (no hardware encoder)").
func (c *SyntheticCamera) Describe() string {
	return c.desc.get(fmt.Sprintf("%s %v -> %s encoder (not opened yet)", c.name, c.format, c.encoder.Kind))
}

// Open starts the generated sensor and the encoder. It fails as the simulated hardware does
// (ErrBusy, ErrGone), with ErrNoEncoder when a hardware encoder is required and missing,
// or when ffmpeg cannot be started.
func (c *SyntheticCamera) Open() (device.Stream, error) {
	s, err := c.open(c.format.FrameRate)
	if err != nil {
		return nil, err
	}
	src := newPatternRaw(s, c.format)
	st, desc, err := openEncoder(c.name, src, c.format, c.encoder, c.log)
	if err != nil {
		return nil, err
	}
	c.desc.set(fmt.Sprintf("%s %v -> %s", c.name, c.format, desc))
	return st, nil
}

// openEncoder starts the encoder o chooses on src's frames of format f, and says which.
// On error src is closed.
func openEncoder(name string, src rawStream, f RawFormat, o EncoderOptions, log *slog.Logger) (device.Stream, string, error) {
	if o.Kind != EncoderSoftware {
		st, desc, err := openHardwareEncoder(name, src, f, o)
		if err == nil {
			log.Info("camera: hardware encoder", "camera", name, "encoder", desc)
			return st, desc, nil
		}
		if o.Kind == EncoderHardware || !isNoEncoder(err) {
			src.close()
			return nil, "", err
		}
		log.Info("camera: no hardware video encoder; using the software encoder ffmpeg libx264",
			"camera", name, "reason", err)
	}
	start := time.Now()
	st, err := startFFmpeg(name, src, f, o)
	if err != nil {
		return nil, "", err
	}
	log.Debug("camera: ffmpeg started", "camera", name, "took", time.Since(start))
	return st, fmt.Sprintf("software encoder %s libx264 (%s)", o.FFmpeg, o.Preset), nil
}
