//go:build linux

package camera

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lenscap/lenscap/camera/v4l2"
	"github.com/lenscap/lenscap/device"
)

// captureStallTimeout is how long a capture may go without a frame before it is reported
// as gone (a camera that stopped delivering without an error).
const captureStallTimeout = 2 * time.Second

// Open finds and opens the camera, negotiates format, size and rate, starts streaming and
// starts the encoder. When the encoder cannot start, the camera is closed again.
func (c *V4L2Camera) Open() (device.Stream, error) {
	capt, err := openCapture(c.opts, c.log)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("V4L2 camera %s (%s, %s) %v", capt.node.Path, capt.node.Driver(), capt.node.Card(), capt.format)
	if capt.format.PixelFormat == v4l2.PixFmtH264 {
		c.desc.set(what + " -> passed through (the camera encodes H.264)")
		c.log.Info("camera: passing the camera's H.264 through", "camera", c.opts.Name, "device", capt.node.Path)
		return &passthroughStream{name: c.opts.Name, src: capt,
			duration: time.Second / time.Duration(capt.format.FrameRate)}, nil
	}
	st, desc, err := openEncoder(c.opts.Name, capt, capt.format, c.opts.Encoder, c.log)
	if err != nil {
		return nil, err
	}
	c.desc.set(what + " -> " + desc)
	return st, nil
}

// v4l2Capture is an open, streaming V4L2 capture node: a rawStream.
type v4l2Capture struct {
	name   string
	dev    *v4l2.Device
	node   v4l2.Node
	q      *v4l2.Queue
	format RawFormat // what the driver set; FrameRate as it said
	stride int       // bytes per line of the first plane
	planeH int
	packed []byte // the frame repacked without padding, when the driver pads; reused

	mu        sync.Mutex // held by next, and by close while it releases the device
	held      int        // buffer handed out by next, -1 for none
	closed    atomic.Bool
	closeOnce sync.Once
}

// captureOrder is the order pixel formats are preferred in when none is asked for.
var captureOrder = []uint32{v4l2.PixFmtH264, v4l2.PixFmtYUV420, v4l2.PixFmtNV12, v4l2.PixFmtYUYV, v4l2.PixFmtMJPEG}

func isCaptureNode(n v4l2.Node) bool {
	return n.Caps&(v4l2.CapVideoCapture|v4l2.CapVideoCaptureMplane) != 0 &&
		n.Caps&(v4l2.CapVideoM2M|v4l2.CapVideoM2MMplane) == 0 && n.Caps&v4l2.CapStreaming != 0
}

// findCamera returns the capture node the options name or match.
func findCamera(o V4L2CameraOptions) (v4l2.Node, error) {
	matches := func(n v4l2.Node) bool {
		return isCaptureNode(n) && (o.Driver == "" || n.Driver() == o.Driver) &&
			(o.Card == "" || strings.Contains(n.Card(), o.Card))
	}
	if o.Device != "" {
		n, err := v4l2.Describe(o.Device)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
			return n, fmt.Errorf("%w: %v", ErrGone, err)
		}
		if errors.Is(err, unix.EBUSY) {
			return n, fmt.Errorf("%w: %v", ErrBusy, err)
		}
		if err != nil {
			return n, err
		}
		if !matches(n) {
			return n, fmt.Errorf("%s (driver %s, card %q, caps %#x) is not a streaming capture device matching driver %q card %q",
				n.Path, n.Driver(), n.Card(), n.Caps, o.Driver, o.Card)
		}
		return n, nil
	}
	nodes, err := v4l2.Find(matches)
	if err != nil {
		return v4l2.Node{}, err
	}
	if len(nodes) == 0 {
		return v4l2.Node{}, fmt.Errorf("%w: no V4L2 capture device among /dev/video* (driver %q, card %q)", ErrGone, o.Driver, o.Card)
	}
	return nodes[0], nil
}

// openCapture opens, configures and starts a capture node. On error everything it set up
// is released.
func openCapture(o V4L2CameraOptions, log interface{ Warn(string, ...any) }) (_ *v4l2Capture, err error) {
	node, err := findCamera(o)
	if err != nil {
		return nil, fmt.Errorf("camera: open %s: %w", o.Name, err)
	}
	errorf := func(format string, a ...any) error {
		return fmt.Errorf("camera: open %s (%s, %s): "+format, append([]any{o.Name, node.Path, node.Card()}, a...)...)
	}
	want, err := captureFormat(o, node)
	if err != nil {
		return nil, errorf("%w", err)
	}
	dev, err := v4l2.Open(node.Path)
	if errors.Is(err, unix.EBUSY) {
		return nil, errorf("%w", ErrBusy)
	}
	if err != nil {
		return nil, errorf("%w", err)
	}
	c := &v4l2Capture{name: o.Name, dev: dev, node: node, held: -1}
	defer func() {
		if err != nil {
			c.release()
		}
	}()
	bufType := uint32(v4l2.BufTypeVideoCapture)
	if node.Caps&v4l2.CapVideoCapture == 0 {
		bufType = v4l2.BufTypeVideoCaptureMplane
	}
	if err := c.setFormat(bufType, want, log); err != nil {
		return nil, errorf("%w", err)
	}
	if err := c.startStreaming(bufType, o.Buffers); err != nil {
		return nil, errorf("%w", err)
	}
	return c, nil
}

