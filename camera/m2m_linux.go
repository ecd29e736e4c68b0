//go:build linux

package camera

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lenscap/lenscap/camera/v4l2"
	"github.com/lenscap/lenscap/device"
)

// The memory-to-memory stateful encoder (V4L2 "Memory-to-Memory Stateful Video Encoder
// Interface"): raw frames are queued on its OUTPUT queue, coded frames come back on its
// CAPTURE queue. The flow, per the kernel documentation and bcm2835-codec: S_FMT CAPTURE
// (coded) then OUTPUT (raw), S_PARM, controls, REQBUFS and mmap both queues, queue every
// CAPTURE buffer, STREAMON both; then per frame copy into a free OUTPUT buffer, QBUF, poll,
// DQBUF CAPTURE (and reclaim OUTPUT buffers). Buffers are mapped once and reused.

const (
	m2mOutputBuffers  = 4
	m2mCaptureBuffers = 4
	// m2mStallFrames is how many raw frames the encoder may take without giving a coded
	// one before the stream fails.
	m2mStallFrames = 30
)

// findEncoder returns the node of a memory-to-memory encoder that codes raw frames of f
// into o.CodedFormat: o.Device when it can, else the first such node.
func findEncoder(f RawFormat, o EncoderOptions) (v4l2.Node, error) {
	fits := func(n v4l2.Node) bool {
		return n.Caps&(v4l2.CapVideoM2M|v4l2.CapVideoM2MMplane) != 0 &&
			v4l2.Has(n.Input, o.CodedFormat) && v4l2.Has(n.Output, f.PixelFormat)
	}
	want := fmt.Sprintf("a V4L2 memory-to-memory node coding %s to %s",
		v4l2.FourccString(f.PixelFormat), v4l2.FourccString(o.CodedFormat))
	if o.Device != "" {
		n, err := v4l2.Describe(o.Device)
		if err != nil {
			return v4l2.Node{}, fmt.Errorf("%w: %v", ErrNoEncoder, err)
		}
		if !fits(n) {
			return v4l2.Node{}, fmt.Errorf("%w: %s (%s) is not %s (raw in: %s; coded out: %s)", ErrNoEncoder,
				n.Path, n.Card(), want, v4l2.FormatList(n.Output), v4l2.FormatList(n.Input))
		}
		return n, nil
	}
	var seen []string
	nodes, err := v4l2.Find(func(n v4l2.Node) bool {
		if n.Caps&(v4l2.CapVideoM2M|v4l2.CapVideoM2MMplane) != 0 {
			seen = append(seen, fmt.Sprintf("%s %s (%s -> %s)", n.Path, n.Card(),
				v4l2.FormatList(n.Output), v4l2.FormatList(n.Input)))
		}
		return fits(n)
	})
	if err != nil {
		return v4l2.Node{}, fmt.Errorf("%w: %v", ErrNoEncoder, err)
	}
	if len(nodes) == 0 {
		found := "none"
		if len(seen) > 0 {
			found = strings.Join(seen, "; ")
		}
		return v4l2.Node{}, fmt.Errorf("%w: no %s among /dev/video* (memory-to-memory nodes: %s)", ErrNoEncoder, want, found)
	}
	return nodes[0], nil
}

func isNoEncoder(err error) bool { return errors.Is(err, ErrNoEncoder) }

// openHardwareEncoder finds and sets up a memory-to-memory encoder for src's frames. It
// does not close src on error (the caller may fall back to software).
func openHardwareEncoder(name string, src rawStream, f RawFormat, o EncoderOptions) (device.Stream, string, error) {
	node, err := findEncoder(f, o)
	if err != nil {
		return nil, "", fmt.Errorf("camera: open %s: %w", name, err)
	}
	e, err := newM2MEncoder(node, f, o)
	if err != nil {
		return nil, "", fmt.Errorf("camera: open %s: encoder %s: %w", name, node.Path, err)
	}
	st := &m2mStream{name: name, src: src, enc: e, duration: time.Second / time.Duration(max(f.FrameRate, 1)),
		closed: make(chan struct{})}
	return st, e.describe(), nil
}

