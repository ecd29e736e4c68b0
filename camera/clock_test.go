package camera

import (
	"sync"
	"testing"
	"time"
)

// epoch is where the fake clocks start.
var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a Clock that moves only when the test calls Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer() Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock by d and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fireLocked()
}

// armed is how many timers are waiting to fire.
func (c *fakeClock) armed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.armed {
			n++
		}
	}
	return n
}

// waitArmed waits (in real time, at most 2 s) until n timers wait to fire: a reader is
// blocked in ReadFrame.
func (c *fakeClock) waitArmed(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); c.armed() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("fake clock: %d timers armed, want %d", c.armed(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *fakeClock) fireLocked() {
	for _, t := range c.timers {
		if t.armed && !t.at.After(c.now) {
			t.armed = false
			t.ch <- c.now // drained when armed: never blocks
		}
	}
}

type fakeTimer struct {
	c     *fakeClock
	ch    chan time.Time
	at    time.Time // guarded by c.mu
	armed bool      // guarded by c.mu
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) ResetAt(at time.Time) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.drain()
	t.at, t.armed = at, true
	t.c.fireLocked()
}

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.armed = false
	t.drain()
}

func (t *fakeTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

// stepClock is a Clock whose timers fire at once, moving the clock to their deadline: a
// stream on it runs as fast as it is read, with the capture times of real time.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func newStepClock() *stepClock { return &stepClock{now: epoch} }

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) NewTimer() Timer { return &stepTimer{c: c, ch: make(chan time.Time, 1)} }

type stepTimer struct {
	c  *stepClock
	ch chan time.Time
}

func (t *stepTimer) C() <-chan time.Time { return t.ch }

func (t *stepTimer) ResetAt(at time.Time) {
	t.Stop()
	t.c.mu.Lock()
	if at.After(t.c.now) {
		t.c.now = at
	}
	now := t.c.now
	t.c.mu.Unlock()
	t.ch <- now
}

func (t *stepTimer) Stop() {
	select {
	case <-t.ch:
	default:
	}
}

func TestRealTimerFiresAtDeadlineAndStopDiscards(t *testing.T) {
	c := clockOrReal(nil)
	tm := c.NewTimer()
	select {
	case <-tm.C():
		t.Fatal("a new timer fired: it must start stopped")
	case <-time.After(5 * time.Millisecond):
	}
	start := c.Now()
	tm.ResetAt(start.Add(10 * time.Millisecond))
	<-tm.C()
	if d := time.Since(start); d < 10*time.Millisecond {
		t.Errorf("timer fired after %v, before its 10ms deadline", d)
	}
	tm.ResetAt(c.Now()) // due at once
	time.Sleep(2 * time.Millisecond)
	tm.Stop()
	select {
	case <-tm.C():
		t.Error("Stop did not discard a fired, unreceived value")
	case <-time.After(5 * time.Millisecond):
	}
}
