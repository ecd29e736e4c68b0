package device_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
)

// slowOpenDriver is a driver whose Open takes as long as a camera that needs seconds to start
// (rpicam-vid, ffmpeg, a slow USB camera): the device's lock is held meanwhile.
type slowOpenDriver struct {
	kind      device.Kind
	openDelay atomic.Int64
}

func (d *slowOpenDriver) Kind() device.Kind { return d.kind }
func (d *slowOpenDriver) Codec() device.Codec {
	return device.Codec{MimeType: "audio/PCMU", ClockRate: 8000}
}
func (d *slowOpenDriver) Open() (device.Stream, error) {
	time.Sleep(time.Duration(d.openDelay.Load()))
	return &msStream{closed: make(chan struct{})}, nil
}

type msStream struct {
	closed chan struct{}
	once   sync.Once
}

func (s *msStream) ReadFrame() (device.Frame, error) {
	select {
	case <-s.closed:
		return device.Frame{}, device.ErrStreamClosed
	case <-time.After(time.Millisecond):
	}
	return device.Frame{Data: []byte{1}, CaptureTime: time.Now(), Keyframe: true}, nil
}
func (s *msStream) RequestKeyframe() {}
func (s *msStream) Close() error     { s.once.Do(func() { close(s.closed) }); return nil }

type afterCutSink struct {
	mu   sync.Mutex
	last map[device.Kind]time.Time
	n    map[device.Kind]int
	cut  time.Time
	late int
}

func (s *afterCutSink) AddTracks(ts []*device.Track) {
	for _, t := range ts {
		t := t
		t.SetSink(func(f device.Frame) {
			s.mu.Lock()
			if !s.cut.IsZero() && f.CaptureTime.After(s.cut) && t.Kind() == device.KindAudio {
				s.late++
			}
			s.mu.Unlock()
		})
	}
}
func (s *afterCutSink) RemoveTracks(ts []*device.Track) {}

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
	defer cancel()
	go dev.Run(ctx)
	<-dev.Ready()
	time.Sleep(50 * time.Millisecond)
	// A lift of video whose camera takes 500 ms to open (rpicam-vid, ffmpeg start, a slow USB camera).
	v.openDelay.Store(int64(500 * time.Millisecond))
	f := false
	go dev.SetPrivacy(ctx, device.Change{Video: &f, By: device.ByRemote})
	time.Sleep(50 * time.Millisecond)
	at := time.Now()
	sink.mu.Lock()
	sink.cut = at
	sink.mu.Unlock()
	st, err := dev.PressButton(ctx, at) // button edge at `at`: cuts both kinds
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(at)
	sink.mu.Lock()
	late := sink.late
	sink.mu.Unlock()
	t.Logf("status %+v; press took %v; audio frames captured after the edge and delivered: %d", st, took, late)
	if late > 0 {
		t.Errorf("%d audio frames captured after the button edge reached the sink", late)
	}
}
