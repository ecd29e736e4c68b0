package device

import (
	"context"
	"fmt"
)

// SetPrivacy applies a change and returns the new status. Kinds becoming private are cut
// first (no frame reaches a viewer once the gate closes), then the state is persisted, then
// their tracks are removed from every viewer and stopped, which closes the sources. Kinds
// becoming public are persisted first, then opened and added to every viewer. A refused change
// (ErrButtonWins, ErrInvalidChange) changes nothing. A failure to persist keeps new privacy
// (fail closed) but lifts nothing, and is returned.
func (d *Device) SetPrivacy(ctx context.Context, c Change) (Status, error) {
	if c.At.IsZero() {
		c.At = d.now()
	}
	defer d.holdCuts([]Change{c})() // the gate, before waiting for the lock
	if err := d.waitReady(ctx); err != nil {
		return Status{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applyLocked(c)
}

// applyLocked applies a change, as SetPrivacy says: gate, persist, remove and stop, lift.
func (d *Device) applyLocked(c Change) (Status, error) {
	now := d.now()
	if c.At.IsZero() {
		c.At = now
	}
	nxt, err := d.cfg.Policy.next(d.state, c, now)
	if err != nil {
		d.recordRefusedLocked(c, err)
		return d.statusLocked(), err
	}
	return d.commitLocked(nxt, c)
}

// commitLocked moves the device from its state to nxt as applyLocked does for one change:
// the kinds becoming private are gated, the state is persisted, their tracks are removed and
// stopped; then the kinds becoming public are opened. c is the change reported to logs and
// to ObserveCut.
func (d *Device) commitLocked(nxt State, c Change) (Status, error) {
	var cut []*Track
	for _, k := range Kinds {
		if nxt.Kind(k).Private && !d.state.Kind(k).Private {
			if t := d.tracks[k]; t != nil {
				t.cut() // first: nothing more is written
				cut = append(cut, t)
			}
		}
	}
	nxt, saveErr := d.saveLocked(nxt)
	prev := d.state
	d.state = nxt
	d.removeLocked(cut, c)
	d.recordChangeLocked(prev, nxt, c, saveErr) // after the cut: its fsync delays no removeTrack
	var lift []Kind
	for _, k := range Kinds {
		if nxt.Kind(k).Private {
			delete(d.errs, k) // a private kind reports no error
		}
		if prev.Kind(k).Private && !nxt.Kind(k).Private && d.tracks[k] == nil {
			d.retry[k] = 0
			lift = append(lift, k)
		}
	}
	d.openLocked(lift...)
	if nxt.Seq != prev.Seq {
		d.log.Info("privacy changed", "by", c.By, "who", c.Who, "video_private", nxt.Video.Private,
			"audio_private", nxt.Audio.Private, "seq", nxt.Seq, "took", d.now().Sub(c.At))
		d.notifyLocked()
	}
	if d.powerOffLocked(c) { // after the state is out: the LED and viewers learn of the cut first
		d.notifyLocked()
	}
	return d.statusLocked(), saveErr
}

// saveLocked persists the next state and returns the state to adopt: nxt, or, when it could
// not be saved, what of it fails closed (what became private stays so, nothing is lifted).
func (d *Device) saveLocked(nxt State) (State, error) {
	if nxt.Seq == d.state.Seq {
		return nxt, nil
	}
	err := d.cfg.Store.Save(nxt)
	if err == nil {
		d.unsaved = false
		return nxt, nil
	}
	// Run saves the state in memory again until it sticks: a cut must survive a power cut,
	// and a lift whose file did change before the error must be undone.
	d.unsaved = true
	for _, k := range Kinds {
		if !nxt.Kind(k).Private && d.state.Kind(k).Private {
			nxt.set(k, d.state.Kind(k))
		}
	}
	if nxt.Video == d.state.Video && nxt.Audio == d.state.Audio {
		nxt.Seq = d.state.Seq // nothing changed after all
	}
	return nxt, fmt.Errorf("device: privacy not persisted: %w", err)
}

// removeLocked is removeStream on every sink for the cut tracks, then stop() on each, which
// closes their sources.
func (d *Device) removeLocked(cut []*Track, c Change) {
	if len(cut) == 0 {
		return
	}
	for _, s := range d.sinks {
		s.RemoveTracks(cut)
	}
	for _, t := range cut {
		t.Stop()
		delete(d.tracks, t.Kind())
		if d.cfg.ObserveCut != nil {
			d.cfg.ObserveCut(t.Kind(), c.By, d.now().Sub(c.At))
		}
	}
}

// openLocked opens the kinds' sources and gives their tracks to the sinks, as one change. It
// returns the first error; a kind that failed is reported for Run to retry.
func (d *Device) openLocked(kinds ...Kind) error {
	if !d.wantedLocked() {
		return nil // on demand with no viewer: the first one opens them (SetDemand)
	}
	var first error
	var ts []*Track
	for _, k := range kinds {
		src := d.sources[k]
		if src == nil || d.stopped { // after Run, nobody would close it
			continue
		}
		err := d.powerOnLocked(k)
		var t *Track
		if err == nil {
			t, err = src.NewTrack()
		}
		if err != nil {
			d.errs[k] = err.Error()
			d.log.Error("source failed to open", "kind", k, "err", err)
			d.reportFailure(k, err)
			if first == nil {
				first = err
			}
			continue
		}
		delete(d.errs, k)
		d.tracks[k] = t
		ts = append(ts, t)
	}
	if len(ts) > 0 {
		for _, s := range d.sinks {
			s.AddTracks(ts)
		}
	}
	return first
}