// m2mEncoder is an open, streaming memory-to-memory encoder.
type m2mEncoder struct {
	dev        *v4l2.Device
	node       v4l2.Node
	raw        RawFormat
	coded      uint32
	out, cap   *v4l2.Queue
	outFmt     v4l2.Format // the raw format the driver set (strides)
	freeOut    []uint32    // OUTPUT buffers not queued
	heldCap    int         // CAPTURE buffer handed out, -1 for none
	asm        auAssembler
	unsettable []string // controls the driver refused
}

// newM2MEncoder opens node and sets it streaming for raw frames of f coded as o asks. On
// error everything it set up is released.
func newM2MEncoder(node v4l2.Node, f RawFormat, o EncoderOptions) (_ *m2mEncoder, err error) {
	dev, err := v4l2.Open(node.Path)
	if err != nil {
		return nil, err
	}
	e := &m2mEncoder{dev: dev, node: node, raw: f, coded: o.CodedFormat, heldCap: -1}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	outType, capType := uint32(v4l2.BufTypeVideoOutput), uint32(v4l2.BufTypeVideoCapture)
	if node.Caps&v4l2.CapVideoM2MMplane != 0 {
		outType, capType = v4l2.BufTypeVideoOutputMplane, v4l2.BufTypeVideoCaptureMplane
	}
	if err := e.setFormats(outType, capType, o); err != nil {
		return nil, err
	}
	dev.SetFrameRate(outType, f.FrameRate) // optional for encoders: rate control hint
	e.setControls(o)
	if err := e.startStreaming(outType, capType); err != nil {
		return nil, err
	}
	return e, nil
}

// m2mFormats are the formats asked of the encoder: coded on its CAPTURE queue (capType),
// raw frames of f on its OUTPUT queue (outType). A coded buffer holds 3/4 of a luma
// plane's bytes, at least 512 KiB.
func m2mFormats(f RawFormat, coded, outType, capType uint32) (cf, rf v4l2.Format) {
	codedSize := uint32(max(f.Width*f.Height*3/4, 512<<10))
	cf = v4l2.Format{Type: capType}
	rf = v4l2.Format{Type: outType}
	if outType == v4l2.BufTypeVideoOutputMplane {
		p := cf.PixMplane()
		p.Width, p.Height, p.PixelFormat, p.Field, p.NumPlanes = uint32(f.Width), uint32(f.Height), coded, v4l2.FieldNone, 1
		p.PlaneFmt[0].SizeImage = codedSize
		r := rf.PixMplane()
		r.Width, r.Height, r.PixelFormat, r.Field, r.NumPlanes = uint32(f.Width), uint32(f.Height), f.PixelFormat, v4l2.FieldNone, 1
	} else {
		p := cf.Pix()
		p.Width, p.Height, p.PixelFormat, p.Field, p.SizeImage = uint32(f.Width), uint32(f.Height), coded, v4l2.FieldNone, codedSize
		r := rf.Pix()
		r.Width, r.Height, r.PixelFormat, r.Field = uint32(f.Width), uint32(f.Height), f.PixelFormat, v4l2.FieldNone
	}
	return cf, rf
}

