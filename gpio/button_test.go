package gpio

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// The tests run in testing/synctest bubbles: time.Sleep advances the fake clock once every
// goroutine waits, and the gpiotest pin's WaitForEdge timeouts use the same clock.

func newPin(l gpio.Level) *gpiotest.Pin {
	return &gpiotest.Pin{N: "GPIO17", Num: 17, L: l, EdgesChan: make(chan gpio.Level, 64)}
}

// events records what a running button reported.
type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) add(ev Event) { e.mu.Lock(); e.evs = append(e.evs, ev); e.mu.Unlock() }

func (e *events) get() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.evs)
}

func (e *events) kinds() []EventKind {
	var ks []EventKind
	for _, ev := range e.get() {
		ks = append(ks, ev.Kind)
	}
	return ks
}

// runButton runs a button until the test's bubble ends it; stop waits for Run to return.
func runButton(t *testing.T, cfg ButtonConfig) (rec *events, stop func()) {
	t.Helper()
	b, err := NewButton(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec = &events{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, handled(rec.add)) }()
	synctest.Wait()
	return rec, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// step is a level the pin goes to, and how long it stays there.
type step struct {
	level gpio.Level
	lasts time.Duration
}

func drive(p *gpiotest.Pin, steps ...step) {
	for _, s := range steps {
		p.EdgesChan <- s.level
		time.Sleep(s.lasts)
	}
}

// bounce is a contact reaching final through 5 edges 1 ms apart.
func bounce(final gpio.Level) []step {
	other := !final
	return []step{{final, time.Millisecond}, {other, time.Millisecond}, {final, time.Millisecond},
		{other, time.Millisecond}, {final, time.Millisecond}}
}

func activeLowButton(p *gpiotest.Pin) ButtonConfig {
	return ButtonConfig{Pin: p, ActiveLow: true, Pull: gpio.PullUp}
}

func TestBouncesInsideTheDebounceWindowAreOnePress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.High)
		rec, stop := runButton(t, activeLowButton(p))
		start := time.Now()
		drive(p, bounce(gpio.Low)...) // the last edge is at 4 ms
		time.Sleep(200 * time.Millisecond)
		drive(p, bounce(gpio.High)...)
		time.Sleep(200 * time.Millisecond)
		stop()
		evs := rec.get()
		if len(evs) != 1 || evs[0].Kind != Press {
			t.Fatalf("events %+v, want one press", evs)
		}
		if want := start.Add(4*time.Millisecond + DefaultDebounce); !evs[0].At.Equal(want) {
			t.Errorf("press at +%s, want +%s (the last bounce plus the debounce time)", evs[0].At.Sub(start), want.Sub(start))
		}
		if got := evs[0].Edge.Sub(start); got != 4*time.Millisecond {
			t.Errorf("edge at +%s, want +4ms", got)
		}
	})
}

func TestRealPressesCloserThanAnyLockOutAreNotLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.High)
		rec, stop := runButton(t, activeLowButton(p))
		// Three presses in 240 ms: each level lasts 40 ms, longer than the 30 ms debounce.
		for range 3 {
			drive(p, step{gpio.Low, 40 * time.Millisecond}, step{gpio.High, 40 * time.Millisecond})
		}
		// And one with a bouncing contact on both edges.
		drive(p, bounce(gpio.Low)...)
		time.Sleep(35 * time.Millisecond)
		drive(p, bounce(gpio.High)...)
		time.Sleep(100 * time.Millisecond)
		stop()
		if got := rec.kinds(); !slices.Equal(got, []EventKind{Press, Press, Press, Press}) {
			t.Fatalf("events %v, want four presses", got)
		}
	})
}

func TestAGlitchShorterThanTheDebounceIsNoPress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.High)
		rec, stop := runButton(t, activeLowButton(p))
		drive(p, step{gpio.Low, 20 * time.Millisecond}, step{gpio.High, 100 * time.Millisecond})
		stop()
		if evs := rec.get(); len(evs) != 0 {
			t.Fatalf("events %+v, want none", evs)
		}
	})
}

func TestAButtonHeldAtStartIsNoPress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.Low)
		rec, stop := runButton(t, ButtonConfig{Pin: p, ActiveLow: true, Pull: gpio.Float, Hold: time.Second})
		time.Sleep(2 * time.Second)
		drive(p, step{gpio.High, 100 * time.Millisecond})
		drive(p, step{gpio.Low, 100 * time.Millisecond}, step{gpio.High, 100 * time.Millisecond})
		stop()
		if got := rec.kinds(); !slices.Equal(got, []EventKind{Press}) {
			t.Fatalf("events %v, want one press (the one after the release)", got)
		}
	})
}

