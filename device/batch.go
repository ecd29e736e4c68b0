package device

import (
	"context"
	"time"
)

// SetPrivacyBatch applies several changes as one, for callers that receive many at once (a
// flood of MQTT commands): the state is saved once for the whole batch, not once per change.
//
// Results: each change gets the result it would get from SetPrivacy if the changes were
// applied one by one, in the order given (errs[i] is change i's error: nil, ErrButtonWins or
// ErrInvalidChange for a refused change, which changes nothing), and the state after the
// batch is the state after the last of them; Seq grows by one per change that changed
// something, as it would one by one. So a lift given before a cut of the same kind never undoes
// the cut, and a lift given after it does.
//
// Physical steps: they are taken once, for the difference between the state before the batch
// and the state after it, in SetPrivacy's order: the kinds that end private are cut (gate,
// persist, removeTrack on every viewer as one change, stop, which closes their sources)
// before any kind that ends public is opened. A kind cut and lifted again within the batch is
// not closed and reopened; from the trigger (At) of the earliest change that cuts a kind until
// SetPrivacyBatch returns, that kind's frames are held back (the early gate, as Hold), so
// nothing captured after a cut's trigger reaches a viewer through the batch.
//
// Persistence: the state is persisted once, before anything is lifted. When it cannot be, what
// became private stays so (fail closed), nothing is lifted, and every change that changed
// something gets the save error. When ctx ends before the device is ready (Run has not loaded
// the state) nothing is applied and every errs[i] is ctx's error.
//
// The returned status is the device's after the batch; errs has one entry per change.
func (d *Device) SetPrivacyBatch(ctx context.Context, cs []Change) (st Status, errs []error) {
	errs = make([]error, len(cs))
	if len(cs) == 0 {
		return d.Status(), errs
	}
	cs = append([]Change(nil), cs...) // At is filled in below: the caller's slice stays as it was
	now := d.now()
	for i := range cs {
		if cs[i].At.IsZero() {
			cs[i].At = now
		}
	}
	defer d.holdCuts(cs)() // the gate, before waiting for the lock
	if err := d.waitReady(ctx); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return Status{}, errs
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applyBatchLocked(cs, errs)
}

// holdCuts holds back each kind some change cuts, from the earliest such change's At.
func (d *Device) holdCuts(cs []Change) (release func()) {
	earliest := make(map[Kind]time.Time, len(Kinds))
	for _, c := range cs {
		for _, k := range Kinds {
			if want, named := c.Want(k); named && want {
				if at, ok := earliest[k]; !ok || c.At.Before(at) {
					earliest[k] = c.At
				}
			}
		}
	}
	var rs []func()
	for k, at := range earliest {
		rs = append(rs, d.Hold(at, k))
	}
	return func() {
		for _, r := range rs {
			r()
		}
	}
}

// applyBatchLocked works out the state the changes lead to, one by one, filling in errs, and
// then commits it with one save.
func (d *Device) applyBatchLocked(cs []Change, errs []error) (Status, []error) {
	now := d.now()
	nxt := d.state
	changed := make([]bool, len(cs))
	var trigger *Change // the earliest change that cuts something: for logs and ObserveCut
	for i, c := range cs {
		after, err := d.cfg.Policy.next(nxt, c, now)
		if err != nil {
			errs[i] = err
			d.recordRefusedLocked(c, err)
			continue
		}
		changed[i] = after.Seq != nxt.Seq
		nxt = after
		if cutsSomething(c) && (trigger == nil || c.At.Before(trigger.At)) {
			trigger = &cs[i]
		}
	}
	if nxt.Seq == d.state.Seq {
		return d.statusLocked(), errs
	}
	if trigger == nil {
		trigger = &cs[len(cs)-1]
	}
	st, saveErr := d.commitLocked(nxt, *trigger)
	if saveErr != nil {
		for i := range cs {
			if changed[i] {
				errs[i] = saveErr
			}
		}
	}
	return st, errs
}

// cutsSomething reports whether a change asks for some kind to be private.
func cutsSomething(c Change) bool {
	for _, k := range Kinds {
		if want, named := c.Want(k); named && want {
			return true
		}
	}
	return false
}
