package device_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
)

// sinkCall is one call of a fakeSink: "add" with one track, "remove" with the tracks removed.
type sinkCall struct {
	op     string
	tracks []*device.Track
}

// fakeSink records AddTrack and RemoveTracks, and the frames of the tracks it was given.
type fakeSink struct {
	mu       sync.Mutex
	onAdd    func(*device.Track)   // optional, called on AddTrack
	onRemove func([]*device.Track) // optional, called on RemoveTracks
	onFrame  func(*device.Track, device.Frame)
	calls    []sinkCall
	frames   map[device.Kind]int
	newFr    chan struct{} // closed and replaced on every frame
}

func newFakeSink() *fakeSink {
	return &fakeSink{frames: make(map[device.Kind]int), newFr: make(chan struct{})}
}

func (s *fakeSink) AddTracks(ts []*device.Track) {
	for _, t := range ts {
		s.addTrack(t)
	}
}

func (s *fakeSink) addTrack(t *device.Track) {
	s.mu.Lock()
	s.calls = append(s.calls, sinkCall{"add", []*device.Track{t}})
	onAdd := s.onAdd
	s.mu.Unlock()
	t.SetSink(func(f device.Frame) {
		s.mu.Lock()
		onFrame := s.onFrame
		s.mu.Unlock()
		if onFrame != nil {
			onFrame(t, f)
		}
		s.mu.Lock()
		s.frames[t.Kind()]++
		close(s.newFr)
		s.newFr = make(chan struct{})
		s.mu.Unlock()
	})
	if onAdd != nil {
		onAdd(t)
	}
}

func (s *fakeSink) RemoveTracks(ts []*device.Track) {
	s.mu.Lock()
	s.calls = append(s.calls, sinkCall{"remove", slices.Clone(ts)})
	onRemove := s.onRemove
	s.mu.Unlock()
	if onRemove != nil {
		onRemove(ts)
	}
}

// hooks sets the functions called on AddTrack, RemoveTracks and each frame (nil: none).
func (s *fakeSink) hooks(onAdd func(*device.Track), onRemove func([]*device.Track), onFrame func(*device.Track, device.Frame)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onAdd, s.onRemove, s.onFrame = onAdd, onRemove, onFrame
}

func (s *fakeSink) Calls() []sinkCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *fakeSink) Frames(k device.Kind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames[k]
}

// waitFrames waits until the sink has received n frames of kind k in all.
func (s *fakeSink) waitFrames(t *testing.T, k device.Kind, n int) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		s.mu.Lock()
		got, ch := s.frames[k], s.newFr
		s.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("sink got %d %s frames, want %d", got, k, n)
		}
	}
}

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// rig is a Device over two fake drivers, with a fake sink, running until the test ends.
type rig struct {
	t      *testing.T
	dir    string
	video  *devicetest.Driver
	audio  *devicetest.Driver
	power  map[device.Kind]*devicetest.Power // with rigOptions.power
	sink   *fakeSink
	logs   *syncBuffer
	dev    *device.Device
	cancel context.CancelFunc
	done   chan error
}

type rigOptions struct {
	dir      string // state dir; empty means a new temporary one
	policy   device.Policy
	driver   devicetest.Options
	retryMin time.Duration
	retryMax time.Duration
	watch    func(device.Status) // registered before Run
	// switchAt, when set, is the latching switch's position read at boot (Config.Switch).
	switchAt func() bool
	// onClose, when set, gives each kind's driver its Options.OnClose.
	onClose func(device.Kind) func()
	// journal, when set, is the device's Config.Journal.
	journal device.Journal
	// onDemand sets Config.OnDemand, with linger as Config.Linger.
	onDemand bool
	linger   time.Duration
	// power gives each kind a fake interlock (rig.power).
	power bool
}

// newRig makes a device with fresh drivers and a sink, starts its Run and waits until it is
// ready. Run is stopped (and checked to return nil) when the test ends.
func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	return newRigWith(t, o, nil)
}

