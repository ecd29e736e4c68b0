package camera

import (
	"math"
	"time"
)

// Clock is the time source of simulated hardware: it decides when frames are captured and
// what their CaptureTime is. A nil Clock in an options struct means the real clock.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// NewTimer returns a stopped timer on this clock.
	NewTimer() Timer
}

// Timer is a reusable one-shot timer on a Clock. It is used by one goroutine at a time.
type Timer interface {
	// C is the channel the timer sends the time on when it fires.
	C() <-chan time.Time
	// ResetAt arms the timer to fire once when the clock reaches t (at once when t has
	// passed), replacing an earlier arming; nothing from an earlier arming is received after
	// ResetAt returns.
	ResetAt(t time.Time)
	// Stop disarms the timer; nothing is received from C after Stop returns until the next
	// ResetAt.
	Stop()
}

// realClock is the wall clock; its times carry a monotonic reading.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer() Timer {
	t := time.NewTimer(math.MaxInt64)
	t.Stop()
	return realTimer{t}
}

// realTimer relies on the timer semantics of Go 1.23 and later (go.mod says so): Reset and
// Stop discard a value not yet received.
type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time  { return r.t.C }
func (r realTimer) ResetAt(at time.Time) { r.t.Reset(time.Until(at)) }
func (r realTimer) Stop()                { r.t.Stop() }

// clockOrReal returns c, or the real clock when c is nil.
func clockOrReal(c Clock) Clock {
	if c == nil {
		return realClock{}
	}
	return c
}