func TestLatchReadsThePositionAtStartAndFollowsTheLevel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A switch left on "private" (low, active low): reported at once, before any edge.
		p := newPin(gpio.Low)
		b, err := NewButton(ButtonConfig{Pin: p, Mode: Latching, ActiveLow: true, Pull: gpio.Float})
		if err != nil {
			t.Fatal(err)
		}
		if !b.Active() {
			t.Fatal("Active() = false for a switch on private")
		}
		rec := &events{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx, handled(rec.add)) }()
		synctest.Wait()
		if evs := rec.get(); len(evs) != 1 || evs[0].Kind != Switch || !evs[0].Private {
			t.Fatalf("at start: %+v, want the switch on private", evs)
		}
		drive(p, bounce(gpio.High)...)
		time.Sleep(100 * time.Millisecond)
		drive(p, step{gpio.Low, 10 * time.Millisecond}, step{gpio.High, 100 * time.Millisecond}) // a glitch
		drive(p, bounce(gpio.Low)...)
		time.Sleep(100 * time.Millisecond)
		cancel()
		<-done
		var got []bool
		for _, ev := range rec.get() {
			if ev.Kind != Switch {
				t.Fatalf("event %+v in latching mode", ev)
			}
			got = append(got, ev.Private)
		}
		if !slices.Equal(got, []bool{true, false, true}) {
			t.Fatalf("positions %v, want [true false true]", got)
		}
	})
}

func TestLatchStartingOnPublicReportsPublic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.Low)
		// Active high with a pull-down: gpiotest's In sets the line low.
		start := time.Now()
		rec, stop := runButton(t, ButtonConfig{Pin: p, Mode: Latching, Pull: gpio.PullDown})
		time.Sleep(100 * time.Millisecond)
		stop()
		evs := rec.get()
		if len(evs) != 1 || evs[0].Private || !evs[0].Initial {
			t.Fatalf("events %+v, want one: public, initial", evs)
		}
		// "public" counts only once it has lasted the debounce time.
		if got := evs[0].At.Sub(start); got != DefaultDebounce {
			t.Errorf("public reported at +%s, want +%s", got, DefaultDebounce)
		}
	})
}

func TestABadFirstReadOfASwitchOnPrivateNeverReportsPublic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.Low) // reads "public" at first...
		rec, stop := runButton(t, ButtonConfig{Pin: p, Mode: Latching, Pull: gpio.PullDown})
		drive(p, step{gpio.High, 200 * time.Millisecond}) // ...but the switch is on "private"
		stop()
		evs := rec.get()
		if len(evs) != 1 || !evs[0].Private || !evs[0].Initial {
			t.Fatalf("events %+v, want one: private, initial", evs)
		}
	})
}

func TestHoldGesture(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.High)
		rec, stop := runButton(t, ButtonConfig{Pin: p, ActiveLow: true, Pull: gpio.PullUp, Hold: time.Second})
		start := time.Now()
		// A short press is reported at its release.
		drive(p, step{gpio.Low, 300 * time.Millisecond}, step{gpio.High, 100 * time.Millisecond})
		if got := rec.kinds(); !slices.Equal(got, []EventKind{Press}) {
			t.Fatalf("after a short press: %v", got)
		}
		if at := rec.get()[0].At.Sub(start); at != 330*time.Millisecond {
			t.Errorf("short press reported at +%s, want at the release plus debounce (+330ms)", at)
		}
		// A long press is one Hold, when the hold time is reached, and nothing at release.
		holdStart := time.Now()
		drive(p, step{gpio.Low, 3 * time.Second})
		evs := rec.get()
		if len(evs) != 2 || evs[1].Kind != Hold {
			t.Fatalf("while held: %+v, want press then hold", evs)
		}
		if at := evs[1].At.Sub(holdStart); at != time.Second {
			t.Errorf("hold reported at +%s, want +1s", at)
		}
		drive(p, step{gpio.High, 100 * time.Millisecond})
		stop()
		if got := rec.kinds(); !slices.Equal(got, []EventKind{Press, Hold}) {
			t.Fatalf("events %v, want press, hold", got)
		}
	})
}

func TestWithoutHoldAPressIsReportedAtTheDebouncedEdge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.High)
		rec, stop := runButton(t, activeLowButton(p))
		start := time.Now()
		drive(p, step{gpio.Low, 5 * time.Second}) // held: still one press, no hold
		if evs := rec.get(); len(evs) != 1 || evs[0].Kind != Press || evs[0].At.Sub(start) != DefaultDebounce {
			t.Fatalf("events %+v, want a press at +30ms", evs)
		}
		drive(p, step{gpio.High, 100 * time.Millisecond})
		stop()
		if got := rec.kinds(); len(got) != 1 {
			t.Fatalf("events %v after release, want the one press", got)
		}
	})
}

