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
	// Powered is false once the kind's power interlock has confirmed its device off; nil
	// without an interlock. It stays true while an off is not confirmed (fail closed).
	Powered *bool `json:"powered,omitempty"`
	// PowerError says why the interlock could not confirm the last switch.
	PowerError string `json:"power_error,omitempty"`
}

// Status is the device's privacy state with what its sources are doing.
type Status struct {
	Video KindStatus `json:"video"`
	Audio KindStatus `json:"audio"`
	Seq   uint64     `json:"seq"`
	// Unsaved is true while the state could not be written to disk (it is retried).
	Unsaved bool `json:"unsaved,omitempty"`
	// Idle is true on demand while no viewer wants the media: the sources are closed.
	Idle bool `json:"idle,omitempty"`
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
	// OnDemand opens the sources only while a viewer wants them (SetDemand), and closes them
	// Linger after the last one left (DefaultLinger when zero). Off: they are open whenever
	// their kind is not private.
	OnDemand bool
	Linger   time.Duration
	// Journal, when set, records every change, refusal, boot state and save failure.
	Journal Journal
	// Power is the kinds' power interlocks (power.go); a kind without one is not switched.
	Power map[Kind]Power
	// ObservePower, when set, is told how each switch of an interlock went (metrics). It is
	// called with the device's lock held.
	ObservePower ObservePowerFunc
	// Switch, when set, reads a latching privacy switch's position (true: on "private"). It is
	// read at boot, after the state is loaded and before any source opens: a switch left on
	// "private" keeps the camera closed through any reboot (its "public" position counts only
	// once debounced, as a ButtonEvent). Nil: no latching switch.
	Switch func() (private bool)
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

	demand  atomic.Int64  // viewers wanting the media (OnDemand)
	demandC chan struct{} // signalled by SetDemand

	mu       sync.Mutex // serialises changes; held through a whole cut or lift
	state    State
	tracks   map[Kind]*Track
	errs     map[Kind]string
	retry    map[Kind]time.Duration
	sinks    []Sink
	watchers []func(Status)
	stopped  bool            // Run returned: no source is opened any more
	on, off  map[Kind]bool   // interlocks confirmed on, confirmed off (power.go)
	powerErr map[Kind]string // why an interlock's last switch was not confirmed
	// powerBackoff and powerNext pace the retries of unconfirmed power offs.
	powerBackoff time.Duration
	powerNext    time.Time
	unsaved      bool // the state in memory is not (known to be) on disk: Run retries
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
	if cfg.Linger <= 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = cfg.RetryMin
	}
	if err := cfg.Policy.validate(); err != nil {
		return nil, err
	}
	d := &Device{
		cfg:     cfg,
		log:     cfg.Logger,
		now:     cfg.Now,
		sources: make(map[Kind]*Source),
		failed:  make(map[Kind]error),
		failC:   make(chan struct{}, 1),
		demandC: make(chan struct{}, 1),
		ready:   make(chan struct{}),
		tracks:  make(map[Kind]*Track),
		errs:    make(map[Kind]string),
		retry:   make(map[Kind]time.Duration),

		on:       make(map[Kind]bool),
		off:      make(map[Kind]bool),
		powerErr: make(map[Kind]string),
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
	st := Status{Seq: d.state.Seq, Unsaved: d.unsaved, Idle: !d.wantedLocked()}
	for _, k := range Kinds {
		t := d.tracks[k] // a track whose source just failed is ended until Run removes it
		ks := KindStatus{KindState: d.state.Kind(k), Live: t != nil && t.ReadyState() == ReadyStateLive, Error: d.errs[k]}
		d.powerStatusLocked(k, &ks)
		if k == KindAudio {
			st.Audio = ks
		} else {
			st.Video = ks
		}
	}
	return st
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

func (d *Device) notifyLocked() {
	st := d.statusLocked()
	for _, f := range d.watchers {
		f(st)
	}
}
