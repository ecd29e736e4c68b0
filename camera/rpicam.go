package camera

import (
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/lenscap/lenscap/camera/v4l2"
	"github.com/lenscap/lenscap/device"
)

// RPiCamOptions configures a CSI camera read through rpicam-vid (libcamera), the only way
// to get YUV or H.264 from a CSI sensor on current Raspberry Pi OS. The zero value is
// 1280x720 at 30 fps, H.264 from rpicam-vid's encoder (the Pi 4's hardware one).
type RPiCamOptions struct {
	// Name is the camera's name in errors; default "rpicam-vid".
	Name string
	// Program is the rpicam-vid executable; default "rpicam-vid" on PATH (older Raspberry
	// Pi OS: "libcamera-vid").
	Program string
	// Camera is rpicam-vid's --camera index; default 0.
	Camera int
	// Width, Height and FrameRate of the video; default 1280x720@30.
	Width, Height, FrameRate int
	// Raw makes rpicam-vid write YUV420 frames (--codec yuv420) that lenscap encodes with
	// Encoder, instead of its own H.264 (--codec h264). Width must be a multiple of 64 so
	// that rpicam-vid writes its rows unpadded.
	Raw bool
	// Encoder configures H.264: Bitrate and KeyframePeriod go to rpicam-vid (--bitrate,
	// --intra) or, with Raw, to lenscap's encoder.
	Encoder EncoderOptions
	// ExtraArgs are appended to rpicam-vid's arguments (e.g. "--hflip", "--denoise", "cdn_off").
	ExtraArgs []string
	// Logger receives the command line; nil discards.
	Logger *slog.Logger
}

// RPiCam is a CSI camera behind an rpicam-vid subprocess, started by Open and ended by the
// stream's Close. With H.264 from rpicam-vid, a keyframe cannot be requested (rpicam-vid
// takes no commands): the periodic IDR (--intra) serves requests; and an access unit is
// complete only when the next begins on the pipe, so it is handed on one frame late. It
// implements device.Driver.
type RPiCam struct {
	opts RPiCamOptions
	log  *slog.Logger
	desc describer

	mu   sync.Mutex
	open bool
}

// NewRPiCam returns a CSI camera; it starts nothing.
func NewRPiCam(opts RPiCamOptions) (*RPiCam, error) {
	if opts.Name == "" {
		opts.Name = "rpicam-vid"
	}
	if opts.Program == "" {
		opts.Program = "rpicam-vid"
	}
	if opts.Width == 0 || opts.Height == 0 {
		opts.Width, opts.Height = 1280, 720
	}
	if opts.FrameRate == 0 {
		opts.FrameRate = 30
	}
	if opts.Width%2 != 0 || opts.Height%2 != 0 || opts.FrameRate < 1 || opts.FrameRate > 240 || (opts.Raw && opts.Width%64 != 0) {
		return nil, fmt.Errorf("camera: %s: invalid size or rate %dx%d@%d (raw frames need a width that is a multiple of 64)",
			opts.Name, opts.Width, opts.Height, opts.FrameRate)
	}
	opts.Encoder = opts.Encoder.withDefaults(opts.format())
	return &RPiCam{opts: opts, log: loggerOrDiscard(opts.Logger)}, nil
}

func (o RPiCamOptions) format() RawFormat {
	return RawFormat{PixelFormat: v4l2.PixFmtYUV420, Width: o.Width, Height: o.Height, FrameRate: o.FrameRate}
}

// args is rpicam-vid's command line.
func (c *RPiCam) args() []string {
	o := c.opts
	args := []string{"-t", "0", "-n", "--camera", strconv.Itoa(o.Camera),
		"--width", strconv.Itoa(o.Width), "--height", strconv.Itoa(o.Height),
		"--framerate", strconv.Itoa(o.FrameRate), "--flush"}
	if o.Raw {
		args = append(args, "--codec", "yuv420")
	} else {
		idc, _ := h264Level(o.Width, o.Height, o.FrameRate)
		args = append(args, "--codec", "h264", "--inline", "--profile", "baseline",
			"--level", fmt.Sprintf("%d.%d", idc/10, idc%10),
			"--bitrate", strconv.Itoa(o.Encoder.Bitrate), "--intra", strconv.Itoa(o.Encoder.KeyframePeriod))
	}
	args = append(args, o.ExtraArgs...)
	return append(args, "-o", "-")
}

// Kind is device.KindVideo.
func (c *RPiCam) Kind() device.Kind { return device.KindVideo }

// Codec is constrained-baseline H.264 at the level of the size and rate.
func (c *RPiCam) Codec() device.Codec {
	if c.opts.Raw && c.opts.Encoder.Kind != EncoderSoftware {
		return codecFor(c.opts.Encoder.CodedFormat, c.opts.format())
	}
	return codecFor(v4l2.PixFmtH264, c.opts.format())
}

// Describe says what the last Open ran.
func (c *RPiCam) Describe() string {
	return c.desc.get(fmt.Sprintf("CSI camera through %s (not started yet)", c.opts.Program))
}

