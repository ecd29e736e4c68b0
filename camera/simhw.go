package camera

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lenscap/lenscap/device"
)

// Errors of capture hardware that callers check with errors.Is. The simulated drivers return
// them as the real ones do, wrapped with the operation and the device's name
// ("camera: open test pattern camera: device busy: ...").
var (
	// ErrBusy is returned by Open while the device is already open, as EBUSY from a V4L2
	// device: close the open stream (or stop the other process holding it) first.
	ErrBusy = errors.New("device busy: it is already open; close the open stream first")
	// ErrGone is returned by Open and ReadFrame when the device went away under lenscap, as
	// ENODEV from an unplugged USB camera: reconnect it, then open it again.
	ErrGone = errors.New("device gone: unplugged or reset; reconnect it and open it again")
)

// simHardware is the bookkeeping every simulated driver shares: it admits one open stream at
// a time, counts opens and closes, takes the configured time to open, and carries the failure
// hooks. Drivers embed it, which gives them its exported methods. Make it with
// newSimHardware; it must not be copied.
type simHardware struct {
	name        string        // the device's name in errors, as a device path would be
	clock       Clock         // paces the frames of every session
	openLatency time.Duration // how long Open takes

	mu        sync.Mutex
	session   *simSession // the open stream's session; nil when closed
	failNext  error       // the error the next Open fails with; nil for none
	unplugged bool        // Vanish was called and Reappear was not since
	opens     uint64      // successful Opens
	closes    uint64      // sessions closed
}

func newSimHardware(name string, clock Clock, openLatency time.Duration) simHardware {
	return simHardware{name: name, clock: clockOrReal(clock), openLatency: max(openLatency, 0)}
}

// Opens is how many times Open succeeded.
func (h *simHardware) Opens() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.opens
}

// Closes is how many open streams were closed (each counted once, however often its Close
// is called). Opens() - Closes() is 1 while a stream is open, else 0.
func (h *simHardware) Closes() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closes
}

// IsOpen reports whether the device is held: from the start of a successful Open (its
// latency included) until the stream's Close. A stream whose device vanished holds it until
// it is closed, as an open file descriptor of an unplugged camera does.
func (h *simHardware) IsOpen() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.session != nil
}

// FailNextOpen is a test hook: the next call to Open, whatever the device's state, fails with
// an error wrapping err. A nil err cancels a failure not yet delivered.
func (h *simHardware) FailNextOpen(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failNext = err
}

// Vanish is a test hook that unplugs the device: a ReadFrame of the open stream, pending or
// future, returns an error wrapping ErrGone (until the stream is closed: then
// device.ErrStreamClosed), and Open fails with ErrGone until Reappear is called. The stream
// still holds the device until its Close.
func (h *simHardware) Vanish() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unplugged = true
	if s := h.session; s != nil && !s.vanished {
		s.vanished = true
		close(s.gone)
	}
}

// Reappear is a test hook that plugs the device back in after Vanish: Open works again. A
// stream that saw the device vanish stays failed.
func (h *simHardware) Reappear() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unplugged = false
}

// open acquires the device for a new session whose frames come ticksPerSecond times a
// second, the first at once. It waits the open latency while already holding the device.
func (h *simHardware) open(ticksPerSecond int) (*simSession, error) {
	h.mu.Lock()
	if err := h.refuseOpenLocked(); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	s := &simSession{
		hw:     h,
		clock:  h.clock,
		timer:  h.clock.NewTimer(),
		rate:   int64(ticksPerSecond),
		closed: make(chan struct{}),
		gone:   make(chan struct{}),
	}
	h.session = s
	h.mu.Unlock()

	if h.openLatency > 0 {
		s.timer.ResetAt(h.clock.Now().Add(h.openLatency))
		select {
		case <-s.timer.C():
		case <-s.gone:
			s.timer.Stop()
		}
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if s.vanished {
		h.session = nil
		return nil, fmt.Errorf("camera: open %s: %w", h.name, ErrGone)
	}
	h.opens++
	s.start = h.clock.Now()
	return s, nil
}

// refuseOpenLocked returns why Open must fail now, or nil. It consumes FailNextOpen's error.
func (h *simHardware) refuseOpenLocked() error {
	if err := h.failNext; err != nil {
		h.failNext = nil
		return fmt.Errorf("camera: open %s: %w", h.name, err)
	}
	if h.unplugged {
		return fmt.Errorf("camera: open %s: %w", h.name, ErrGone)
	}
	if h.session != nil {
		return fmt.Errorf("camera: open %s: %w", h.name, ErrBusy)
	}
	return nil
}

// release frees the device held by s, once.
func (h *simHardware) release(s *simSession) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.session == s {
		h.session = nil
		h.closes++
	}
}

