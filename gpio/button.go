// Package gpio is lenscap's privacy button (or switch) and its LEDs, on periph.io's conn/v3
// interfaces: it asks for a gpio.PinIn or a gpio.PinOut and never knows which driver is
// behind it (the GPIO character device on a board, gpio-sim in the emulated board, periph's
// gpiotest fakes in tests). Package board finds the pins.
//
// Import rules (enforced by the deps test at the module root): gpio imports periph.io/x/conn
// and the standard library only; never periph.io/x/host (board's) nor device. It says what
// happened to the button (Event); package device decides what that does to privacy.
package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Mode is how the privacy input is used.
type Mode string

// The two kinds of privacy input.
const (
	// Momentary is a push button: each press toggles privacy.
	Momentary Mode = "momentary"
	// Latching is a slide (or toggle) switch: its position is the privacy state, read at start
	// too, so a switch left on "private" keeps the camera off through any reboot.
	Latching Mode = "latching"
)

// EventKind says what the input did.
type EventKind string

// What a privacy input reports.
const (
	// Press is a momentary press: debounced, shorter than the hold time (when a hold gesture
	// is configured). It toggles the button's kinds.
	Press EventKind = "press"
	// Hold is a momentary press held for the hold time (reported while still held, once). It
	// is the "other" gesture: lenscap toggles the microphone only.
	Hold EventKind = "hold"
	// Switch is a latching switch's debounced position (also reported once at start).
	Switch EventKind = "switch"
)

// Event is one debounced thing the privacy input did.
type Event struct {
	Kind EventKind
	// At is when the decision was made: the edge once it had been stable for the debounce time
	// (a Press with a hold gesture configured: the release; a Hold: when the hold time was
	// reached). Privacy cuts count from it.
	At time.Time
	// Edge is when the first edge of the level that decided it was seen (At minus the debounce
	// time, or less): for logs and latency measurements.
	Edge time.Time
	// Private is the switch's position (Switch only): true when it is in the active position.
	Private bool
	// Initial marks the position read when Run starts (Switch only).
	Initial bool
}

// Defaults.
const (
	DefaultDebounce = 30 * time.Millisecond
	// maxWait bounds each WaitForEdge, so the loop sees ctx end even on a driver whose Halt
	// cannot interrupt a wait (periph's gpiotest, or a Halt that races the wait).
	maxWait = 100 * time.Millisecond
)

// ButtonConfig configures a privacy input.
type ButtonConfig struct {
	// Pin is the input. NewButton configures it (In with Pull and both edges).
	Pin gpio.PinIn
	// Mode is Momentary (the default) or Latching.
	Mode Mode
	// ActiveLow means the button is pressed (the switch is on "private") when the line is
	// low: the usual wiring, a button to ground with a pull-up.
	ActiveLow bool
	// Pull is the line's bias: gpio.PullUp, gpio.PullDown, gpio.Float (none, an external
	// resistor) or gpio.PullNoChange.
	Pull gpio.Pull
	// Debounce is how long a level must stay unchanged to count. Zero means 30 ms.
	Debounce time.Duration
	// Hold enables the hold gesture (Momentary only): a press held this long is a Hold, not a
	// Press. Zero disables it. With it, a short press is reported at its release (the
	// gesture cannot be told from a hold before), so it acts that much later.
	Hold time.Duration
	// Now is the clock; nil means time.Now. Waiting uses the pin's WaitForEdge timeouts,
	// so tests run in a testing/synctest bubble, where both are fake.
	Now    func() time.Time
	Logger *slog.Logger
}

// Button is a debounced privacy input: a momentary button or a latching switch.
type Button struct {
	cfg     ButtonConfig
	log     *slog.Logger
	running sync.Mutex
	// On an EdgeReader the kernel queues edges from NewButton on: the level then (or when Run
	// last stopped) is where those edges start, so a press made while Run was starting, which
	// is down when it reads the line, still counts. Guarded by running.
	level   bool
	levelAt time.Time
}

// ErrConfig is wrapped by NewButton's errors about the configuration (not the hardware).
var ErrConfig = errors.New("gpio: bad configuration")

