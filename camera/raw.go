package camera

import (
	"fmt"
	"time"

	"github.com/lenscap/lenscap/camera/v4l2"
)

// RawFormat is the format of uncompressed (or camera-compressed) frames from a capture
// device into an encoder.
type RawFormat struct {
	// PixelFormat is a V4L2 fourcc: v4l2.PixFmtYUV420, PixFmtNV12, PixFmtYUYV, PixFmtMJPEG,
	// or PixFmtH264 (a camera that encodes itself).
	PixelFormat uint32
	Width       int
	Height      int
	FrameRate   int
}

func (f RawFormat) String() string {
	return fmt.Sprintf("%s %dx%d@%d", v4l2.FourccString(f.PixelFormat), f.Width, f.Height, f.FrameRate)
}

// frameSize is the size of one tightly packed raw frame; 0 for compressed formats.
func (f RawFormat) frameSize() int {
	switch f.PixelFormat {
	case v4l2.PixFmtYUV420, v4l2.PixFmtNV12:
		return f.Width*f.Height + 2*((f.Width+1)/2)*((f.Height+1)/2)
	case v4l2.PixFmtYUYV:
		return f.Width * 2 * f.Height
	}
	return 0
}

// rawStream is an open source of raw frames feeding an encoder: a V4L2 capture, a
// generated pattern, a subprocess.
type rawStream interface {
	// next blocks until the next frame and returns it with its capture time; the data is
	// valid until the following call. After close it returns an error.
	next() ([]byte, time.Time, error)
	// stop makes a pending next, and every later one, return an error, without releasing
	// anything: the data next returned stays readable. It never blocks and is idempotent.
	stop()
	// close stops the source and releases it (memory-mapped buffers included) before it
	// returns. It unblocks a pending next, but the data next returned must no longer be in
	// use: callers stop, wait for their reader, then close. It is idempotent.
	close() error
}

// patternRaw is a generated raw source: moving bars and a moving box, paced by a simulated
// hardware session (so it is "opened", "busy" and "closed" as hardware is).
type patternRaw struct {
	session *simSession
	format  RawFormat
	buf     []byte // the frame; rewritten in place
}

func newPatternRaw(s *simSession, f RawFormat) *patternRaw {
	return &patternRaw{session: s, format: f, buf: make([]byte, f.frameSize())}
}

func (p *patternRaw) next() ([]byte, time.Time, error) {
	p.session.readMu.Lock()
	defer p.session.readMu.Unlock()
	n, at, err := p.session.nextTick()
	if err != nil {
		return nil, time.Time{}, err
	}
	drawPattern(p.buf, p.format, int(n))
	return p.buf, at, nil
}

// stop ends the session: its frames are in Go memory, safe to read after it.
func (p *patternRaw) stop() { p.session.close() }

func (p *patternRaw) close() error {
	p.session.close()
	return nil
}

// drawPattern paints frame n of the pattern into buf in f's pixel format: vertical luma
// bars scrolling one pixel a frame, a bright box crossing the picture, neutral-ish chroma.
// It builds the two kinds of luma row once and copies them: about 0.3 ms for 720p.
func drawPattern(buf []byte, f RawFormat, n int) {
	w, h := f.Width, f.Height
	box := (n * 4) % max(w-h/4, 1)
	boxTop, boxBottom := h/3, h/3+h/4
	rowSize := w
	if f.PixelFormat == v4l2.PixFmtYUYV {
		rowSize = 2 * w
	}
	plain, boxed := buf[:rowSize], buf[rowSize:2*rowSize] // built in place, then copied down
	for x := range w {
		y := byte(16 + ((x+n)/16%8)*27)
		yb := y
		if x >= box && x < box+h/4 {
			yb = 235
		}
		if f.PixelFormat == v4l2.PixFmtYUYV {
			c := byte(120)
			if x%2 == 1 {
				c = 136
			}
			plain[2*x], plain[2*x+1], boxed[2*x], boxed[2*x+1] = y, c, yb, c
		} else {
			plain[x], boxed[x] = y, yb
		}
	}
	if h < 2 {
		return
	}
	for y := h - 1; y >= 0; y-- { // from the bottom: rows 0 and 1 hold the templates
		src := plain
		if y >= boxTop && y < boxBottom {
			src = boxed
		}
		if y > 1 || (y == 1 && &src[0] != &buf[rowSize]) || (y == 0 && &src[0] != &buf[0]) {
			copy(buf[y*rowSize:(y+1)*rowSize], src)
		}
	}
	if f.PixelFormat == v4l2.PixFmtYUYV {
		return
	}
	c := buf[w*h:]
	cw := (w + 1) / 2
	for i := range c {
		c[i] = byte(128 + (i/cw%2)*8)
	}
}

