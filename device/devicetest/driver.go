// Package devicetest provides a fake device.Driver for tests: a camera or microphone whose frames
// a test pushes one by one or lets tick at a rate, whose state (open, closed, keyframe requests)
// is observed through the driver itself, and which fails on demand (FailOpen, Vanish).
//
// A Driver made inside a testing/synctest bubble ticks on the bubble's fake clock, and its
// Close, ReadFrame and wait helpers block durably, so synctest.Wait works with it. Make the
// driver inside the bubble that uses it.
package devicetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lenscap/lenscap/device"
)

// Errors callers check with errors.Is.
var (
	// ErrBusy is returned (wrapped) by Open while a stream of the driver is open.
	ErrBusy = errors.New("devicetest: device busy")
	// ErrNotOpen is returned by Push when no stream is open.
	ErrNotOpen = errors.New("devicetest: device not open")
	// ErrVanished is the error ReadFrame returns after Vanish(nil).
	ErrVanished = errors.New("devicetest: device vanished")
)

// Options configure a Driver. The zero value is a driver whose frames are only pushed.
type Options struct {
	// Interval, when positive, makes an open stream capture a frame every Interval (the first
	// one at once); frames can still be pushed between ticks. Zero: frames only when pushed.
	Interval time.Duration
	// Codec is what the driver reports; zero means video/H264 90000 or audio/opus 48000/2.
	Codec device.Codec
	// Now gives the frames' CaptureTime; nil means time.Now (the fake clock in a bubble).
	Now func() time.Time
	// CloseDelay is how long Close takes to release the hardware, after a pending ReadFrame
	// returned: a slow device, to check that callers wait for the release.
	CloseDelay time.Duration
	// OnClose, when set, is called as a stream's Close begins (tests check what has happened
	// by then: the tracks stopped, the state persisted).
	OnClose func()
	// Stamp puts each frame's capture time in its payload (Stamped reads it back), for tests
	// whose packets pass through a server that rewrites RTP timestamps (an SFU).
	Stamp bool
}