// captureFormat is the raw format to ask of node: o.Format, with the pixel format the
// node offers first in captureOrder when o names none. H.264 is taken only with the
// automatic encoder, which passes it through; a chosen encoder needs raw frames.
func captureFormat(o V4L2CameraOptions, node v4l2.Node) (RawFormat, error) {
	want := o.Format
	if want.PixelFormat != 0 {
		if !v4l2.Has(node.Input, want.PixelFormat) {
			return want, fmt.Errorf("%w: no %s; it offers %s", ErrFormat, v4l2.FourccString(want.PixelFormat), v4l2.FormatList(node.Input))
		}
		return want, nil
	}
	for _, p := range captureOrder {
		if p == v4l2.PixFmtH264 && o.Encoder.Kind != EncoderAuto {
			continue
		}
		if v4l2.Has(node.Input, p) {
			want.PixelFormat = p
			return want, nil
		}
	}
	return want, fmt.Errorf("%w: it offers %s; lenscap reads H264, YU12, NV12, YUYV or MJPG", ErrFormat, v4l2.FormatList(node.Input))
}

// setFormat asks the driver for want and records the layout it set. The size must be
// exactly want's (frames are not scaled); the frame rate may differ, and is then taken as
// the driver's, with a warning. Rows the driver pads get a buffer to repack frames into.
func (c *v4l2Capture) setFormat(bufType uint32, want RawFormat, log interface{ Warn(string, ...any) }) error {
	mplane := bufType == v4l2.BufTypeVideoCaptureMplane
	f := v4l2.Format{Type: bufType}
	if mplane {
		p := f.PixMplane()
		p.Width, p.Height, p.PixelFormat, p.Field, p.NumPlanes = uint32(want.Width), uint32(want.Height), want.PixelFormat, v4l2.FieldNone, 1
	} else {
		p := f.Pix()
		p.Width, p.Height, p.PixelFormat, p.Field = uint32(want.Width), uint32(want.Height), want.PixelFormat, v4l2.FieldNone
	}
	if err := c.dev.SetFormat(&f); errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%w: %v", ErrBusy, err)
	} else if err != nil {
		return err
	}
	pix, w, h, planes := formatOf(&f, mplane)
	if pix != want.PixelFormat || int(w) != want.Width || int(h) != want.Height || planes != 1 {
		return fmt.Errorf("%w: asked %v, the driver set %s %dx%d in %d planes; it offers %s at %s", ErrFormat, want,
			v4l2.FourccString(pix), w, h, planes, v4l2.FourccString(want.PixelFormat),
			strings.Join(c.dev.FrameSizes(want.PixelFormat), ", "))
	}
	if mplane {
		c.stride = int(f.PixMplane().PlaneFmt[0].BytesPerLine)
	} else {
		c.stride = int(f.Pix().BytesPerLine)
	}
	c.planeH = int(h)
	c.format = want
	if fps, err := c.dev.SetFrameRate(bufType, want.FrameRate); err == nil && fps > 0 && int(fps+0.5) != want.FrameRate {
		log.Warn("camera: the driver set another frame rate", "camera", c.name, "asked", want.FrameRate, "set", fps)
		c.format.FrameRate = max(int(fps+0.5), 1)
	}
	if n := c.format.frameSize(); c.stride > 0 && needsRepack(c.format, c.stride) {
		c.packed = make([]byte, n)
	}
	return nil
}

// startStreaming maps n buffers, queues them all for the driver to fill, and starts
// capture.
func (c *v4l2Capture) startStreaming(bufType uint32, n int) (err error) {
	if c.q, err = v4l2.NewQueue(c.dev, bufType, uint32(n)); err != nil {
		return err
	}
	for i := range c.q.Buffers {
		if err := c.q.Enqueue(uint32(i), v4l2.Timeval{}); err != nil {
			return err
		}
	}
	return c.dev.StreamOn(bufType)
}

// needsRepack reports whether frames of f with this stride carry row padding.
func needsRepack(f RawFormat, stride int) bool {
	row := f.Width
	if f.PixelFormat == v4l2.PixFmtYUYV {
		row = 2 * f.Width
	}
	return f.frameSize() > 0 && stride != row
}