// copyRaw copies a tightly packed frame of format f into dst laid out with the given luma
// (or packed) stride and plane height, as a driver may ask (rows padded to 32 or 64 bytes,
// heights aligned to 16), and returns the bytes used. It allocates nothing.
func copyRaw(dst, frame []byte, f RawFormat, stride, planeH int) int {
	w, h := f.Width, f.Height
	rowBytes := w
	if f.PixelFormat == v4l2.PixFmtYUYV {
		rowBytes = 2 * w
	}
	stride = max(stride, rowBytes)
	planeH = max(planeH, h)
	if stride == rowBytes && planeH == h {
		return copy(dst, frame)
	}
	rows := func(dst []byte, dstPitch int, src []byte, srcPitch, n, width int) {
		for y := 0; y < n; y++ {
			copy(dst[y*dstPitch:y*dstPitch+width], src[y*srcPitch:y*srcPitch+width])
		}
	}
	rows(dst, stride, frame, rowBytes, h, rowBytes)
	if f.PixelFormat == v4l2.PixFmtYUYV {
		return stride * planeH
	}
	cw, ch := (w+1)/2, (h+1)/2
	luma := stride * planeH
	switch f.PixelFormat {
	case v4l2.PixFmtYUV420:
		cstride, cplane := stride/2, (stride/2)*(planeH/2)
		rows(dst[luma:], cstride, frame[w*h:], cw, ch, cw)
		rows(dst[luma+cplane:], cstride, frame[w*h+cw*ch:], cw, ch, cw)
		return luma + 2*cplane
	case v4l2.PixFmtNV12:
		rows(dst[luma:], stride, frame[w*h:], 2*cw, ch, 2*cw)
		return luma + stride*(planeH/2)
	}
	return copy(dst, frame)
}

// packRaw is copyRaw backwards: it copies a frame laid out with stride and planeH from
// src into the tightly packed dst and returns dst.
func packRaw(dst, src []byte, f RawFormat, stride, planeH int) []byte {
	w, h := f.Width, f.Height
	rowBytes := w
	if f.PixelFormat == v4l2.PixFmtYUYV {
		rowBytes = 2 * w
	}
	rows := func(dst []byte, dstPitch int, src []byte, srcPitch, n, width int) {
		for y := 0; y < n && y*srcPitch+width <= len(src); y++ {
			copy(dst[y*dstPitch:y*dstPitch+width], src[y*srcPitch:y*srcPitch+width])
		}
	}
	rows(dst, rowBytes, src, stride, h, rowBytes)
	if f.PixelFormat == v4l2.PixFmtYUYV {
		return dst
	}
	cw, ch := (w+1)/2, (h+1)/2
	luma := stride * planeH
	if luma > len(src) {
		return dst
	}
	switch f.PixelFormat {
	case v4l2.PixFmtYUV420:
		cstride, cplane := stride/2, (stride/2)*(planeH/2)
		rows(dst[w*h:], cw, src[luma:], cstride, ch, cw)
		if luma+cplane <= len(src) {
			rows(dst[w*h+cw*ch:], cw, src[luma+cplane:], cstride, ch, cw)
		}
	case v4l2.PixFmtNV12:
		rows(dst[w*h:], 2*cw, src[luma:], stride, ch, 2*cw)
	}
	return dst
}