// DefaultCodec returns the codec a Driver of kind k reports when Options.Codec is zero.
func DefaultCodec(k device.Kind) device.Codec {
	if k == device.KindAudio {
		return device.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"}
	}
	return device.Codec{MimeType: "video/H264", ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
}

// Driver is a fake capture device implementing device.Driver. It is safe for concurrent use.
type Driver struct {
	kind device.Kind
	opts Options

	mu         sync.Mutex
	cur        *stream       // the open stream, nil when closed
	failOpen   error         // injected Open failure
	opens      int           // successful Opens
	openCalls  int           // every Open call
	busyOpens  int           // Opens refused because a stream was open
	closes     int           // streams released
	frames     int           // frames returned by ReadFrame
	keyReqs    int           // RequestKeyframe calls
	forcedKeys int           // frames made keyframes by pending requests
	changed    chan struct{} // closed and replaced on every change of state
}

var _ device.Driver = (*Driver)(nil)

// NewDriver returns a closed fake driver of the given kind.
func NewDriver(kind device.Kind, opts Options) *Driver {
	if opts.Codec == (device.Codec{}) {
		opts.Codec = DefaultCodec(kind)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Driver{kind: kind, opts: opts, changed: make(chan struct{})}
}

// Kind implements device.Driver.
func (d *Driver) Kind() device.Kind { return d.kind }

// Codec implements device.Driver.
func (d *Driver) Codec() device.Codec { return d.opts.Codec }

// Open implements device.Driver. It fails with the FailOpen error when one is set, and with
// ErrBusy while a stream is open (which device.Source must never cause).
func (d *Driver) Open() (device.Stream, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.openCalls++
	defer d.notifyLocked()
	if d.failOpen != nil {
		return nil, fmt.Errorf("devicetest: open %s: %w", d.kind, d.failOpen)
	}
	if d.cur != nil {
		d.busyOpens++
		return nil, fmt.Errorf("devicetest: open %s: %w", d.kind, ErrBusy)
	}
	d.opens++
	s := &stream{
		d:        d,
		push:     make(chan pushReq),
		closed:   make(chan struct{}),
		gone:     make(chan struct{}),
		released: make(chan struct{}),
		next:     time.Now(),
	}
	d.cur = s
	return s, nil
}

// FailOpen makes every later Open fail with err (wrapped); nil makes Open work again.
func (d *Driver) FailOpen(err error) {
	d.mu.Lock()
	d.failOpen = err
	d.mu.Unlock()
}

// Vanish makes the open stream fail as an unplugged device does: its pending and later
// ReadFrame calls return err (ErrVanished when nil). The stream stays open (IsOpen) until it
// is closed. Vanish does nothing when no stream is open or the stream already vanished.
func (d *Driver) Vanish(err error) {
	if err == nil {
		err = ErrVanished
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.cur
	if s == nil || s.goneErr != nil {
		return
	}
	s.goneErr = fmt.Errorf("devicetest: %s: %w", d.kind, err)
	close(s.gone)
	d.notifyLocked()
}

// Push makes the open stream capture a frame now and waits until a ReadFrame returns it,
// which also means the consumer finished with the previous frame (device.Source delivers a
// frame to its tracks before it reads the next one). It returns the frame, or ErrNotOpen when
// no stream is open, or the stream's error when it is closed or vanishes first.
func (d *Driver) Push() (device.Frame, error) {
	d.mu.Lock()
	s := d.cur
	d.mu.Unlock()
	if s == nil {
		return device.Frame{}, ErrNotOpen
	}
	reply := make(chan device.Frame, 1)
	select {
	case s.push <- pushReq{reply: reply}:
		if f, ok := <-reply; ok {
			return f, nil
		}
		if err := s.err(); err != nil {
			return device.Frame{}, err
		}
		return device.Frame{}, fmt.Errorf("devicetest: %s: %w", d.kind, device.ErrStreamClosed)
	case <-s.closed:
		return device.Frame{}, fmt.Errorf("devicetest: %s: %w", d.kind, device.ErrStreamClosed)
	case <-s.gone:
		return device.Frame{}, s.err()
	}
}

// Opens counts successful Opens.
func (d *Driver) Opens() int { d.mu.Lock(); defer d.mu.Unlock(); return d.opens }

// OpenCalls counts every Open, failed or not.
func (d *Driver) OpenCalls() int { d.mu.Lock(); defer d.mu.Unlock(); return d.openCalls }

// BusyOpens counts Opens refused with ErrBusy: a caller that broke the one-stream rule.
func (d *Driver) BusyOpens() int { d.mu.Lock(); defer d.mu.Unlock(); return d.busyOpens }

// Closes counts streams released by Close.
func (d *Driver) Closes() int { d.mu.Lock(); defer d.mu.Unlock(); return d.closes }

// IsOpen reports whether a stream holds the device (opened and not yet released).
func (d *Driver) IsOpen() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.cur != nil }

// Frames counts frames returned by ReadFrame, over all streams.
func (d *Driver) Frames() int { d.mu.Lock(); defer d.mu.Unlock(); return d.frames }

// KeyframeRequests counts calls of Stream.RequestKeyframe, over all streams.
func (d *Driver) KeyframeRequests() int { d.mu.Lock(); defer d.mu.Unlock(); return d.keyReqs }

// ForcedKeyframes counts frames captured while a keyframe request was pending: requests made
// before a frame is captured count once, as the keyframe they become.
func (d *Driver) ForcedKeyframes() int { d.mu.Lock(); defer d.mu.Unlock(); return d.forcedKeys }

// WaitFor waits until cond (called without the driver's lock; it may use the driver's
// methods) is true, checking it again after every change of the driver's state (an open, a
// close, a frame, a keyframe request, a failure), or until ctx ends.
func (d *Driver) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		d.mu.Lock()
		ch := d.changed
		d.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("devicetest: %s: %w", d.kind, ctx.Err())
		}
	}
}

// WaitOpen waits until a stream is open.
func (d *Driver) WaitOpen(ctx context.Context) error { return d.WaitFor(ctx, d.IsOpen) }

// WaitClosed waits until no stream is open.
func (d *Driver) WaitClosed(ctx context.Context) error {
	return d.WaitFor(ctx, func() bool { return !d.IsOpen() })
}

// WaitOpens waits until the driver has been opened n times in all.
func (d *Driver) WaitOpens(ctx context.Context, n int) error {
	return d.WaitFor(ctx, func() bool { return d.Opens() >= n })
}

func (d *Driver) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// payload is the Data of a frame.
func (d *Driver) payload(key bool) []byte {
	switch d.opts.Codec.MimeType {
	case "video/H264":
		if key {
			return append([]byte(nil), h264Keyframe...)
		}
		return append([]byte(nil), h264Delta...)
	case "audio/opus":
		return []byte{0xf8, 0xff, 0xfe} // a 20 ms Opus silence frame
	case "audio/PCMU":
		b := make([]byte, d.opts.Codec.ClockRate/50) // 20 ms of μ-law silence
		for i := range b {
			b[i] = 0xff
		}
		return b
	default:
		return []byte{0x01, 0x02, 0x03, 0x04}
	}
}

// A small H.264 (Constrained Baseline, level 3.1) access unit in Annex-B form: SPS, PPS and an
// IDR slice for a keyframe, one non-IDR slice otherwise. It packetizes like the real thing; it
// is not meant to decode into a picture.
var (
	h264Keyframe = []byte{
		0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x1e, 0xd0, 0x0f, 0x08, 0x84, 0x6a,
		0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80,
		0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x33, 0xff, 0xfe, 0xf6, 0xf0, 0xfe, 0x05, 0x36, 0x56, 0x04,
	}
	h264Delta = []byte{0, 0, 0, 1, 0x41, 0x9a, 0x02, 0x04, 0x2f, 0xf5, 0x80}
)

