package device

import (
	"fmt"
	"time"
)

// The power interlock (Config.Power): a kind's device is switched off once its source is
// closed and it is not wanted (private, idle on demand, or the daemon stopping), and on again
// just before it opens. A switch off counts only once the device's absence is read back; until
// then the kind reports power_error and is retried, and its privacy is unchanged: the cut
// stands whether or not the power could be confirmed off.

// Power is a kind's power interlock; package board implements it (a load switch on an output
// line, or the USB device's authorization).
type Power interface {
	// Off removes the device's power and confirms that it is gone, within its own bound; an
	// error says it could not be confirmed.
	Off() error
	// On restores the power and waits (bounded) for the device to appear; an error says it
	// did not.
	On() error
	String() string
}

// EventPower is the journal's record of an interlock switching (detail: what was confirmed).
const EventPower = "power"

// powerFor returns the kind's interlock, or nil.
func (d *Device) powerFor(k Kind) Power {
	if d.sources[k] == nil {
		return nil
	}
	return d.cfg.Power[k]
}

// powerOffLocked switches off the interlock of every kind that has no track and is not wanted
// (private, idle, or stopping), unless it is confirmed off already, and reports whether it
// tried any. c says who and since when, for the journal and ObservePower. A failed source that
// is retried keeps its power.
func (d *Device) powerOffLocked(c Change) (tried bool) {
	for _, k := range Kinds {
		p := d.powerFor(k)
		if p == nil || d.off[k] || d.tracks[k] != nil {
			continue
		}
		if !d.state.Kind(k).Private && d.wantedLocked() && !d.stopped {
			continue
		}
		d.on[k], tried = false, true
		err := p.Off()
		took := d.now().Sub(c.At)
		if d.cfg.ObservePower != nil {
			d.cfg.ObservePower(k, false, took, err)
		}
		if err != nil {
			msg := "power: " + err.Error() // the interlock says what it saw
			if d.powerErr[k] != msg {      // retried every RetryMin: recorded when it changes
				d.log.Error("power off not confirmed: the cut stands", "kind", k, "power", p.String(), "err", err)
				d.recordLocked(EventPower, []Kind{k}, c.By, c.Who, msg)
			}
			d.powerErr[k] = msg
			continue
		}
		d.off[k] = true
		delete(d.powerErr, k)
		d.log.Info("power off confirmed", "kind", k, "power", p.String(), "after", took)
		d.recordLocked(EventPower, []Kind{k}, c.By, c.Who, "off confirmed: "+p.String())
	}
	return tried
}

// powerOnLocked switches the kind's interlock on, if it has one that is not on, and waits for
// the device. The error is the source's: its kind reports it and Run retries with backoff.
func (d *Device) powerOnLocked(k Kind) error {
	p := d.powerFor(k)
	if p == nil || d.on[k] {
		return nil
	}
	start := d.now()
	err := p.On()
	if d.cfg.ObservePower != nil {
		d.cfg.ObservePower(k, true, d.now().Sub(start), err)
	}
	d.off[k] = false // from now on it may be powered, whatever On said
	delete(d.powerErr, k)
	if err != nil {
		d.recordLocked(EventPower, []Kind{k}, "", "", "on: the device did not appear: "+err.Error())
		return fmt.Errorf("device: power on %s: %w", k, err)
	}
	d.on[k] = true
	d.recordLocked(EventPower, []Kind{k}, "", "", "on: "+p.String())
	return nil
}

// retryPower tries again to confirm the power off of kinds where it failed (Run calls it every
// RetryMin), with backoff from RetryMin to RetryMax: an interlock that never confirms would
// otherwise hold the device's lock for its whole timeout every second.
func (d *Device) retryPower() {
	d.mu.Lock()
	defer d.mu.Unlock()
	failing := false
	for _, k := range Kinds {
		failing = failing || d.powerErr[k] != "" && !d.on[k]
	}
	if !failing {
		d.powerBackoff = 0
		return
	}
	now := d.now()
	if now.Before(d.powerNext) {
		return
	}
	d.powerBackoff = min(max(2*d.powerBackoff, d.cfg.RetryMin), d.cfg.RetryMax)
	d.powerNext = now.Add(d.powerBackoff)
	d.powerOffLocked(Change{At: now})
	d.notifyLocked()
}

// powerStatusLocked fills a kind's power fields of the status.
func (d *Device) powerStatusLocked(k Kind, ks *KindStatus) {
	if d.powerFor(k) == nil {
		return
	}
	powered := !d.off[k]
	ks.Powered, ks.PowerError = &powered, d.powerErr[k]
}

// ObservePowerFunc is told how each switch went: for off, the time from the change's trigger
// to the confirmation; for on, how long the device took to appear. err is the switch's.
type ObservePowerFunc func(k Kind, on bool, took time.Duration, err error)