// next returns the next captured frame, packed, with its capture time.
func (c *v4l2Capture) next() ([]byte, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, time.Time{}, fmt.Errorf("camera: read %s: %w", c.name, device.ErrStreamClosed)
	}
	if c.held >= 0 {
		i := uint32(c.held)
		c.held = -1
		if err := c.q.Enqueue(i, v4l2.Timeval{}); err != nil {
			return nil, time.Time{}, c.readErr(err)
		}
	}
	for {
		d, err := c.q.Dequeue()
		if err == nil {
			c.held = int(d.Index)
			if d.Flags&v4l2.BufFlagError != 0 { // a corrupt frame: skip it
				c.q.Enqueue(d.Index, v4l2.Timeval{})
				c.held = -1
				continue
			}
			data := c.q.Data(d)
			if c.packed != nil {
				data = packRaw(c.packed, data, c.format, c.stride, c.planeH)
			}
			return data, captureTime(d.Timestamp), nil
		}
		if err != unix.EAGAIN {
			return nil, time.Time{}, c.readErr(err)
		}
		ev, err := c.dev.Wait(unix.POLLIN, int(captureStallTimeout/time.Millisecond))
		if err != nil {
			return nil, time.Time{}, c.readErr(err)
		}
		if ev == 0 {
			return nil, time.Time{}, fmt.Errorf("camera: read %s: %w: no frame from %s for %v", c.name, ErrGone, c.node.Path, captureStallTimeout)
		}
		if ev&(unix.POLLERR|unix.POLLHUP) != 0 && ev&unix.POLLIN == 0 {
			return nil, time.Time{}, fmt.Errorf("camera: read %s: %w: %s reported an error (poll %#x)", c.name, ErrGone, c.node.Path, ev)
		}
	}
}

// readErr classifies a capture error: closed, gone (ENODEV: unplugged), or as is.
func (c *v4l2Capture) readErr(err error) error {
	if c.closed.Load() || errors.Is(err, v4l2.ErrWoken) {
		return fmt.Errorf("camera: read %s: %w", c.name, device.ErrStreamClosed)
	}
	if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EIO) || errors.Is(err, unix.EPIPE) {
		return fmt.Errorf("camera: read %s: %w: %v", c.name, ErrGone, err)
	}
	return fmt.Errorf("camera: read %s: %w", c.name, err)
}

// captureTime converts a buffer's CLOCK_MONOTONIC timestamp to wall time; the current
// time when the driver gave none.
func captureTime(ts v4l2.Timeval) time.Time {
	now := time.Now()
	if ts.Sec == 0 && ts.Usec == 0 {
		return now
	}
	var mono unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono) != nil {
		return now
	}
	age := time.Duration(mono.Nano() - (ts.Sec*1e9 + ts.Usec*1e3))
	if age < 0 || age > time.Second {
		return now
	}
	return now.Add(-age)
}

// stop makes a pending next, and every later one, return an error; the buffers stay mapped
// until close.
func (c *v4l2Capture) stop() {
	c.closed.Store(true)
	c.dev.Wake()
}

// close stops streaming, unmaps the buffers and closes the device file before it returns;
// it unblocks a pending next. Idempotent.
func (c *v4l2Capture) close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.dev.Wake()
		c.mu.Lock()
		c.release()
		c.mu.Unlock()
	})
	return nil
}

func (c *v4l2Capture) release() {
	if c.q != nil {
		c.dev.StreamOff(c.q.Type)
		c.q.Release()
		c.q = nil
	}
	c.dev.Close()
}

// passthroughStream is a camera that encodes H.264 itself (a UVC H.264 camera): its
// buffers are access units, completed with SPS and PPS before IDRs. No goroutine.
type passthroughStream struct {
	name     string
	src      *v4l2Capture
	asm      auAssembler
	duration time.Duration
	started  bool // a keyframe was returned
	keyReq   atomic.Bool
}

// ReadFrame returns the camera's next access unit; frames before the first IDR are
// skipped, so the first frame is a keyframe. Data is the capture buffer, valid until the
// next ReadFrame or Close. A keyframe request is passed to the camera as
// V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, which many UVC cameras ignore (they send an IDR on
// their own period).
func (s *passthroughStream) ReadFrame() (device.Frame, error) {
	for {
		if s.keyReq.Swap(false) {
			s.src.mu.Lock()
			if !s.src.closed.Load() {
				s.src.dev.SetControl(v4l2.CIDForceKeyFrame, 1)
			}
			s.src.mu.Unlock()
		}
		data, at, err := s.src.next()
		if err != nil {
			return device.Frame{}, err
		}
		au, key, ok, err := s.asm.assemble(data)
		if err != nil || !ok || (!s.started && !key) {
			continue
		}
		s.started = true
		return device.Frame{Data: au, CaptureTime: at, Duration: s.duration, Keyframe: key}, nil
	}
}

// RequestKeyframe asks the camera for an IDR; it never blocks.
func (s *passthroughStream) RequestKeyframe() { s.keyReq.Store(true) }

// Close stops capture and closes the device before it returns. Idempotent.
func (s *passthroughStream) Close() error { return s.src.close() }
