package devicetest

import (
	"errors"
	"fmt"
	"sync"
)

// Power is a fake power interlock on a fake Driver: while it is off the driver fails to open
// (as a device with no power has no node), and it records whether the driver was still open
// when the power went (a cut that switched off a device in use would be a bug).
type Power struct {
	drv *Driver

	mu            sync.Mutex
	on            bool
	offs, ons     int
	offErr, onErr error
	offWhileOpen  int // Off called while the driver was open
	onWhileOpen   int // On called while the driver was open
}

// ErrNoPower is the driver's Open error while its power is off.
var ErrNoPower = errors.New("devicetest: no power: no such device")

// NewPower returns an interlock on drv, powered.
func NewPower(drv *Driver) *Power { return &Power{drv: drv, on: true} }

// Off implements device.Power.
func (p *Power) Off() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.offs++
	if p.drv.IsOpen() {
		p.offWhileOpen++
	}
	if p.offErr != nil {
		return p.offErr
	}
	p.on = false
	p.drv.FailOpen(ErrNoPower)
	return nil
}

// On implements device.Power.
func (p *Power) On() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ons++
	if p.drv.IsOpen() {
		p.onWhileOpen++
	}
	if p.onErr != nil {
		return p.onErr
	}
	p.on = true
	p.drv.FailOpen(nil)
	return nil
}

func (p *Power) String() string { return fmt.Sprintf("fake interlock on the %s driver", p.drv.Kind()) }

// FailOff makes Off fail with err (nil: succeed again): the device stays present.
func (p *Power) FailOff(err error) { p.mu.Lock(); p.offErr = err; p.mu.Unlock() }

// FailOn makes On fail with err (nil: succeed again): the device does not appear.
func (p *Power) FailOn(err error) { p.mu.Lock(); p.onErr = err; p.mu.Unlock() }

// IsOn reports whether the device is powered now.
func (p *Power) IsOn() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.on }

// Offs and Ons count the calls.
func (p *Power) Offs() int { p.mu.Lock(); defer p.mu.Unlock(); return p.offs }
func (p *Power) Ons() int  { p.mu.Lock(); defer p.mu.Unlock(); return p.ons }

// SwitchedWhileOpen counts the calls made while the driver was open (want 0).
func (p *Power) SwitchedWhileOpen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.offWhileOpen + p.onWhileOpen
}
