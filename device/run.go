package device

import (
	"context"
	"errors"
	"time"
)

// reportFailure records that a kind's source failed, for Run. It never blocks: the source's
// reader goroutine calls it, and a later failure of the same kind replaces an earlier one.
func (d *Device) reportFailure(k Kind, err error) {
	d.failMu.Lock()
	d.failed[k] = err
	d.failMu.Unlock()
	select {
	case d.failC <- struct{}{}:
	default:
	}
}

// takeFailures returns and forgets the failures recorded so far.
func (d *Device) takeFailures() map[Kind]error {
	d.failMu.Lock()
	defer d.failMu.Unlock()
	f := d.failed
	d.failed = make(map[Kind]error)
	return f
}

// Run loads the privacy state (an unreadable state is private), opens the sources of the kinds
// that are not private, and then reopens failed sources with backoff until ctx ends; it then
// stops every track and returns nil. A Device runs once: a second Run is an error.
func (d *Device) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("device: Run called twice")
	}
	d.boot()
	close(d.ready)
	timers := make(map[Kind]*time.Timer)
	retryC := make(chan Kind, len(Kinds))
	retryAfter := func(k Kind, delay time.Duration) {
		if t := timers[k]; t != nil {
			t.Stop()
		}
		timers[k] = time.AfterFunc(delay, func() {
			select {
			case retryC <- k:
			case <-ctx.Done():
			}
		})
	}
	defer func() {
		for _, t := range timers {
			t.Stop()
		}
		d.shutdown()
	}()
	resave := time.NewTicker(d.cfg.RetryMin)
	defer resave.Stop()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.demandC:
			linger.Stop()
			if in, park := d.demandChanged(); park {
				linger.Reset(in)
			}
		case <-linger.C:
			d.park()
		case <-resave.C:
			d.resave()
			d.retryPower()
		case <-d.failC:
			for k, err := range d.takeFailures() {
				if delay, ok := d.sourceFailed(k, err); ok {
					retryAfter(k, delay)
				}
			}
		case k := <-retryC:
			delete(timers, k)
			d.reopen(k)
		}
	}
}

func (d *Device) boot() {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.loadLocked()
	d.state = st
	if d.cfg.Switch != nil && d.cfg.Switch() {
		// Only "private" counts before the debounce. Nothing is open yet: this only persists.
		if c := d.cfg.Policy.switchChange(st, true, true, d.now()); c != nil {
			if _, err := d.applyLocked(*c); err != nil {
				d.log.Error("privacy switch at boot", "err", err)
			}
			st = d.state
		}
	}
	d.log.Info("privacy state loaded", "video_private", st.Video.Private, "audio_private", st.Audio.Private, "seq", st.Seq)
	d.recordBootLocked(st)
	var open []Kind
	for _, k := range Kinds {
		if !st.Kind(k).Private && d.tracks[k] == nil {
			open = append(open, k)
		}
	}
	d.openLocked(open...)
	d.powerOffLocked(Change{At: d.now()}) // what boots private (or idle) is switched off
	d.notifyLocked()
}

// sourceFailed handles a source that failed; it returns the delay before a reopen.
func (d *Device) sourceFailed(k Kind, err error) (time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.tracks[k]; t != nil && t.ReadyState() == ReadyStateEnded {
		for _, s := range d.sinks {
			s.RemoveTracks([]*Track{t})
		}
		delete(d.tracks, k)
	}
	if d.tracks[k] != nil || d.state.Kind(k).Private || d.stopped {
		return 0, false
	}
	d.errs[k] = err.Error()
	d.log.Error("source failed", "kind", k, "err", err)
	d.notifyLocked()
	delay := d.retry[k]
	switch {
	case delay == 0:
		delay = d.cfg.RetryMin
	case delay*2 > d.cfg.RetryMax:
		delay = d.cfg.RetryMax
	default:
		delay *= 2
	}
	d.retry[k] = delay
	return delay, true
}

// resave writes the state again when a save failed.
func (d *Device) resave() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.unsaved {
		return
	}
	if err := d.cfg.Store.Save(d.state); err != nil {
		d.log.Error("privacy state still not persisted", "err", err)
		return
	}
	d.unsaved = false
	d.log.Info("privacy state persisted", "seq", d.state.Seq)
	d.recordLocked(EventSaved, nil, "", "", "")
	d.notifyLocked()
}

// reopen tries a failed source again. A failure is reported by openLocked, and Run schedules
// the next try with a longer delay; a success resets the backoff.
func (d *Device) reopen(k Kind) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tracks[k] != nil || d.state.Kind(k).Private || !d.wantedLocked() {
		return // on demand, the next viewer opens it
	}
	if err := d.openLocked(k); err != nil {
		return
	}
	d.retry[k] = 0
	d.log.Info("source reopened", "kind", k)
	d.notifyLocked()
}

// shutdown stops every track, closing the sources.
func (d *Device) shutdown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	d.closeAllLocked()
	d.powerOffLocked(Change{At: d.now()})
}

// loadLocked reads the saved state. Fail closed: a state that cannot be read may have been
// private, so it is replaced by a private one, by boot.
func (d *Device) loadLocked() State {
	st, err := d.cfg.Store.Load()
	if err == nil {
		return st
	}
	// The seq is lost too, so the new one starts from the clock: still above any count a
	// device reaches, so consumers that order reports by seq keep accepting ours.
	now := d.now()
	st = State{
		Video: KindState{Private: true, By: ByBoot, Since: now},
		Audio: KindState{Private: true, By: ByBoot, Since: now},
		Seq:   uint64(max(now.Unix(), 1)),
	}
	d.log.Error("privacy state unreadable: starting private", "err", err)
	if err := d.cfg.Store.Save(st); err != nil {
		d.log.Error("cannot replace the unreadable privacy state", "err", err)
		d.unsaved = true
	}
	return st
}