// NewButton configures the pin as an input with edge detection. It starts nothing: Run reads
// the input. A pin that cannot be configured (busy, no permission) is an error naming it.
func NewButton(cfg ButtonConfig) (*Button, error) {
	if cfg.Pin == nil {
		return nil, fmt.Errorf("%w: no pin", ErrConfig)
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = Momentary
	case Momentary, Latching:
	default:
		return nil, fmt.Errorf("%w: mode %q (momentary or latching)", ErrConfig, cfg.Mode)
	}
	if cfg.Debounce < 0 || cfg.Hold < 0 {
		return nil, fmt.Errorf("%w: negative debounce or hold time", ErrConfig)
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Mode == Latching {
		cfg.Hold = 0
	}
	if cfg.Hold != 0 && cfg.Hold <= cfg.Debounce {
		return nil, fmt.Errorf("%w: hold time %s is not longer than the debounce time %s", ErrConfig, cfg.Hold, cfg.Debounce)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Pin.In(cfg.Pull, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("gpio: button %s: configure as input with edges: %w", cfg.Pin, err)
	}
	b := &Button{cfg: cfg, log: cfg.Logger}
	b.level, b.levelAt = b.Active(), cfg.Now()
	return b, nil
}

// Mode returns the input's mode.
func (b *Button) Mode() Mode { return b.cfg.Mode }

// Active reads the line now, without debounce: true when pressed (or on "private"). Boot uses
// it to apply a latching switch's position before any source is opened.
func (b *Button) Active() bool { return b.active(b.cfg.Pin.Read()) }

func (b *Button) active(l gpio.Level) bool { return l != gpio.Level(b.cfg.ActiveLow) }

// Run reads the input until ctx ends, then returns nil. Each debounced event is given to
// decided at once, on the goroutine reading the pin: decided must not block (a privacy gate
// that must not wait for anything goes there). The handler it returns is called with ctx, in
// order, on another goroutine of Run's: a slow handler (a privacy change persists the state)
// delays later handlers but never an edge. Handlers still queued when ctx ends are called with
// the ended ctx, so that they let go of what decided took. A latching switch's position is
// reported once at start (Initial). Run returns once both goroutines have ended, and can be
// called again after it returned.
func (b *Button) Run(ctx context.Context, decided func(Event) (handle func(context.Context))) error {
	if !b.running.TryLock() {
		return errors.New("gpio: button already running")
	}
	defer b.running.Unlock()
	q := newQueue()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			handle, ok := q.pop(ctx)
			if !ok {
				return
			}
			handle(ctx)
		}
	})
	// Halt interrupts a pending WaitForEdge on drivers that support it (the character
	// device); maxWait covers the others.
	halted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = b.cfg.Pin.Halt()
		close(halted)
	})
	b.read(ctx, func(ev Event) { q.push(decided(ev)) })
	if !stop() {
		<-halted // the Halt goroutine has started: wait for it too
	}
	wg.Wait()
	q.drain(ctx) // nothing is pushed or popped any more
	return nil
}

// read is the input loop. Debounce: the level after each edge is the raw level; once it has
// stayed unchanged for the debounce time it becomes the stable level, and a change of the
// stable level is what counts. A bouncing contact changes the raw level many times within
// the window and the stable level once; two real presses count twice however close they are,
// as long as each level they go through lasts the debounce time (no lock-out after a press).
// On an EdgeReader every edge counts at the time the kernel saw it, however late it is read.
func (b *Button) read(ctx context.Context, emit func(Event)) {
	st := b.startInput(emit)
	for ctx.Err() == nil {
		// Edges already queued come first: a decision at "now" must not skip one.
		e, ok := b.nextEdge(0)
		if !ok {
			wait, decided := b.decide(&st, b.cfg.Now(), emit)
			if decided { // the state moved on: what is due next is computed afresh
				continue
			}
			if e, ok = b.nextEdge(max(wait, time.Millisecond)); !ok {
				continue
			}
		}
		// What was due before this edge is decided at the edge's time, then the edge counts.
		for {
			if _, decided := b.decide(&st, e.at, emit); !decided {
				break
			}
		}
		if e.active != st.raw {
			st.raw, st.rawSince = e.active, e.at
		}
	}
	b.level, b.levelAt = st.raw, st.rawSince // a later Run goes on from the last edge read
}

// EdgeReader is a pin whose driver tells each edge's level and time as the kernel recorded
// them (board's GPIO character device lines). Without it, an edge is known only by the level
// read after it: a press shorter than a stall of the reading goroutine would be lost.
type EdgeReader interface {
	// ReadEdge waits up to timeout (0: not at all) for the next edge; ok is false on
	// timeout or Halt.
	ReadEdge(timeout time.Duration) (level gpio.Level, at time.Time, ok bool)
}

type edge struct {
	active bool
	at     time.Time
}

// nextEdge returns the next edge within timeout (0: only one already there).
func (b *Button) nextEdge(timeout time.Duration) (edge, bool) {
	if er, ok := b.cfg.Pin.(EdgeReader); ok {
		l, at, ok := er.ReadEdge(timeout)
		return edge{b.active(l), at}, ok
	}
	// The driver says an edge happened, not which: the level now is what counts. An edge
	// that left the level as it was (a glitch shorter than this read) changes nothing.
	if timeout == 0 || !b.cfg.Pin.WaitForEdge(timeout) {
		return edge{}, false
	}
	return edge{b.Active(), b.cfg.Now()}, true
}

