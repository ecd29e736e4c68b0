package device

import (
	"fmt"
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
	Private bool      `json:"private"`
	By      By        `json:"by,omitempty"`
	Since   time.Time `json:"since,omitzero"`
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

// Policy is the owner's configuration of who may do what.
type Policy struct {
	// RemoteMayLift lets remote sources lift privacy engaged by the button. Off by default:
	// the button wins.
	RemoteMayLift bool
	// ButtonKinds are the kinds a button press toggles. Empty means both.
	ButtonKinds []Kind
}

func (p Policy) buttonKinds() []Kind {
	if len(p.ButtonKinds) == 0 {
		return Kinds[:]
	}
	return p.ButtonKinds
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
				ks.By = ByButton
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
		nxt.set(k, KindState{Private: want, By: c.By, Since: now})
		changed = true
	}
	if changed {
		nxt.Seq = cur.Seq + 1
	}
	return nxt, nil
}

// press computes the change a button press makes: when any of the button's kinds is live it
// makes them all private, otherwise it lifts them.
func (p Policy) press(cur State, at time.Time) Change {
	private := false
	for _, k := range p.buttonKinds() {
		if !cur.Kind(k).Private {
			private = true
		}
	}
	c := Change{By: ByButton, At: at}
	for _, k := range p.buttonKinds() {
		v := private
		if k == KindAudio {
			c.Audio = &v
		} else {
			c.Video = &v
		}
	}
	return c
}

// SwitchChange is the change a latching privacy switch in the given position asks for, on
// the policy's ButtonKinds, by the button; nil when it asks for nothing. On "private" the
// kinds become private (the button's, so only the switch lifts them). On "public" they are
// lifted, except atStart (boot, or the first reading): then only the kinds the button made
// private are lifted (the switch was moved while the camera was off), and privacy engaged
// remotely, or from an unreadable state, stays until the switch is moved.
func (p Policy) SwitchChange(cur State, private, atStart bool, at time.Time) *Change {
	c := Change{By: ByButton, At: at}
	named := false
	for _, k := range p.buttonKinds() {
		ks := cur.Kind(k)
		if private && ks.Private && ks.By == ByButton || !private && !ks.Private {
			continue // already so
		}
		if !private && atStart && ks.By != ByButton {
			continue
		}
		v := private
		if k == KindAudio {
			c.Audio = &v
		} else {
			c.Video = &v
		}
		named = true
	}
	if !named {
		return nil
	}
	return &c
}
