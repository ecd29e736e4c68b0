package gpio

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// edgePin is a pin whose edges carry their own level and time, as the GPIO character
// device's line events do: a test can hand the button edges that happened while it was not
// reading (a stalled goroutine on a loaded board), queued all at once as the kernel queues them.
type edgePin struct {
	*gpiotest.Pin
	mu      sync.Mutex
	pending []edge
	notify  chan struct{}
}

func newEdgePin(l gpio.Level) *edgePin {
	return &edgePin{Pin: newPin(l), notify: make(chan struct{}, 1)}
}

// ReadEdge implements EdgeReader. The level it reads is the edge's (as the kernel's event says
// rising or falling), never the pin's level now.
func (p *edgePin) ReadEdge(timeout time.Duration) (gpio.Level, time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		if len(p.pending) > 0 {
			e := p.pending[0]
			p.pending = p.pending[1:]
			p.mu.Unlock()
			return gpio.Level(e.active), e.at, true
		}
		p.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			return gpio.Low, time.Time{}, false
		}
		select {
		case <-p.notify:
		case <-time.After(left):
		}
	}
}

// late queues edges at the given offsets from start, all at once, after they happened.
func (p *edgePin) late(start time.Time, levels []gpio.Level, at ...time.Duration) {
	p.mu.Lock()
	for i, l := range levels {
		p.pending = append(p.pending, edge{active: bool(l), at: start.Add(at[i])})
		p.L = l
	}
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func TestAPressReadAfterItEndedStillCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newEdgePin(gpio.High)
		rec, stop := runButton(t, ButtonConfig{Pin: p, ActiveLow: true, Pull: gpio.PullUp})
		start := time.Now()
		// A 50 ms press (and a bounce on its way down) that the reader sees 400 ms later, when
		// the line has long been released.
		time.Sleep(400 * time.Millisecond)
		p.late(start, []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High},
			0, time.Millisecond, 2*time.Millisecond, 52*time.Millisecond)
		time.Sleep(100 * time.Millisecond)
		stop()
		evs := rec.get()
		if len(evs) != 1 || evs[0].Kind != Press {
			t.Fatalf("events %+v, want one press", evs)
		}
		if got := evs[0].Edge.Sub(start); got != 2*time.Millisecond {
			t.Errorf("edge at +%s, want +2ms (the last bounce down)", got)
		}
		// Decided on the kernel's clock, at the release: the first edge to show the press lasted.
		if got := evs[0].At.Sub(start); got != 52*time.Millisecond {
			t.Errorf("decided at +%s, want +52ms", got)
		}
	})
}

func TestABounceReadLateIsNoPress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newEdgePin(gpio.High)
		rec, stop := runButton(t, ButtonConfig{Pin: p, ActiveLow: true, Pull: gpio.PullUp})
		start := time.Now()
		time.Sleep(400 * time.Millisecond)
		// 20 ms low: shorter than the debounce time, however late it is read.
		p.late(start, []gpio.Level{gpio.Low, gpio.High}, 0, 20*time.Millisecond)
		time.Sleep(100 * time.Millisecond)
		stop()
		if evs := rec.get(); len(evs) != 0 {
			t.Fatalf("events %+v, want none", evs)
		}
	})
}

func TestASwitchFlippedAndBackWhileNotReadReportsBoth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newEdgePin(gpio.High)
		rec, stop := runButton(t, ButtonConfig{Pin: p, Mode: Latching, ActiveLow: true, Pull: gpio.PullUp})
		time.Sleep(100 * time.Millisecond) // "public" at start settles
		start := time.Now()
		time.Sleep(500 * time.Millisecond)
		p.late(start, []gpio.Level{gpio.Low, gpio.High}, 0, 200*time.Millisecond)
		time.Sleep(100 * time.Millisecond)
		stop()
		var got []bool
		for _, ev := range rec.get() {
			got = append(got, ev.Private)
		}
		// Public at start, then private for 200 ms and public again: each position counts.
		if !slices.Equal(got, []bool{false, true, false}) {
			t.Fatalf("positions %v, want [false true false]", got)
		}
	})
}

func TestAPressUnderWayAsRunStartsCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newEdgePin(gpio.High)
		b, err := NewButton(ButtonConfig{Pin: p, ActiveLow: true, Pull: gpio.PullUp})
		if err != nil {
			t.Fatal(err)
		}
		// The line was requested (NewButton); the press begins before Run reads it.
		start := time.Now()
		time.Sleep(time.Second)
		p.late(start, []gpio.Level{gpio.Low}, 900*time.Millisecond)
		rec := &events{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx, handled(rec.add)) }()
		time.Sleep(100 * time.Millisecond)
		p.late(start, []gpio.Level{gpio.High}, 1100*time.Millisecond)
		time.Sleep(100 * time.Millisecond)
		cancel()
		<-done
		if got := rec.kinds(); !slices.Equal(got, []EventKind{Press}) {
			t.Fatalf("events %v, want the press that was under way", got)
		}
	})
}

func TestAButtonDownBeforeTheLineWasRequestedIsNoPress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newEdgePin(gpio.Low) // held down before lenscap started
		rec, stop := runButton(t, ButtonConfig{Pin: p, ActiveLow: true, Pull: gpio.PullUp})
		start := time.Now()
		p.late(start, []gpio.Level{gpio.High}, 0) // released
		time.Sleep(100 * time.Millisecond)
		stop()
		if evs := rec.get(); len(evs) != 0 {
			t.Fatalf("events %+v, want none", evs)
		}
	})
}