// inputState is what read knows of the input between edges.
type inputState struct {
	raw      bool      // the level read after the last edge
	rawSince time.Time // when raw was first read
	stable   bool      // the debounced level
	// initial: a latching switch's position at start is still to be reported.
	initial bool
	// Momentary: the current press, for the hold gesture; held once it was reported.
	down, held bool
	downSince  time.Time
}

// startInput reads the input as Run starts.
func (b *Button) startInput(emit func(Event)) inputState {
	raw, at := b.Active(), b.cfg.Now()
	if _, ok := b.cfg.Pin.(EdgeReader); ok {
		raw, at = b.level, b.levelAt // the queued edges go on from there
	}
	st := inputState{raw: raw, rawSince: at, stable: raw}
	// A button already down at start is no press: its release reports nothing.
	st.down, st.held = st.stable, st.stable
	// A latching switch's position at start: "private" counts at once (the safe reading);
	// "public" only once it has lasted the debounce time, so a bad first read of a switch
	// left on private cannot open the camera.
	if b.cfg.Mode == Latching {
		if st.stable {
			emit(Event{Kind: Switch, At: st.rawSince, Edge: st.rawSince, Private: true, Initial: true})
		} else {
			st.stable, st.initial = true, true // decided through the debounce: see settle
		}
	}
	return st
}

// decide emits what is due at t: a level that lasted the debounce time, or a press that
// reached the hold time. It reports whether it decided something; if not, wait is how long
// until something could be due, so that read waits for an edge no longer than that.
func (b *Button) decide(st *inputState, t time.Time, emit func(Event)) (wait time.Duration, decided bool) {
	if st.initial && st.raw == st.stable { // read "private" before "public" settled: it counts at once
		st.initial = false
		emit(Event{Kind: Switch, At: t, Edge: st.rawSince, Private: true, Initial: true})
	}
	wait = maxWait
	if st.raw != st.stable {
		due := st.rawSince.Add(b.cfg.Debounce)
		if !t.Before(due) {
			b.settle(st, t, emit)
			return 0, true
		}
		wait = min(wait, due.Sub(t))
	}
	if b.cfg.Hold > 0 && st.down && !st.held {
		due := st.downSince.Add(b.cfg.Hold)
		if !t.Before(due) {
			st.held = true
			emit(Event{Kind: Hold, At: t, Edge: st.downSince})
			return 0, true
		}
		wait = min(wait, due.Sub(t))
	}
	return wait, false
}

// settle makes the raw level, which has lasted the debounce time at t, the stable one.
func (b *Button) settle(st *inputState, t time.Time, emit func(Event)) {
	st.stable = st.raw
	if st.initial {
		st.initial = false
		emit(Event{Kind: Switch, At: t, Edge: st.rawSince, Private: st.stable, Initial: true})
		return
	}
	b.changed(st, t, emit)
}

// changed handles a change of the stable level, which began at st.rawSince and is decided at.
func (b *Button) changed(st *inputState, at time.Time, emit func(Event)) {
	active, edge := st.stable, st.rawSince
	b.log.Debug("privacy input", "active", active, "edge", edge, "debounced_after", at.Sub(edge))
	if b.cfg.Mode == Latching {
		emit(Event{Kind: Switch, At: at, Edge: edge, Private: active})
		return
	}
	if active {
		st.down, st.held, st.downSince = true, false, edge
		if b.cfg.Hold == 0 {
			st.held = true // the press is reported now; its release reports nothing
			emit(Event{Kind: Press, At: at, Edge: edge})
		}
		return
	}
	if st.down && !st.held {
		emit(Event{Kind: Press, At: at, Edge: edge})
	}
	st.down, st.held = false, false
}

// queue hands the decided events' handlers from the input loop to the handler goroutine
// without ever blocking the loop.
type queue struct {
	mu       sync.Mutex
	handlers []func(context.Context)
	signal   chan struct{}
}

func newQueue() *queue { return &queue{signal: make(chan struct{}, 1)} }

func (q *queue) push(h func(context.Context)) {
	q.mu.Lock()
	q.handlers = append(q.handlers, h)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// pop returns the next handler, or false once ctx has ended.
func (q *queue) pop(ctx context.Context) (func(context.Context), bool) {
	for {
		if ctx.Err() != nil {
			return nil, false
		}
		q.mu.Lock()
		if len(q.handlers) > 0 {
			h := q.handlers[0]
			q.handlers = q.handlers[1:]
			q.mu.Unlock()
			return h, true
		}
		q.mu.Unlock()
		select {
		case <-q.signal:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// drain calls the handlers still queued when Run stops with the ended ctx.
func (q *queue) drain(ctx context.Context) {
	q.mu.Lock()
	hs := q.handlers
	q.handlers = nil
	q.mu.Unlock()
	for _, h := range hs {
		h(ctx)
	}
}
