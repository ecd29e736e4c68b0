package device

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Gesture is what the privacy input did (package gpio debounces the pin and reports it).
type Gesture string

// The gestures of a privacy input.
const (
	// GesturePress is a momentary button's press: it toggles the policy's ButtonKinds.
	GesturePress Gesture = "press"
	// GestureHold is a press held for the hold time: it toggles the policy's HoldKinds.
	GestureHold Gesture = "hold"
	// GestureSwitch is a latching switch's position (ButtonEvent.Private): its position is
	// the state of the policy's ButtonKinds.
	GestureSwitch Gesture = "switch"
)

// ButtonEvent is one debounced thing the privacy input did.
type ButtonEvent struct {
	Gesture Gesture
	// At is when the event was decided (the edge once debounced): no frame captured at or
	// after it reaches a viewer if the event cuts.
	At time.Time
	// Private is a switch's position: true on "private".
	Private bool
	// Initial marks a switch's first reading after start: moved to "public" while the
	// camera was off, it lifts only the button's own privacy (Policy.switchChange).
	Initial bool
}

// Button takes an event of the privacy input at the moment it is decided: it holds back at
// once, without waiting for anything, the frames of every kind the event may cut (the early
// gate), and returns apply, which applies the event as the Policy says and then lets the held
// kinds through again if they stayed live. Call Button on the goroutine that decides the event
// (the pin's input loop: it never blocks), and apply on another (it waits for the device's lock
// and persists the state). apply runs once; with ctx already ended it applies nothing and only
// lets the gate go. An event that asks for nothing (a switch in the position it is in) changes
// nothing.
func (d *Device) Button(ev ButtonEvent) (apply func(context.Context) (Status, error)) {
	if ev.At.IsZero() {
		ev.At = d.now()
	}
	release := d.Hold(ev.At, d.cfg.Policy.mayCut(ev)...)
	var once sync.Once
	return func(ctx context.Context) (st Status, err error) {
		err = fmt.Errorf("device: button %s applied twice", ev.Gesture)
		once.Do(func() {
			defer release()
			st, err = d.applyButton(ctx, ev)
		})
		return st, err
	}
}

// PressButton presses the button: Button with a press at at, applied at once.
func (d *Device) PressButton(ctx context.Context, at time.Time) (Status, error) {
	return d.Button(ButtonEvent{Gesture: GesturePress, At: at})(ctx)
}

// applyButton applies a button event; the caller holds its gate.
func (d *Device) applyButton(ctx context.Context, ev ButtonEvent) (Status, error) {
	if err := ctx.Err(); err != nil {
		return Status{}, err
	}
	if err := d.waitReady(ctx); err != nil {
		return Status{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c, err := d.cfg.Policy.buttonChange(d.state, ev)
	if err != nil || c == nil {
		return d.statusLocked(), err
	}
	return d.applyLocked(*c)
}

// mayCut returns the kinds a button event may make private: the kinds its gate holds back.
func (p Policy) mayCut(ev ButtonEvent) []Kind {
	switch {
	case ev.Gesture == GesturePress, ev.Gesture == GestureSwitch && ev.Private:
		return p.buttonKinds()
	case ev.Gesture == GestureHold:
		return p.holdKinds()
	}
	return nil
}

// buttonChange is the change a button event asks for in state cur; nil when it asks for
// nothing. A press toggles the ButtonKinds, a hold the HoldKinds; a switch sets the
// ButtonKinds to its position.
func (p Policy) buttonChange(cur State, ev ButtonEvent) (*Change, error) {
	switch ev.Gesture {
	case GesturePress:
		return toggle(cur, p.buttonKinds(), ev.At), nil
	case GestureHold:
		return toggle(cur, p.holdKinds(), ev.At), nil
	case GestureSwitch:
		return p.switchChange(cur, ev.Private, ev.Initial, ev.At), nil
	}
	return nil, fmt.Errorf("%w: unknown button gesture %q", ErrInvalidChange, ev.Gesture)
}

// toggle is a press on kinds: when any of them is live it makes them all private, otherwise
// it lifts them all, by the button.
func toggle(cur State, kinds []Kind, at time.Time) *Change {
	private := false
	for _, k := range kinds {
		if !cur.Kind(k).Private {
			private = true
		}
	}
	c := &Change{By: ByButton, At: at}
	for _, k := range kinds {
		c.set(k, private)
	}
	return c
}

// switchChange is the change a latching privacy switch in the given position asks for, on
// the policy's ButtonKinds, by the button; nil when it asks for nothing. On "private" the
// kinds become private (the button's, so only the switch lifts them). On "public" they are
// lifted, except initial (boot, or the first reading): then only the kinds the button made
// private are lifted (the switch was moved while the camera was off), and privacy engaged
// remotely, or from an unreadable state, stays until the switch is moved.
func (p Policy) switchChange(cur State, private, initial bool, at time.Time) *Change {
	c := &Change{By: ByButton, At: at}
	named := false
	for _, k := range p.buttonKinds() {
		ks := cur.Kind(k)
		if private && ks.Private && ks.By == ByButton || !private && !ks.Private {
			continue // already so
		}
		if !private && initial && ks.By != ByButton {
			continue
		}
		c.set(k, private)
		named = true
	}
	if !named {
		return nil
	}
	return c
}