// simSession is one open stream's share of the simulated hardware: its capture clock (tick n
// is at start + n/rate seconds), and the closed and vanished signals. Streams embed nothing
// else of the hardware.
type simSession struct {
	hw    *simHardware
	clock Clock
	timer Timer
	rate  int64     // ticks per second
	start time.Time // time of tick 0: when Open returned

	// readMu is held by ReadFrame for its whole call and by Close while it releases the
	// device, so Close returns only after a pending ReadFrame has let go of the hardware.
	readMu sync.Mutex
	tick   int64 // index of the next tick to capture; guarded by readMu

	closed    chan struct{} // closed by Close
	closeOnce sync.Once
	gone      chan struct{} // closed by Vanish
	vanished  bool          // gone is closed; guarded by hw.mu
}

// close stops the session and releases the device before it returns; it unblocks a pending
// nextTick. It is idempotent, and a second call returns after the first has finished.
func (s *simSession) close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.readMu.Lock()
		s.timer.Stop()
		s.hw.release(s)
		s.readMu.Unlock()
	})
}

// nextTick blocks until the next tick of the capture clock and returns its index and time.
// A reader more than a tick late is not handed the ticks it missed: it gets the latest tick
// that has passed, as a camera that keeps only its newest buffer. After close it returns an
// error wrapping device.ErrStreamClosed; once the device vanished, one wrapping ErrGone.
// The caller holds readMu.
func (s *simSession) nextTick() (int64, time.Time, error) {
	if err := s.err(); err != nil {
		return 0, time.Time{}, err
	}
	now := s.clock.Now()
	if latest := s.latestTick(now); latest > s.tick {
		s.tick = latest
	}
	at := s.tickTime(s.tick)
	if at.After(now) {
		s.timer.ResetAt(at)
		select {
		case <-s.timer.C():
		case <-s.closed:
			s.timer.Stop()
			return 0, time.Time{}, s.err()
		case <-s.gone:
			s.timer.Stop()
			return 0, time.Time{}, s.err()
		}
	}
	n := s.tick
	s.tick++
	return n, at, nil
}

// err reports why the session can capture no more, closing taking precedence; nil if it can.
func (s *simSession) err() error {
	select {
	case <-s.closed:
		return fmt.Errorf("camera: read %s: %w", s.hw.name, device.ErrStreamClosed)
	default:
	}
	select {
	case <-s.gone:
		return fmt.Errorf("camera: read %s: %w", s.hw.name, ErrGone)
	default:
	}
	return nil
}

// tickTime is the time of tick n, exact to the nanosecond below, without overflow for any
// realistic n.
func (s *simSession) tickTime(n int64) time.Time {
	return s.start.Add(time.Duration(n/s.rate)*time.Second +
		time.Duration(n%s.rate)*time.Second/time.Duration(s.rate))
}

// latestTick is the index of the last tick at or before t (0 before the start).
func (s *simSession) latestTick(t time.Time) int64 {
	d := t.Sub(s.start)
	if d <= 0 {
		return 0
	}
	return int64(d/time.Second)*s.rate + int64(d%time.Second)*s.rate/int64(time.Second)
}
