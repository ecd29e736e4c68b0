package device_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
)

// slowOpenDriver is a driver whose Open can be held up, as a camera that needs seconds to
// start (rpicam-vid, ffmpeg, a slow USB camera): the device's lock is held meanwhile. Its
// streams capture a frame every millisecond and count the frames captured after a time.
type slowOpenDriver struct {
	kind    device.Kind
	opening chan struct{} // when set, Open signals it, then waits for release
	release chan struct{}
	after   atomic.Int64 // Unix ns: frames captured after it are counted in captured
	capture atomic.Int64
}

func (d *slowOpenDriver) Kind() device.Kind { return d.kind }
func (d *slowOpenDriver) Codec() device.Codec {
	return device.Codec{MimeType: "audio/PCMU", ClockRate: 8000}
}
func (d *slowOpenDriver) Open() (device.Stream, error) {
	if d.opening != nil {
		close(d.opening)
		<-d.release
	}
	return &msStream{drv: d, closed: make(chan struct{})}, nil
}

type msStream struct {
	drv    *slowOpenDriver
	closed chan struct{}
	once   sync.Once
}

func (s *msStream) ReadFrame() (device.Frame, error) {
	select {
	case <-s.closed:
		return device.Frame{}, device.ErrStreamClosed
	case <-time.After(time.Millisecond):
	}
	now := time.Now()
	if a := s.drv.after.Load(); a != 0 && now.UnixNano() > a {
		s.drv.capture.Add(1)
	}
	return device.Frame{Data: []byte{1}, CaptureTime: now, Keyframe: true}, nil
}
func (s *msStream) RequestKeyframe() {}
func (s *msStream) Close() error     { s.once.Do(func() { close(s.closed) }); return nil }

// afterCutSink counts the audio frames it is given, and those captured after cut.
type afterCutSink struct {
	cut       atomic.Int64 // Unix ns
	delivered atomic.Int64
	late      atomic.Int64
}

func (s *afterCutSink) AddTracks(ts []*device.Track) {
	for _, t := range ts {
		if t.Kind() != device.KindAudio {
			continue
		}
		t.SetSink(func(f device.Frame) {
			s.delivered.Add(1)
			if c := s.cut.Load(); c != 0 && f.CaptureTime.UnixNano() >= c {
				s.late.Add(1)
			}
		})
	}
}
func (s *afterCutSink) RemoveTracks(ts []*device.Track) {}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNoFrameAfterTheTriggerWhileASlowLiftHoldsTheLock(t *testing.T) {
	v := &slowOpenDriver{kind: device.KindVideo}
	a := &slowOpenDriver{kind: device.KindAudio}
	store := device.NewStore(t.TempDir())
	if err := store.Save(device.State{Video: device.KindState{Private: true, By: device.ByRemote}, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	dev, err := device.New(device.Config{Store: store}, v, a)
	if err != nil {
		t.Fatal(err)
	}
	sink := &afterCutSink{}
	dev.AddSink(sink)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-dev.Ready()
	waitUntil(t, "audio flowing", func() bool { return sink.delivered.Load() > 0 })

	// A lift of video whose camera is slow to open: it holds the device's lock meanwhile.
	v.opening, v.release = make(chan struct{}), make(chan struct{})
	no := false
	lifted := make(chan error, 1)
	go func() { _, err := dev.SetPrivacy(ctx, device.Change{Video: &no, By: device.ByRemote}); lifted <- err }()
	<-v.opening

	// The button's edge, a little ahead so that the press has surely arrived by then; the
	// lift is released only once 20 audio frames have been captured after it.
	at := time.Now().Add(2 * time.Millisecond)
	sink.cut.Store(at.UnixNano())
	a.after.Store(at.UnixNano())
	go func() {
		waitUntil(t, "audio captured after the edge", func() bool { return a.capture.Load() >= 20 })
		close(v.release)
	}()
	st, err := dev.PressButton(ctx, at) // waits for the lift to let go of the lock
	if err != nil {
		t.Fatal(err)
	}
	if err := <-lifted; err != nil {
		t.Fatal(err)
	}
	if !st.Audio.Private || !st.Video.Private {
		t.Fatalf("after the press: %+v", st)
	}
	if late := sink.late.Load(); late > 0 {
		t.Errorf("%d of %d audio frames captured after the button edge reached the sink", late, a.capture.Load())
	}
}
