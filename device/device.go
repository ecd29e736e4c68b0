package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Sink receives the device's live tracks: it is the viewer side (implemented by package rtc).
// Its methods are called with the device's lock held, in the order of the changes, and must
// not call back into the Device.
type Sink interface {
	// AddTracks adds newly live tracks to every viewer, as one change (addTrack on each
	// connection for each, on the transceiver the kind always had, and one renegotiation).
	// transceiver the kind had, and a renegotiation).
	AddTracks(ts []*Track)
	// RemoveTracks is removeStream for the given tracks: removeTrack on every sender of any of
	// them, as one change (one negotiation per viewer). When it returns no viewer's sender is
	// sending them any more; the negotiations may still be under way.
	RemoveTracks(ts []*Track)
}

// KindStatus is a kind's privacy with what the hardware is doing now.
type KindStatus struct {
	KindState
	// Live is true while the kind's source is open and its track is live.
	Live bool `json:"live"`
	// Error says why a kind that is not private is not live (a vanished camera).
	Error string `json:"error,omitempty"`
}

// Status is the device's privacy state with what its sources are doing.
type Status struct {
	Video KindStatus `json:"video"`
	Audio KindStatus `json:"audio"`
	Seq   uint64     `json:"seq"`
	// Unsaved is true while the state could not be written to disk (it is retried).
	Unsaved bool `json:"unsaved,omitempty"`
}

// Kind returns the status of one kind.
func (s Status) Kind(k Kind) KindStatus {
	if k == KindAudio {
		return s.Audio
	}
	return s.Video
}

// Config configures a Device.
type Config struct {
	Store  *Store
	Policy Policy
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ObserveCut, when set, is told how long each cut took, from the change's At to the
	// kind's source being closed (metrics). It is called with the device's lock held.
	ObserveCut func(k Kind, by By, d time.Duration)
	// RetryMin and RetryMax bound the backoff between attempts to reopen a failed source
	// while its kind is not private. Zero means 1 s and 30 s.
	RetryMin, RetryMax time.Duration
	// BootChange, when set, is called at boot with the state just loaded (private where it was
	// unreadable), before any source is opened; the change it returns (nil: none) is applied
	// first, as any change is (persisted, refused by the policy like any other). A latching
	// privacy switch uses it: its position is the state, so a switch left on "private" keeps
	// the camera closed through any reboot.
	BootChange func(loaded State) *Change
}

// Device is the camera: its sources, the current track of each kind (the camera-and-microphone
// MediaStream), and the privacy state machine that decides which kinds are live.
type Device struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	sources map[Kind]*Source
	ready   chan struct{}
	running atomic.Bool

	failMu sync.Mutex     // guards failed; never held with mu
	failed map[Kind]error // sources that failed, for Run to handle
	failC  chan struct{}  // signalled when failed gains an entry

	mu       sync.Mutex // serialises changes; held through a whole cut or lift
	state    State
	tracks   map[Kind]*Track
	errs     map[Kind]string
	retry    map[Kind]time.Duration
	sinks    []Sink
	watchers []func(Status)
	stopped  bool // Run returned: no source is opened any more
	unsaved  bool // the state in memory is not (known to be) on disk: Run retries
}

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