// frameDuration is the Duration of each frame.
func (d *Driver) frameDuration() time.Duration {
	switch {
	case d.opts.Interval > 0:
		return d.opts.Interval
	case d.kind == device.KindAudio:
		return 20 * time.Millisecond
	default:
		return time.Second / 30
	}
}

type pushReq struct{ reply chan device.Frame }

// stream is an open capture of a Driver.
type stream struct {
	d        *Driver
	push     chan pushReq
	closed   chan struct{} // closed by Close
	gone     chan struct{} // closed by Vanish; goneErr set under d.mu before
	released chan struct{} // closed once Close released the device
	once     sync.Once

	// guarded by d.mu
	goneErr    error
	frames     int
	keyPending bool
	readers    int           // ReadFrame calls in progress
	idle       chan struct{} // closed when readers drops to zero after Close
	next       time.Time     // when the next tick is due
}

func (s *stream) err() error {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	return s.goneErr
}

func (s *stream) closedErr() error {
	return fmt.Errorf("devicetest: %s: %w", s.d.kind, device.ErrStreamClosed)
}

// ReadFrame implements device.Stream.
func (s *stream) ReadFrame() (device.Frame, error) {
	next, err := s.beginRead()
	if err != nil {
		return device.Frame{}, err
	}
	defer s.endRead()
	req, err := s.awaitFrame(next)
	if err != nil {
		return device.Frame{}, err
	}
	return s.deliver(req)
}

// beginRead counts a ReadFrame in progress, so that Close can wait for it before it
// releases the device, and returns when the next tick is due.
func (s *stream) beginRead() (next time.Time, err error) {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-s.closed:
		return time.Time{}, s.closedErr()
	default:
	}
	s.readers++
	return s.next, nil
}

// endRead ends what beginRead began; the last reader after Close lets Close go on.
func (s *stream) endRead() {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	s.readers--
	if s.readers == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// awaitFrame blocks until a frame is pushed, the tick due at next comes (with an
// Interval), or the stream is closed or vanishes. A tick gives a zero pushReq.
func (s *stream) awaitFrame(next time.Time) (pushReq, error) {
	var tick <-chan time.Time
	if s.d.opts.Interval > 0 {
		t := time.NewTimer(time.Until(next))
		defer t.Stop()
		tick = t.C
	}
	var req pushReq
	select {
	case <-s.closed:
		return req, s.closedErr()
	case <-s.gone:
		return req, s.err()
	case req = <-s.push:
	case <-tick:
	}
	return req, nil
}

// deliver captures the frame awaitFrame waited for and hands it to the pusher too, if
// one waits for it; a pusher gets its reply channel closed when there is no frame.
func (s *stream) deliver(req pushReq) (device.Frame, error) {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	select { // a frame is never returned after Close or Vanish, even when both were ready
	case <-s.closed:
		if req.reply != nil {
			close(req.reply)
		}
		return device.Frame{}, s.closedErr()
	default:
	}
	if s.goneErr != nil {
		if req.reply != nil {
			close(req.reply)
		}
		return device.Frame{}, s.goneErr
	}
	f := s.captureLocked()
	if req.reply != nil {
		req.reply <- f
	}
	return f, nil
}

// captureLocked makes the next frame.
func (s *stream) captureLocked() device.Frame {
	d := s.d
	key := s.frames == 0 || d.kind == device.KindAudio
	if s.keyPending {
		key = true
		s.keyPending = false
		d.forcedKeys++
	}
	s.frames++
	d.frames++
	d.notifyLocked()
	now := time.Now()
	s.next = now.Add(d.opts.Interval)
	f := device.Frame{CaptureTime: d.opts.Now(), Duration: d.frameDuration(), Keyframe: key}
	if d.opts.Stamp {
		f.Data = d.stamped(key, f.CaptureTime)
	} else {
		f.Data = d.payload(key)
	}
	return f
}

// RequestKeyframe implements device.Stream: the next frame captured is a keyframe.
func (s *stream) RequestKeyframe() {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.keyReqs++
	s.keyPending = true
	s.d.notifyLocked()
}

// Close implements device.Stream: it unblocks a pending ReadFrame, waits for it to return,
// takes CloseDelay to release the device, and returns once it is released. It is idempotent;
// every call returns after the release.
func (s *stream) Close() error {
	s.once.Do(func() {
		d := s.d
		if d.opts.OnClose != nil {
			d.opts.OnClose()
		}
		d.mu.Lock()
		close(s.closed)
		var idle chan struct{}
		if s.readers > 0 {
			s.idle = make(chan struct{})
			idle = s.idle
		}
		d.mu.Unlock()
		if idle != nil {
			<-idle
		}
		if d.opts.CloseDelay > 0 {
			time.Sleep(d.opts.CloseDelay)
		}
		d.mu.Lock()
		if d.cur == s {
			d.cur = nil
		}
		d.closes++
		d.notifyLocked()
		d.mu.Unlock()
		close(s.released)
	})
	<-s.released
	return nil
}