func TestASlowHandlerNeitherBlocksTheInputNorLosesEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.High)
		b, err := NewButton(activeLowButton(p))
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		rec := &events{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- b.Run(ctx, handled(func(ev Event) {
				<-release // a handler stuck (persisting the state) for the whole test
				rec.add(ev)
			}))
		}()
		start := time.Now()
		for range 5 {
			drive(p, step{gpio.Low, 50 * time.Millisecond}, step{gpio.High, 50 * time.Millisecond})
		}
		close(release)
		synctest.Wait()
		cancel()
		<-done
		evs := rec.get()
		if len(evs) != 5 {
			t.Fatalf("%d events, want 5", len(evs))
		}
		for i, ev := range evs {
			// Each was decided on time, while the handler was stuck.
			if want := time.Duration(i)*100*time.Millisecond + DefaultDebounce; ev.At.Sub(start) != want {
				t.Errorf("press %d at +%s, want +%s", i, ev.At.Sub(start), want)
			}
		}
	})
}

func TestRunReturnsPromptlyWhenCtxEndsAndLeavesNoGoroutine(t *testing.T) {
	// synctest.Test fails if a goroutine of the bubble is left behind.
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.High)
		_, stop := runButton(t, activeLowButton(p))
		time.Sleep(time.Second)
		before := time.Now()
		stop()
		if took := time.Since(before); took > maxWait {
			t.Errorf("Run took %s to return", took)
		}
	})
}

func TestRunTwiceAtOnceIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.High)
		b, err := NewButton(activeLowButton(p))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx, handled(func(Event) {})) }()
		synctest.Wait()
		if err := b.Run(ctx, handled(func(Event) {})); err == nil {
			t.Error("second Run: no error")
		}
		cancel()
		<-done
	})
}

// failingPin is a pin whose configuration fails (busy, no permission).
type failingPin struct{ *gpiotest.Pin }

func (failingPin) In(gpio.Pull, gpio.Edge) error { return errors.New("permission denied") }

func TestBadConfigurationsAreRefused(t *testing.T) {
	p := newPin(gpio.High)
	for _, cfg := range []ButtonConfig{
		{},
		{Pin: p, Mode: "toggle"},
		{Pin: p, Debounce: -time.Millisecond},
		{Pin: p, Hold: 10 * time.Millisecond},
	} {
		if _, err := NewButton(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := NewButton(ButtonConfig{Pin: failingPin{p}}); err == nil || errors.Is(err, ErrConfig) {
		t.Errorf("a pin that cannot be configured: %v", err)
	}
}

func TestDecidedRunsOnTheInputLoopWhileTheHandlerIsBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.High)
		b, err := NewButton(activeLowButton(p))
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var decided, handledAt []time.Time
		unblock := make(chan struct{})
		decide := func(ev Event) func(context.Context) {
			mu.Lock()
			decided = append(decided, ev.At)
			mu.Unlock()
			return func(context.Context) {
				<-unblock // a handler busy with a slow lift
				mu.Lock()
				handledAt = append(handledAt, ev.At)
				mu.Unlock()
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx, decide) }()
		for range 2 {
			drive(p, step{gpio.Low, 50 * time.Millisecond}, step{gpio.High, 50 * time.Millisecond})
		}
		mu.Lock()
		nd, nh := len(decided), len(handledAt)
		mu.Unlock()
		if nd != 2 || nh != 0 {
			t.Fatalf("while the handler is busy: %d decided, %d handled; want 2 and 0", nd, nh)
		}
		close(unblock)
		synctest.Wait()
		cancel()
		<-done
		if len(handledAt) != 2 {
			t.Errorf("%d handled, want 2", len(handledAt))
		}
	})
}

func TestHandlersStillQueuedAtShutdownAreCalledWithTheEndedContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPin(gpio.High)
		b, err := NewButton(activeLowButton(p))
		if err != nil {
			t.Fatal(err)
		}
		var n sync.WaitGroup
		var live atomic.Int32
		stuck := make(chan struct{})
		decide := func(Event) func(context.Context) {
			n.Add(1) // a gate taken
			return func(ctx context.Context) {
				defer n.Done()
				if ctx.Err() == nil {
					live.Add(1)
					<-stuck
				}
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx, decide) }()
		for range 3 {
			drive(p, step{gpio.Low, 50 * time.Millisecond}, step{gpio.High, 50 * time.Millisecond})
		}
		cancel()
		close(stuck)
		<-done
		n.Wait() // every gate let go: the test would deadlock otherwise
		if live.Load() != 1 {
			t.Errorf("%d handlers ran with a live context, want 1 (the others after the end)", live.Load())
		}
	})
}

// handled is a Run argument that calls f with each event on the handler goroutine while the
// context lasts.
func handled(f func(Event)) func(Event) func(context.Context) {
	return func(ev Event) func(context.Context) {
		return func(ctx context.Context) {
			if ctx.Err() == nil {
				f(ev)
			}
		}
	}
}
