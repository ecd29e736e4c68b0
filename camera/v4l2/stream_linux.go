//go:build linux

package v4l2

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Helpers for simple single-planar streaming, the way a test or a tool drives a device: set a
// format, queue every buffer, stream, take buffers back with a deadline, stop. lenscap's
// camera package drives devices with the lower-level calls above; these build on them.

// SetPixFormat sets a single-planar format on a buffer type (VIDIOC_S_FMT, progressive) and
// returns what the driver set. It fails when the driver chose another pixel format; the
// size may differ from the one asked for, and the caller checks.
func (d *Device) SetPixFormat(bufType, width, height, pixfmt uint32) (PixFormat, error) {
	f := Format{Type: bufType}
	p := f.Pix()
	p.Width, p.Height, p.PixelFormat, p.Field = width, height, pixfmt, FieldNone
	if err := d.SetFormat(&f); err != nil {
		return PixFormat{}, err
	}
	if got := f.Pix().PixelFormat; got != pixfmt {
		return *f.Pix(), fmt.Errorf("v4l2: VIDIOC_S_FMT %s: asked %s %dx%d, the driver set %s",
			d.Path, FourccString(pixfmt), width, height, FourccString(got))
	}
	return *f.Pix(), nil
}

// EnqueueAll queues every buffer of the queue, empty (a CAPTURE queue before STREAMON).
func (q *Queue) EnqueueAll() error {
	for i := range q.Buffers {
		if err := q.Enqueue(uint32(i), Timeval{}); err != nil {
			return err
		}
	}
	return nil
}

// DequeueWithin takes a done buffer back, waiting up to timeout for one (poll: readable for
// CAPTURE queues, writable for OUTPUT queues). Past the timeout its error wraps
// os.ErrDeadlineExceeded; after the device's Wake it wraps ErrWoken.
func (q *Queue) DequeueWithin(timeout time.Duration) (Dequeued, error) {
	events := int16(unix.POLLIN)
	if q.Type == BufTypeVideoOutput || q.Type == BufTypeVideoOutputMplane {
		events = unix.POLLOUT
	}
	deadline := time.Now().Add(timeout)
	for {
		d, err := q.Dequeue()
		if err != unix.EAGAIN {
			return d, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return Dequeued{}, fmt.Errorf("v4l2: VIDIOC_DQBUF %s: no buffer within %v: %w", q.dev.Path, timeout, os.ErrDeadlineExceeded)
		}
		if _, err := q.dev.Wait(events, int(left/time.Millisecond)+1); err != nil {
			return Dequeued{}, err
		}
	}
}

// Stop ends streaming on the queue (VIDIOC_STREAMOFF, which dequeues every buffer) and
// releases its buffers (Release). The device stays open.
func (q *Queue) Stop() {
	q.dev.StreamOff(q.Type)
	q.Release()
}

// SetControlByName sets the control whose VIDIOC_QUERYCTRL name is name (vivid's "Inject
// Fatal Streaming Error", ...) with VIDIOC_S_CTRL.
func (d *Device) SetControlByName(name string, value int32) error {
	id, ok := d.Controls()[name]
	if !ok {
		return fmt.Errorf("v4l2: %s has no control %q", d.Path, name)
	}
	return d.SetControl(id, value)
}
