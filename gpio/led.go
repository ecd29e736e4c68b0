package gpio

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// LED is an output that is lit or not, whatever level lights it.
type LED struct {
	pin       gpio.PinOut
	activeLow bool
	mu        sync.Mutex
	on        bool
}

// NewLED returns an LED on pin, lit by the high level or, with activeLow, by the low level
// (an LED between the pin and 3.3 V). It is switched off now: a pin that cannot be driven is
// an error naming it.
func NewLED(pin gpio.PinOut, activeLow bool) (*LED, error) {
	l := &LED{pin: pin, activeLow: activeLow}
	if err := l.Set(false); err != nil {
		return nil, err
	}
	return l, nil
}

// Set lights the LED or switches it off.
func (l *LED) Set(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.pin.Out(gpio.Level(on != l.activeLow)); err != nil {
		return fmt.Errorf("gpio: LED %s: %w", l.pin, err)
	}
	l.on = on
	return nil
}

// On reports whether the LED is lit (as last set).
func (l *LED) On() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.on
}

// LightsConfig configures Lights. Either LED may be nil (not wired).
type LightsConfig struct {
	// Privacy is lit whenever any kind of media is private.
	Privacy *LED
	// Live is lit whenever media is being sent to a viewer; Lights asks Sending.
	Live *LED
	// Sending reports whether media is being sent to any viewer now. nil: never.
	Sending func() bool
	// Poll is how often Sending is asked. Zero means 200 ms.
	Poll   time.Duration
	Logger *slog.Logger
}

// Lights drives the privacy and live LEDs from its Run loop, so that the callers telling it
// the state (device.Watch, which holds the device's lock) only post a value.
type Lights struct {
	cfg     LightsConfig
	log     *slog.Logger
	private atomic.Bool
	warning atomic.Bool
	posted  chan struct{}
}

// NewLights returns the lights; Run drives them.
func NewLights(cfg LightsConfig) *Lights {
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Lights{cfg: cfg, log: cfg.Logger, posted: make(chan struct{}, 1)}
}

// SetPrivate tells the lights whether any kind is private. It never blocks; the latest
// value wins.
func (l *Lights) SetPrivate(private bool) {
	l.private.Store(private)
	select {
	case l.posted <- struct{}{}:
	default:
	}
}

// SetWarning says whether a cut could not be confirmed in hardware (the power interlock could
// not read the device's absence back): the privacy LED then blinks fast, a pattern the owner
// can tell from "private" and "live". It never blocks.
func (l *Lights) SetWarning(warn bool) {
	l.warning.Store(warn)
	select {
	case l.posted <- struct{}{}:
	default:
	}
}

// blinkEvery is the privacy LED's half-period while a warning stands.
const blinkEvery = 125 * time.Millisecond

// Run drives the LEDs until ctx ends, then switches the live LED off (nothing is sent any
// more) and leaves the privacy LED showing the last state; it returns nil.
func (l *Lights) Run(ctx context.Context) error {
	set := func(led *LED, on bool) {
		if led == nil || led.On() == on {
			return
		}
		if err := led.Set(on); err != nil {
			l.log.Error("LED", "err", err)
		}
	}
	// Set the privacy LED from the value posted (or the initial one) at once.
	set(l.cfg.Privacy, l.private.Load())
	tick := time.NewTicker(l.cfg.Poll)
	defer tick.Stop()
	var blink *time.Ticker // only while a warning stands: an idle camera wakes for nothing
	var blinkC <-chan time.Time
	defer func() {
		if blink != nil {
			blink.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			set(l.cfg.Live, false)
			set(l.cfg.Privacy, l.private.Load()) // not left dark in a blink's off phase
			return nil
		case <-l.posted:
			switch warn := l.warning.Load(); {
			case warn && blink == nil:
				blink = time.NewTicker(blinkEvery)
				blinkC = blink.C
			case !warn && blink != nil:
				blink.Stop()
				blink, blinkC = nil, nil
			}
			if blink == nil {
				set(l.cfg.Privacy, l.private.Load())
			}
		case <-blinkC:
			if l.cfg.Privacy != nil {
				set(l.cfg.Privacy, !l.cfg.Privacy.On())
			}
		case <-tick.C:
			set(l.cfg.Live, l.cfg.Sending != nil && l.cfg.Sending())
		}
	}
}