// setFormats sets the coded format, then the raw one (the coded format's size decides the
// raw format's limits), and checks the driver kept both: a raw frame is copied in by
// layout, so any other format would be coded as garbage.
func (e *m2mEncoder) setFormats(outType, capType uint32, o EncoderOptions) error {
	f := e.raw
	mplane := outType == v4l2.BufTypeVideoOutputMplane
	cf, rf := m2mFormats(f, o.CodedFormat, outType, capType)
	if err := e.dev.SetFormat(&cf); err != nil {
		return err
	}
	if err := e.dev.SetFormat(&rf); err != nil {
		return err
	}
	gotPix, gotW, gotH, planes := formatOf(&rf, mplane)
	if gotPix != f.PixelFormat || gotW < uint32(f.Width) || gotH < uint32(f.Height) || planes != 1 {
		return fmt.Errorf("%w: asked raw %v, driver set %s %dx%d in %d planes", ErrFormat, f,
			v4l2.FourccString(gotPix), gotW, gotH, planes)
	}
	if codedPix, _, _, _ := formatOf(&cf, mplane); codedPix != o.CodedFormat {
		return fmt.Errorf("%w: asked coded %s, driver set %s", ErrFormat,
			v4l2.FourccString(o.CodedFormat), v4l2.FourccString(codedPix))
	}
	e.outFmt = rf
	return nil
}

// setControls sets the rate control and keyframe controls. Drivers support different
// subsets, so a refused control is only remembered (describe lists it), not an error.
func (e *m2mEncoder) setControls(o EncoderOptions) {
	f := e.raw
	ctrl := func(label string, id uint32, v int32) {
		if err := e.dev.SetControl(id, v); err != nil {
			e.unsettable = append(e.unsettable, label)
		}
	}
	if o.CodedFormat == v4l2.PixFmtH264 {
		_, level := h264Level(f.Width, f.Height, f.FrameRate)
		if o.H264Level != 0 {
			level = o.H264Level
		}
		ctrl("profile", v4l2.CIDH264Profile, o.H264Profile)
		ctrl("level", v4l2.CIDH264Level, level)
		ctrl("bitrate mode", v4l2.CIDBitrateMode, v4l2.BitrateModeVBR)
		ctrl("bitrate", v4l2.CIDBitrate, int32(o.Bitrate))
		ctrl("IDR period", v4l2.CIDH264IPeriod, int32(o.KeyframePeriod))
		// SPS and PPS before every IDR, so a viewer can start at any keyframe.
		ctrl("repeat sequence header", v4l2.CIDRepeatSeqHeader, 1)
	}
	ctrl("GOP size", v4l2.CIDGopSize, int32(o.KeyframePeriod))
}

// startStreaming maps both queues' buffers, hands every CAPTURE buffer to the encoder (it
// needs somewhere to put coded frames before the first raw one arrives), keeps the OUTPUT
// buffers free for queueRaw, and starts both queues.
func (e *m2mEncoder) startStreaming(outType, capType uint32) (err error) {
	if e.out, err = v4l2.NewQueue(e.dev, outType, m2mOutputBuffers); err != nil {
		return err
	}
	if e.cap, err = v4l2.NewQueue(e.dev, capType, m2mCaptureBuffers); err != nil {
		return err
	}
	for i := range e.out.Buffers {
		e.freeOut = append(e.freeOut, uint32(i))
	}
	for i := range e.cap.Buffers {
		if err := e.cap.Enqueue(uint32(i), v4l2.Timeval{}); err != nil {
			return err
		}
	}
	if err := e.dev.StreamOn(outType); err != nil {
		return err
	}
	return e.dev.StreamOn(capType)
}

// formatOf is the pixel format, size and plane count a Format holds.
func formatOf(f *v4l2.Format, mplane bool) (pix, w, h uint32, planes int) {
	if mplane {
		p := f.PixMplane()
		return p.PixelFormat, p.Width, p.Height, int(p.NumPlanes)
	}
	p := f.Pix()
	return p.PixelFormat, p.Width, p.Height, 1
}

func (e *m2mEncoder) describe() string {
	api := "single-planar"
	if e.out.Mplane {
		api = "multi-planar"
	}
	s := fmt.Sprintf("hardware encoder %s (%s, %s, %s) %s -> %s", e.node.Path, e.node.Driver(), e.node.Card(), api,
		v4l2.FourccString(e.raw.PixelFormat), v4l2.FourccString(e.coded))
	if len(e.unsettable) > 0 {
		s += "; controls not supported: " + strings.Join(e.unsettable, ", ")
	}
	return s
}

