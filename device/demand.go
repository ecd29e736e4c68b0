package device

import (
	"time"
)

// On-demand capture (Config.OnDemand): the sources of the kinds that are not private open when
// the first viewer wants them (SetDemand above zero) and close Config.Linger after the last one
// left, so the camera's own LED is on only while someone watches and an idle camera spends
// nothing on capture. It changes no privacy rule: a private kind never opens, and a lift opens
// only if someone is watching.

// DefaultLinger is how long on-demand sources stay open after the last viewer left.
const DefaultLinger = 10 * time.Second

// SetDemand says how many viewers want the media now (the rtc server's count, all kinds of
// viewer together). It never blocks: Run opens or parks the sources. Without OnDemand it does
// nothing.
func (d *Device) SetDemand(viewers int) {
	if !d.cfg.OnDemand {
		return
	}
	d.demand.Store(int64(max(viewers, 0)))
	select {
	case d.demandC <- struct{}{}:
	default:
	}
}

// wantedLocked reports whether sources should be open now (as far as demand goes: privacy is
// the caller's).
func (d *Device) wantedLocked() bool { return !d.cfg.OnDemand || d.demand.Load() > 0 }

// demandChanged opens what viewers now want, or says when to park the sources (the linger).
func (d *Device) demandChanged() (parkIn time.Duration, park bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.demand.Load() == 0 {
		return d.cfg.Linger, true // park: the sources, and the power of a kind whose source failed
	}
	var open []Kind
	for _, k := range Kinds {
		if !d.state.Kind(k).Private && d.tracks[k] == nil && d.sources[k] != nil {
			open = append(open, k)
		}
	}
	if len(open) > 0 {
		d.log.Info("a viewer wants the media: opening the sources", "kinds", open)
		d.openLocked(open...)
		d.notifyLocked()
	}
	return 0, false
}

// park closes every source while nobody watches, if still nobody does, and switches off what
// has an interlock (a kind whose source failed too: it has no track, but power).
func (d *Device) park() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.wantedLocked() {
		return
	}
	closed := len(d.tracks) > 0
	if closed {
		d.log.Info("no viewer: closing the sources until one comes", "linger", d.cfg.Linger)
		d.closeAllLocked()
	}
	if d.powerOffLocked(Change{At: d.now()}) || closed {
		d.notifyLocked()
	}
}

// closeAllLocked removes every live track from the sinks and stops it, closing the sources.
func (d *Device) closeAllLocked() {
	var ts []*Track
	for _, k := range Kinds {
		if t := d.tracks[k]; t != nil {
			t.cut()
			ts = append(ts, t)
		}
	}
	if len(ts) > 0 {
		for _, s := range d.sinks {
			s.RemoveTracks(ts)
		}
	}
	for _, t := range ts {
		t.Stop()
		delete(d.tracks, t.Kind())
	}
}
