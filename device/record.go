package device

import (
	"github.com/lenscap/lenscap/device/journal"
)

// Journal records what happens to privacy (package device/journal writes a tamper-evident
// one). Append is called with the device's lock held, after the state it records is saved.
type Journal interface {
	Append(journal.Entry) (journal.Entry, error)
}

// Journal events the device records.
const (
	EventBoot    = "boot"    // the state loaded at boot (detail: why it is private, if from boot)
	EventCut     = "cut"     // kinds made private
	EventLift    = "lift"    // kinds made public
	EventRefused = "refused" // a change refused (detail: why)
	EventUnsaved = "unsaved" // the state could not be saved (detail: the error)
	EventSaved   = "saved"   // a state that could not be saved is saved at last
)

// recordLocked appends an entry to the journal, when there is one. A journal that cannot be
// written is logged, never in the way of privacy: the cut stands either way.
func (d *Device) recordLocked(event string, kinds []Kind, by By, who, detail string) {
	if d.cfg.Journal == nil {
		return
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	if _, err := d.cfg.Journal.Append(journal.Entry{Event: event, Kinds: names, By: string(by), Who: who, Detail: detail}); err != nil {
		d.log.Error("privacy journal not written", "event", event, "err", err)
	}
}

// changedKinds returns the kinds that go from private to public (lifted) and back (cut).
func changedKinds(prev, nxt State) (cut, lifted []Kind) {
	for _, k := range Kinds {
		switch p, n := prev.Kind(k).Private, nxt.Kind(k).Private; {
		case n && !p:
			cut = append(cut, k)
		case p && !n:
			lifted = append(lifted, k)
		}
	}
	return cut, lifted
}

// recordChangeLocked records what a committed change did: the kinds it cut and lifted, and a
// save that failed (the cut stands; nothing was lifted).
func (d *Device) recordChangeLocked(prev, nxt State, c Change, saveErr error) {
	cut, lifted := changedKinds(prev, nxt)
	if len(cut) > 0 {
		d.recordLocked(EventCut, cut, c.By, c.Who, "")
	}
	if len(lifted) > 0 {
		d.recordLocked(EventLift, lifted, c.By, c.Who, "")
	}
	if saveErr != nil {
		d.recordLocked(EventUnsaved, nil, c.By, c.Who, saveErr.Error())
	}
}

// recordRefusedLocked records a refused change with the kinds it named.
func (d *Device) recordRefusedLocked(c Change, err error) {
	var kinds []Kind
	for _, k := range Kinds {
		if _, named := c.Want(k); named {
			kinds = append(kinds, k)
		}
	}
	d.recordLocked(EventRefused, kinds, c.By, c.Who, err.Error())
}

// recordBootLocked records the state the device booted with: its private kinds and by whom.
func (d *Device) recordBootLocked(st State) {
	var private []Kind
	by := By("")
	for _, k := range Kinds {
		if ks := st.Kind(k); ks.Private {
			private, by = append(private, k), ks.By
		}
	}
	detail := ""
	if by == ByBoot {
		detail = "the saved state was unreadable: private"
	}
	d.recordLocked(EventBoot, private, by, "", detail)
}