// stride is the raw OUTPUT format's bytes per line of the luma (or packed) plane.
func (e *m2mEncoder) stride() int {
	if e.out.Mplane {
		return int(e.outFmt.PixMplane().PlaneFmt[0].BytesPerLine)
	}
	return int(e.outFmt.Pix().BytesPerLine)
}

// queueRaw copies a packed raw frame into a free OUTPUT buffer (honouring the driver's
// stride and aligned height) and queues it with timestamp seq. It waits for a free buffer.
func (e *m2mEncoder) queueRaw(frame []byte, seq int64, forceKey bool) error {
	for len(e.freeOut) == 0 {
		if err := e.reclaim(true); err != nil {
			return err
		}
	}
	i := e.freeOut[len(e.freeOut)-1]
	e.freeOut = e.freeOut[:len(e.freeOut)-1]
	dst := e.out.Buffers[i][0]
	_, _, alignedH, _ := formatOf(&e.outFmt, e.out.Mplane)
	n := copyRaw(dst, frame, e.raw, e.stride(), int(alignedH))
	if forceKey && e.coded == v4l2.PixFmtH264 {
		e.dev.SetControl(v4l2.CIDForceKeyFrame, 1)
	}
	return e.out.Enqueue(i, v4l2.Timeval{Sec: seq / 1e6, Usec: seq % 1e6}, n)
}

// reclaim takes finished OUTPUT buffers back; with wait it blocks until one is.
func (e *m2mEncoder) reclaim(wait bool) error {
	for {
		d, err := e.out.Dequeue()
		if err == nil {
			e.freeOut = append(e.freeOut, d.Index)
			continue
		}
		if err != unix.EAGAIN {
			return err
		}
		if !wait || len(e.freeOut) > 0 {
			return nil
		}
		if _, err := e.dev.Wait(unix.POLLOUT, -1); err != nil {
			return err
		}
	}
}

// nextCoded waits up to timeoutMs for a coded buffer; ok=false on timeout. The buffer is
// held until release.
func (e *m2mEncoder) nextCoded(timeoutMs int) (v4l2.Dequeued, bool, error) {
	for {
		d, err := e.cap.Dequeue()
		if err == nil {
			e.heldCap = int(d.Index)
			if d.Flags&v4l2.BufFlagError != 0 {
				return d, false, errors.New("the encoder flagged a coded buffer as corrupt (V4L2_BUF_FLAG_ERROR)")
			}
			if d.Flags&v4l2.BufFlagLast != 0 && d.BytesUsed == 0 {
				return d, false, errors.New("the encoder stopped (V4L2_BUF_FLAG_LAST)")
			}
			return d, true, nil
		}
		if err != unix.EAGAIN {
			return d, false, err
		}
		if err := e.reclaim(false); err != nil {
			return d, false, err
		}
		ev, err := e.dev.Wait(unix.POLLIN, timeoutMs)
		if err != nil {
			return d, false, err
		}
		if ev == 0 {
			return d, false, nil
		}
		if ev&unix.POLLERR != 0 && ev&unix.POLLIN == 0 {
			return d, false, errors.New("the encoder reported an error (POLLERR)")
		}
	}
}

// release gives the held coded buffer back to the encoder.
func (e *m2mEncoder) release() error {
	if e.heldCap < 0 {
		return nil
	}
	i := uint32(e.heldCap)
	e.heldCap = -1
	return e.cap.Enqueue(i, v4l2.Timeval{})
}

// close stops streaming, unmaps every buffer and closes the device file.
func (e *m2mEncoder) close() {
	if e.out != nil {
		e.dev.StreamOff(e.out.Type)
		e.out.Release()
	}
	if e.cap != nil {
		e.dev.StreamOff(e.cap.Type)
		e.cap.Release()
	}
	e.dev.Close()
}
