package device

import (
	"fmt"
	"slices"
	"time"
)

// By says who made a kind private (or lifted it last).
type By string

// Who can change privacy.
const (
	ByButton By = "button" // the physical privacy button or switch
	ByRemote By = "remote" // MQTT, the HTTP API, the viewer page
	ByBoot   By = "boot"   // the state file could not be read at boot: private, to fail closed
)

// KindState is the privacy of one kind.
type KindState struct {
	Private bool `json:"private"`
	By      By   `json:"by,omitempty"`
	// Who names the remote source by its credential ("grandma", an MQTT command's sender):
	// who did what, for the owner. Empty for the button and boot.
	Who   string    `json:"who,omitempty"`
	Since time.Time `json:"since,omitzero"`
}

// State is the privacy of the device. Seq grows with every change, across restarts.
type State struct {
	Video KindState `json:"video"`
	Audio KindState `json:"audio"`
	Seq   uint64    `json:"seq"`
}

// Kind returns the state of one kind.
func (s State) Kind(k Kind) KindState {
	if k == KindAudio {
		return s.Audio
	}
	return s.Video
}

func (s *State) set(k Kind, ks KindState) {
	if k == KindAudio {
		s.Audio = ks
	} else {
		s.Video = ks
	}
}

// AnyPrivate reports whether any kind is private.
func (s State) AnyPrivate() bool { return s.Video.Private || s.Audio.Private }

// Change is a request to make kinds private or not. A nil kind is left as it is.
type Change struct {
	Video *bool
	Audio *bool
	By    By
	// Who names a remote source (Change.By ByRemote) in the state: the credential's name.
	Who string
	// At is when the request was triggered (the button edge after debounce, the command's
	// arrival). Zero means now.
	At time.Time
}

// Want returns the requested privacy of a kind, and whether the change names it.
func (c Change) Want(k Kind) (private, named bool) {
	p := c.Video
	if k == KindAudio {
		p = c.Audio
	}
	if p == nil {
		return false, false
	}
	return *p, true
}

// set names kind k in the change, with the given privacy.
func (c *Change) set(k Kind, private bool) {
	if k == KindAudio {
		c.Audio = &private
	} else {
		c.Video = &private
	}
}

// Policy is the owner's configuration of who may do what.
type Policy struct {
	// RemoteMayLift lets remote sources lift privacy engaged by the button. Off by default:
	// the button wins.
	RemoteMayLift bool
	// ButtonKinds are the kinds a button press toggles and a latching switch sets. Empty
	// means both.
	ButtonKinds []Kind
	// HoldKinds are the kinds the hold gesture (a press held for the hold time) toggles.
	// Empty means the microphone only.
	HoldKinds []Kind
}

func (p Policy) buttonKinds() []Kind {
	if len(p.ButtonKinds) == 0 {
		return Kinds[:]
	}
	return p.ButtonKinds
}

func (p Policy) holdKinds() []Kind {
	if len(p.HoldKinds) == 0 {
		return []Kind{KindAudio}
	}
	return p.HoldKinds
}

// validate reports a kind the policy names that is not a kind.
func (p Policy) validate() error {
	for _, k := range append(slices.Clone(p.ButtonKinds), p.HoldKinds...) {
		if !k.Valid() {
			return fmt.Errorf("device: policy: kind %q: %w", k, ErrInvalidChange)
		}
	}
	return nil
}

// next computes the state a change leads to, without side effects. It refuses a change that
// names no valid source or kind, and a remote lift of the button's privacy (unless the policy
// allows it); a refused change changes nothing, not even the kinds it could apply.
func (p Policy) next(cur State, c Change, now time.Time) (State, error) {
	if c.By != ByButton && c.By != ByRemote {
		return cur, fmt.Errorf("%w: unknown source %q", ErrInvalidChange, c.By)
	}
	if c.Video == nil && c.Audio == nil {
		return cur, fmt.Errorf("%w: no kind named", ErrInvalidChange)
	}
	nxt := cur
	changed := false
	for _, k := range Kinds {
		want, named := c.Want(k)
		if !named {
			continue
		}
		ks := cur.Kind(k)
		if want == ks.Private {
			// Engaging what is already private: the button takes it over, so a remote
			// lift can no longer undo a press.
			if want && c.By == ByButton && ks.By != ByButton {
				ks.By, ks.Who = ByButton, ""
				nxt.set(k, ks)
				changed = true
			}
			continue
		}
		// Privacy from boot (an unreadable state) counts as the button's: the lost state may
		// have been a press, and only the button may undo a press.
		if !want && (ks.By == ByButton || ks.By == ByBoot) && c.By != ByButton && !p.RemoteMayLift {
			if ks.By == ByBoot {
				return cur, fmt.Errorf("%s: private since boot (the saved state was unreadable), which counts as the button's: %w", k, ErrButtonWins)
			}
			return cur, fmt.Errorf("%s: %w", k, ErrButtonWins)
		}
		who := c.Who
		if c.By != ByRemote {
			who = ""
		}
		nxt.set(k, KindState{Private: want, By: c.By, Who: who, Since: now})
		changed = true
	}
	if changed {
		nxt.Seq = cur.Seq + 1
	}
	return nxt, nil
}