// New returns a device over the given drivers (at most one per kind). It opens nothing: Run
// loads the privacy state and then opens the sources of the kinds that are not private.
func New(cfg Config, drivers ...Driver) (*Device, error) {
	if cfg.Store == nil {
		return nil, errors.New("device: no state store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = cfg.RetryMin
	}
	for _, k := range cfg.Policy.ButtonKinds {
		if !k.Valid() {
			return nil, fmt.Errorf("device: button kind %q: %w", k, ErrInvalidChange)
		}
	}
	d := &Device{
		cfg:     cfg,
		log:     cfg.Logger,
		now:     cfg.Now,
		sources: make(map[Kind]*Source),
		failed:  make(map[Kind]error),
		failC:   make(chan struct{}, 1),
		ready:   make(chan struct{}),
		tracks:  make(map[Kind]*Track),
		errs:    make(map[Kind]string),
		retry:   make(map[Kind]time.Duration),
	}
	for _, drv := range drivers {
		k := drv.Kind()
		if !k.Valid() {
			return nil, fmt.Errorf("device: driver of unknown kind %q", k)
		}
		if d.sources[k] != nil {
			return nil, fmt.Errorf("device: two %s drivers", k)
		}
		s := NewSource(drv, cfg.Logger)
		s.setErrorHandler(func(err error) { d.reportFailure(k, err) })
		d.sources[k] = s
	}
	return d, nil
}

// Source returns the source of a kind, or nil.
func (d *Device) Source(k Kind) *Source { return d.sources[k] }

// AddSink registers a viewer side; it is given the tracks live now.
func (d *Device) AddSink(s Sink) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sinks = append(d.sinks, s)
	var ts []*Track
	for _, k := range Kinds {
		if t := d.tracks[k]; t != nil {
			ts = append(ts, t)
		}
	}
	if len(ts) > 0 {
		s.AddTracks(ts)
	}
}

// Watch registers f, called with the new status after every change, in order, with the
// device's lock held: f must hand the status off and return.
func (d *Device) Watch(f func(Status)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.watchers = append(d.watchers, f)
}

// Ready is closed once Run has loaded the state and opened the sources.
func (d *Device) Ready() <-chan struct{} { return d.ready }

// Status returns the current status.
func (d *Device) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.statusLocked()
}

// Track returns the live track of a kind, or nil when the kind is private or failed.
func (d *Device) Track(k Kind) *Track {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tracks[k]
}

func (d *Device) statusLocked() Status {
	st := Status{Seq: d.state.Seq, Unsaved: d.unsaved}
	for _, k := range Kinds {
		t := d.tracks[k] // a track whose source just failed is ended until Run removes it
		ks := KindStatus{KindState: d.state.Kind(k), Live: t != nil && t.ReadyState() == ReadyStateLive, Error: d.errs[k]}
		if k == KindAudio {
			st.Audio = ks
		} else {
			st.Video = ks
		}
	}
	return st
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
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-resave.C:
			d.resave()
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
	st, err := d.cfg.Store.Load()
	if err != nil {
		// Fail closed: a state we cannot read may have been private. Its seq is lost too, so
		// the new one starts from the clock: still above any count a device reaches, so
		// consumers that order reports by seq keep accepting ours.
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
	}
	d.state = st
	if d.cfg.BootChange != nil {
		if c := d.cfg.BootChange(st); c != nil {
			// Nothing is open yet: this only persists the change (and opens what it lifts).
			if _, err := d.applyLocked(*c); err != nil {
				d.log.Error("privacy change at boot", "by", c.By, "err", err)
			}
			st = d.state
		}
	}
	var open []Kind
	for _, k := range Kinds {
		if !st.Kind(k).Private && d.tracks[k] == nil {
			open = append(open, k)
		}
	}
	d.openLocked(open...)
	d.log.Info("privacy state loaded", "video_private", st.Video.Private, "audio_private", st.Audio.Private, "seq", st.Seq)
	d.notifyLocked()
}