// IsOpen reports whether a stream holds the camera (its rpicam-vid is running or being
// reaped).
func (c *RPiCam) IsOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// Open starts rpicam-vid. It fails with ErrBusy while a stream is open.
func (c *RPiCam) Open() (device.Stream, error) {
	c.mu.Lock()
	if c.open {
		c.mu.Unlock()
		return nil, fmt.Errorf("camera: open %s: %w", c.opts.Name, ErrBusy)
	}
	c.open = true
	c.mu.Unlock()
	proc, err := startProcess(c.opts.Name, c.opts.Program, c.args(), func() {
		c.mu.Lock()
		c.open = false
		c.mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	c.log.Info("camera: started rpicam-vid", "camera", c.opts.Name, "pid", proc.cmd.Process.Pid, "args", c.args())
	if !c.opts.Raw {
		c.desc.set(fmt.Sprintf("CSI camera through %s --codec h264 (%dx%d@%d)", c.opts.Program, c.opts.Width, c.opts.Height, c.opts.FrameRate))
		return &rpicamH264Stream{proc: proc, split: newAnnexBSplitter(proc.stdout),
			duration: time.Second / time.Duration(c.opts.FrameRate)}, nil
	}
	f := c.opts.format()
	src := &processRaw{proc: proc, buf: make([]byte, f.frameSize())}
	st, desc, err := openEncoder(c.opts.Name, src, f, c.opts.Encoder, c.log)
	if err != nil {
		return nil, err
	}
	c.desc.set(fmt.Sprintf("CSI camera through %s --codec yuv420 %v -> %s", c.opts.Program, f, desc))
	return st, nil
}

// process is a running helper whose stdout carries media. Its end is physical: end kills
// its process group and reaps it before returning.
type process struct {
	name     string
	cmd      *exec.Cmd
	stdout   io.ReadCloser
	stderr   *tailBuffer
	released func()

	endOnce  sync.Once
	ended    chan struct{}
	waitOnce sync.Once // reaps the process once: after a failed read, or at end
}

// reap kills the process group and waits for it, so its stderr has been copied in full.
func (p *process) reap() {
	p.waitOnce.Do(func() {
		killGroup(p.cmd)
		p.cmd.Wait()
		groupGone(p.cmd, time.Second)
	})
}

func startProcess(name, program string, args []string, released func()) (*process, error) {
	p := &process{name: name, cmd: exec.Command(program, args...), stderr: &tailBuffer{max: 2048},
		released: released, ended: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	ownProcessGroup(p.cmd)
	var err error
	if p.stdout, err = p.cmd.StdoutPipe(); err == nil {
		err = p.cmd.Start()
	}
	if err != nil {
		released()
		return nil, fmt.Errorf("camera: open %s: start %s: %w", name, program, err)
	}
	return p, nil
}

// readErr describes why reading the process's output failed: closed, or the process died.
func (p *process) readErr(err error) error {
	select {
	case <-p.ended:
		return fmt.Errorf("camera: read %s: %w", p.name, device.ErrStreamClosed)
	default:
	}
	// The output ended or failed: the process is of no more use, and its last words are on
	// stderr, which is complete only once it has been reaped.
	p.reap()
	return fmt.Errorf("camera: read %s: %w: %s stopped (%v)%s", p.name, ErrEncoder, p.cmd.Path, err, p.stderr.suffix())
}

func (p *process) isEnded() bool {
	select {
	case <-p.ended:
		return true
	default:
		return false
	}
}

// end kills the process (group), reaps it, and releases the camera. Idempotent.
func (p *process) end() {
	p.endOnce.Do(func() {
		close(p.ended)
		p.reap()
		p.released()
	})
}

// rpicamH264Stream returns rpicam-vid's H.264, split into access units. No goroutine.
type rpicamH264Stream struct {
	proc     *process
	readMu   sync.Mutex
	split    *annexBSplitter
	asm      auAssembler
	started  bool
	duration time.Duration
}

// ReadFrame returns the next access unit (SPS and PPS before every IDR; frames before the
// first IDR skipped). Data is valid until the next ReadFrame. CaptureTime is when the
// access unit was complete on the pipe. When rpicam-vid exits it returns ErrEncoder with
// its last words.
func (s *rpicamH264Stream) ReadFrame() (device.Frame, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for {
		if s.proc.isEnded() {
			return device.Frame{}, s.proc.readErr(nil)
		}
		au, err := s.split.next()
		if err != nil {
			return device.Frame{}, s.proc.readErr(err)
		}
		au, key, ok, err := s.asm.assemble(au)
		if err != nil || !ok || (!s.started && !key) {
			continue
		}
		s.started = true
		return device.Frame{Data: au, CaptureTime: time.Now(), Duration: s.duration, Keyframe: key}, nil
	}
}

// RequestKeyframe does nothing: rpicam-vid takes no commands; its periodic IDR serves.
func (s *rpicamH264Stream) RequestKeyframe() {}

// Close kills rpicam-vid and reaps it before returning. Idempotent.
func (s *rpicamH264Stream) Close() error {
	s.proc.end()
	return nil
}

// processRaw is a rawStream of packed frames on a process's stdout.
type processRaw struct {
	proc *process
	buf  []byte
}

func (r *processRaw) next() ([]byte, time.Time, error) {
	if r.proc.isEnded() {
		return nil, time.Time{}, r.proc.readErr(nil)
	}
	if _, err := io.ReadFull(r.proc.stdout, r.buf); err != nil {
		return nil, time.Time{}, r.proc.readErr(err)
	}
	return r.buf, time.Now(), nil
}

// stop ends the process: its frames are in Go memory, safe to read after it.
func (r *processRaw) stop() { r.proc.end() }

func (r *processRaw) close() error {
	r.proc.end()
	return nil
}