// newRigWith is newRig with a function run on the rig before Run starts.
func newRigWith(t *testing.T, o rigOptions, beforeRun func(*rig)) *rig {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	driverOpts := func(k device.Kind) devicetest.Options {
		d := o.driver
		if o.onClose != nil {
			d.OnClose = o.onClose(k)
		}
		return d
	}
	r := &rig{
		t:     t,
		dir:   o.dir,
		video: devicetest.NewDriver(device.KindVideo, driverOpts(device.KindVideo)),
		audio: devicetest.NewDriver(device.KindAudio, driverOpts(device.KindAudio)),
		sink:  newFakeSink(),
		logs:  &syncBuffer{},
	}
	var power map[device.Kind]device.Power
	if o.power {
		r.power = map[device.Kind]*devicetest.Power{device.KindVideo: devicetest.NewPower(r.video), device.KindAudio: devicetest.NewPower(r.audio)}
		power = map[device.Kind]device.Power{device.KindVideo: r.power[device.KindVideo], device.KindAudio: r.power[device.KindAudio]}
	}
	dev, err := device.New(device.Config{
		Power:    power,
		Store:    device.NewStore(o.dir),
		Policy:   o.policy,
		Logger:   slog.New(slog.NewTextHandler(r.logs, nil)),
		RetryMin: o.retryMin,
		RetryMax: o.retryMax,
		Switch:   o.switchAt,
		Journal:  o.journal,
		OnDemand: o.onDemand,
		Linger:   o.linger,
	}, r.video, r.audio)
	if err != nil {
		t.Fatal(err)
	}
	r.dev = dev
	dev.AddSink(r.sink)
	if o.watch != nil {
		dev.Watch(o.watch)
	}
	if beforeRun != nil {
		beforeRun(r)
	}
	r.start()
	return r
}

func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan error, 1)
	go func() { r.done <- r.dev.Run(ctx) }()
	<-r.dev.Ready()
	r.t.Cleanup(r.stop)
}

// stop ends Run and waits for it; it is idempotent.
func (r *rig) stop() {
	r.t.Helper()
	if r.done == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("Run = %v, want nil", err)
	}
	r.done = nil
}

func (r *rig) set(c device.Change) device.Status {
	r.t.Helper()
	st, err := r.dev.SetPrivacy(context.Background(), c)
	if err != nil {
		r.t.Fatalf("SetPrivacy(%s) = %v", describe(c), err)
	}
	return st
}

func (r *rig) press() device.Status {
	r.t.Helper()
	st, err := r.dev.PressButton(context.Background(), time.Now())
	if err != nil {
		r.t.Fatalf("PressButton = %v", err)
	}
	return st
}

func describe(c device.Change) string {
	s := "by " + string(c.By)
	if c.Video != nil {
		s += " video=" + map[bool]string{true: "private", false: "public"}[*c.Video]
	}
	if c.Audio != nil {
		s += " audio=" + map[bool]string{true: "private", false: "public"}[*c.Audio]
	}
	return s
}

func ptr(b bool) *bool { return &b }

func remote(video, audio *bool) device.Change {
	return device.Change{Video: video, Audio: audio, By: device.ByRemote}
}

func (r *rig) driver(k device.Kind) *devicetest.Driver {
	if k == device.KindAudio {
		return r.audio
	}
	return r.video
}

// wantLive checks that a kind is public with a live track and an open driver.
func (r *rig) wantLive(k device.Kind) {
	r.t.Helper()
	st := r.dev.Status().Kind(k)
	tr := r.dev.Track(k)
	if st.Private || !st.Live || st.Error != "" || tr == nil || tr.ReadyState() != device.ReadyStateLive || !r.driver(k).IsOpen() {
		r.t.Errorf("%s: status %+v, track %v, driver open %v; want live", k, st, tr, r.driver(k).IsOpen())
	}
}

// wantPrivate checks that a kind is private by by, with no track and a closed driver.
func (r *rig) wantPrivate(k device.Kind, by device.By) {
	r.t.Helper()
	st := r.dev.Status().Kind(k)
	if !st.Private || st.By != by || st.Live || st.Error != "" || r.dev.Track(k) != nil || r.driver(k).IsOpen() {
		r.t.Errorf("%s: status %+v, driver open %v; want private by %s", k, st, r.driver(k).IsOpen(), by)
	}
}