// openLocked opens the kinds' sources and gives their tracks to the sinks, as one change. It
// returns the first error; a kind that failed is reported for Run to retry.
func (d *Device) openLocked(kinds ...Kind) error {
	var first error
	var ts []*Track
	for _, k := range kinds {
		src := d.sources[k]
		if src == nil || d.stopped { // after Run, nobody would close it
			continue
		}
		t, err := src.NewTrack()
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
	var cutting []Kind
	for _, k := range Kinds {
		if want, named := c.Want(k); named && want {
			cutting = append(cutting, k)
		}
	}
	defer d.Hold(c.At, cutting...)() // the gate, before waiting for the lock
	if err := d.waitReady(ctx); err != nil {
		return Status{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applyLocked(c)
}

// waitReady waits until Run has loaded the state: no change is applied before.
func (d *Device) waitReady(ctx context.Context) error {
	select {
	case <-d.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PressButton toggles the button's kinds: when any of them is live they all become private,
// otherwise they are all lifted. at is the edge's time after debounce.
func (d *Device) PressButton(ctx context.Context, at time.Time) (Status, error) {
	return d.PressButtonKinds(ctx, at, d.cfg.Policy.buttonKinds()...)
}

// PressButtonKinds is a press of the button that toggles the given kinds instead of the
// policy's ButtonKinds (the hold gesture toggles the microphone only): when any of them is
// live they all become private, otherwise they are all lifted. No kind is an error.
func (d *Device) PressButtonKinds(ctx context.Context, at time.Time, kinds ...Kind) (Status, error) {
	if len(kinds) == 0 {
		return Status{}, fmt.Errorf("%w: no kind named", ErrInvalidChange)
	}
	for _, k := range kinds {
		if !k.Valid() {
			return Status{}, fmt.Errorf("%w: kind %q", ErrInvalidChange, k)
		}
	}
	defer d.Hold(at, kinds...)() // the gate, before waiting for the lock (a press may cut)
	if err := d.waitReady(ctx); err != nil {
		return Status{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applyLocked(Policy{ButtonKinds: kinds}.press(d.state, at))
}

// SetSwitch applies a latching privacy switch's position, as Policy.SwitchChange says (atStart
// for the first reading after start). A position that asks for nothing changes nothing.
func (d *Device) SetSwitch(ctx context.Context, at time.Time, private, atStart bool) (Status, error) {
	if private {
		defer d.Hold(at, d.cfg.Policy.buttonKinds()...)()
	}
	if err := d.waitReady(ctx); err != nil {
		return Status{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.cfg.Policy.SwitchChange(d.state, private, atStart, at)
	if c == nil {
		return d.statusLocked(), nil
	}
	return d.applyLocked(*c)
}

func (d *Device) applyLocked(c Change) (Status, error) {
	now := d.now()
	if c.At.IsZero() {
		c.At = now
	}
	nxt, err := d.cfg.Policy.next(d.state, c, now)
	if err != nil {
		return d.statusLocked(), err
	}
	var cut []*Track
	for _, k := range Kinds {
		if nxt.Kind(k).Private && !d.state.Kind(k).Private {
			if t := d.tracks[k]; t != nil {
				t.cut() // first: nothing more is written
				cut = append(cut, t)
			}
		}
	}
	var saveErr error
	if nxt.Seq != d.state.Seq {
		if err := d.cfg.Store.Save(nxt); err == nil {
			d.unsaved = false
		} else {
			saveErr = fmt.Errorf("device: privacy not persisted: %w", err)
			// Run saves the state in memory again until it sticks: a cut must survive a
			// power cut, and a lift whose file did change before the error must be undone.
			d.unsaved = true
			// Fail closed: keep what became private, lift nothing.
			for _, k := range Kinds {
				if !nxt.Kind(k).Private && d.state.Kind(k).Private {
					nxt.set(k, d.state.Kind(k))
				}
			}
			if nxt.Video == d.state.Video && nxt.Audio == d.state.Audio {
				nxt.Seq = d.state.Seq // nothing changed after all
			}
		}
	}
	prev := d.state
	d.state = nxt
	if len(cut) > 0 {
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
		d.log.Info("privacy changed", "by", c.By, "video_private", nxt.Video.Private,
			"audio_private", nxt.Audio.Private, "seq", nxt.Seq, "took", d.now().Sub(c.At))
		d.notifyLocked()
	}
	return d.statusLocked(), saveErr
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
	d.notifyLocked()
}

// reopen tries a failed source again. A failure is reported by openLocked, and Run schedules
// the next try with a longer delay; a success resets the backoff.
func (d *Device) reopen(k Kind) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tracks[k] != nil || d.state.Kind(k).Private {
		return
	}
	if err := d.openLocked(k); err != nil {
		return
	}
	d.retry[k] = 0
	d.log.Info("source reopened", "kind", k)
	d.notifyLocked()
}

func (d *Device) notifyLocked() {
	st := d.statusLocked()
	for _, f := range d.watchers {
		f(st)
	}
}

// shutdown stops every track, closing the sources.
func (d *Device) shutdown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
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
