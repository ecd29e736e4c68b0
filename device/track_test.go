package device_test

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
)

func newSource(k device.Kind, o devicetest.Options) (*device.Source, *devicetest.Driver) {
	d := devicetest.NewDriver(k, o)
	return device.NewSource(d, slog.New(slog.DiscardHandler)), d
}

func newTrack(t *testing.T, s *device.Source) *device.Track {
	t.Helper()
	tr, err := s.NewTrack()
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestNewSourceOpensNothing(t *testing.T) {
	s, d := newSource(device.KindVideo, devicetest.Options{})
	if d.OpenCalls() != 0 || s.IsOpen() || s.Kind() != device.KindVideo || s.Codec() != d.Codec() {
		t.Errorf("new source: open calls %d, open %v, kind %s", d.OpenCalls(), s.IsOpen(), s.Kind())
	}
}

func TestTrackDeliversFramesToItsSink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, d := newSource(device.KindVideo, devicetest.Options{})
		tr := newTrack(t, s)
		defer tr.Stop()
		if tr.Kind() != device.KindVideo || tr.Codec().MimeType != "video/H264" || tr.ID() == "" {
			t.Errorf("track kind %s codec %+v id %q", tr.Kind(), tr.Codec(), tr.ID())
		}
		var got []device.Frame
		tr.SetSink(func(f device.Frame) { got = append(got, f) })
		pushed, err := d.Push()
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(got) != 1 || !got[0].CaptureTime.Equal(pushed.CaptureTime) || !got[0].Keyframe {
			t.Errorf("sink got %+v, want the pushed keyframe", got)
		}
	})
}

func TestTrackIDsAreUnique(t *testing.T) {
	s, _ := newSource(device.KindAudio, devicetest.Options{})
	a, b := newTrack(t, s), newTrack(t, s)
	defer a.Stop()
	defer b.Stop()
	if a.ID() == b.ID() {
		t.Errorf("two tracks share id %q", a.ID())
	}
}

func TestStopSetsReadyStateEndedAtOnce(t *testing.T) {
	s, _ := newSource(device.KindVideo, devicetest.Options{})
	tr := newTrack(t, s)
	if got := tr.ReadyState(); got != device.ReadyStateLive {
		t.Fatalf("new track is %s", got)
	}
	tr.Stop()
	if got := tr.ReadyState(); got != device.ReadyStateEnded {
		t.Errorf("after Stop: %s, want ended", got)
	}
}

func TestStopFiresNoEndedEvent(t *testing.T) {
	// W3C: stop() sets readyState to "ended" without firing "ended"; the event is for a
	// track whose source ended by itself.
	s, _ := newSource(device.KindVideo, devicetest.Options{})
	tr := newTrack(t, s)
	fired := false
	tr.OnEnded(func() { fired = true })
	tr.Stop()
	if fired {
		t.Error("Stop fired the track's ended event")
	}
}

func TestStopIsIdempotent(t *testing.T) {
	s, d := newSource(device.KindVideo, devicetest.Options{})
	tr := newTrack(t, s)
	tr.Stop()
	tr.Stop()
	if d.Closes() != 1 || s.Closes() != 1 || tr.ReadyState() != device.ReadyStateEnded {
		t.Errorf("after two Stops: driver closes %d, source closes %d", d.Closes(), s.Closes())
	}
}

func TestEndedListenersRunExactlyOnceInOrderWhenTheSourceEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, d := newSource(device.KindVideo, devicetest.Options{})
		tr := newTrack(t, s)
		var mu sync.Mutex
		var order []int
		for i := range 3 {
			tr.OnEnded(func() {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
			})
		}
		d.Vanish(errors.New("unplugged"))
		synctest.Wait()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(tr.Stop)
		}
		wg.Wait()
		if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
			t.Errorf("listeners ran %v, want [0 1 2]", order)
		}
	})
}

func TestListenerAddedAfterEndNeverRuns(t *testing.T) {
	s, _ := newSource(device.KindVideo, devicetest.Options{})
	tr := newTrack(t, s)
	tr.Stop()
	ran := false
	tr.OnEnded(func() { ran = true })
	tr.Stop()
	if ran {
		t.Error("a listener added after the end ran")
	}
}

func TestNoFrameReachesSinkAfterStopReturns(t *testing.T) {
	// A fast driver and two tracks: the source keeps delivering to the other track while one
	// is stopped, so a late frame would have every chance to slip through.
	s, _ := newSource(device.KindVideo, devicetest.Options{Interval: time.Microsecond})
	for range 20 {
		stopped, other := newTrack(t, s), newTrack(t, s)
		var after atomic.Bool
		var leaked, delivered, otherFrames atomic.Int64
		stopped.SetSink(func(device.Frame) {
			delivered.Add(1)
			if after.Load() {
				leaked.Add(1)
			}
		})
		otherGot := make(chan struct{}, 1)
		other.SetSink(func(device.Frame) {
			otherFrames.Add(1)
			select {
			case otherGot <- struct{}{}:
			default:
			}
		})
		for delivered.Load() < 3 {
			<-otherGot
		}
		stopped.Stop()
		after.Store(true)
		for n := otherFrames.Load(); otherFrames.Load() < n+3; {
			<-otherGot
		}
		other.Stop()
		if leaked.Load() != 0 {
			t.Fatalf("%d frames reached the sink after Stop returned", leaked.Load())
		}
	}
	if s.IsOpen() {
		t.Error("source open after all its tracks stopped")
	}
}

func TestTwoTracksOnOneSourceOpenItOnceAndCloseItAfterBoth(t *testing.T) {
	s, d := newSource(device.KindVideo, devicetest.Options{})
	a, b := newTrack(t, s), newTrack(t, s)
	if d.Opens() != 1 || s.Opens() != 1 || !d.IsOpen() {
		t.Fatalf("two tracks: %d opens, open %v; want 1, true", d.Opens(), d.IsOpen())
	}
	a.Stop()
	if !d.IsOpen() || b.ReadyState() != device.ReadyStateLive {
		t.Fatal("stopping one of two tracks closed the source or ended the other")
	}
	b.Stop()
	if d.IsOpen() || d.Closes() != 1 || s.IsOpen() || s.Closes() != 1 {
		t.Errorf("after both stopped: open %v, closes %d", d.IsOpen(), d.Closes())
	}
	c := newTrack(t, s)
	if d.Opens() != 2 || d.BusyOpens() != 0 {
		t.Errorf("a track after all stopped: %d opens (busy %d), want 2", d.Opens(), d.BusyOpens())
	}
	c.Stop()
}

func TestLastStopClosesTheDriverBeforeItReturns(t *testing.T) {
	// Real time: the source holds its lock while the driver takes CloseDelay to release, and
	// a goroutine waiting on a mutex stops a synctest bubble's clock.
	s, d := newSource(device.KindVideo, devicetest.Options{Interval: time.Millisecond, CloseDelay: 20 * time.Millisecond})
	tr := newTrack(t, s)
	got := make(chan struct{}, 1)
	tr.SetSink(func(device.Frame) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	<-got
	start := time.Now()
	tr.Stop()
	if d.IsOpen() || d.Closes() != 1 {
		t.Errorf("Stop returned with the driver open")
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("Stop took %v, less than the driver's release", took)
	}
}

func TestRequestKeyframeFromManyTracksBeforeAFrameMakesOneKeyframe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, d := newSource(device.KindVideo, devicetest.Options{})
		var tracks []*device.Track
		var keys []bool
		for range 5 {
			tr := newTrack(t, s)
			defer tr.Stop()
			tracks = append(tracks, tr)
		}
		tracks[0].SetSink(func(f device.Frame) { keys = append(keys, f.Keyframe) })
		push := func() {
			t.Helper()
			if _, err := d.Push(); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		push() // the first frame: a keyframe anyway
		push()
		for _, tr := range tracks {
			tr.RequestKeyframe()
			tr.RequestKeyframe()
		}
		push()
		push()
		want := []bool{true, false, true, false}
		if len(keys) != len(want) {
			t.Fatalf("keyframes %v, want %v", keys, want)
		}
		for i := range want {
			if keys[i] != want[i] {
				t.Fatalf("keyframes %v, want %v", keys, want)
			}
		}
		if n := d.ForcedKeyframes(); n != 1 {
			t.Errorf("%d keyframes made on request, want 1", n)
		}
		if d.KeyframeRequests() < 1 {
			t.Error("no keyframe request reached the driver")
		}
	})
}

func TestRequestKeyframeOnEndedTrackDoesNothing(t *testing.T) {
	s, d := newSource(device.KindVideo, devicetest.Options{})
	a, b := newTrack(t, s), newTrack(t, s)
	defer b.Stop()
	a.Stop()
	a.RequestKeyframe()
	if n := d.KeyframeRequests(); n != 0 {
		t.Errorf("an ended track made %d keyframe requests", n)
	}
}

func TestSinkMayRequestAKeyframe(t *testing.T) {
	// A viewer's sink that waits for a keyframe asks for one from inside the sink.
	s, d := newSource(device.KindVideo, devicetest.Options{})
	tr := newTrack(t, s)
	tr.SetSink(func(device.Frame) {
		if tr.ReadyState() == device.ReadyStateLive {
			tr.RequestKeyframe()
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			d.Push()
		}
		tr.Stop()
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("deadlock: a sink calling RequestKeyframe blocked the source")
	}
	if d.ForcedKeyframes() < 2 {
		t.Errorf("%d keyframes made on request, want 2", d.ForcedKeyframes())
	}
}

func TestOpenFailureIsReturnedByNewTrack(t *testing.T) {
	s, d := newSource(device.KindVideo, devicetest.Options{})
	boom := errors.New("no camera on CSI")
	d.FailOpen(boom)
	if tr, err := s.NewTrack(); !errors.Is(err, boom) || tr != nil {
		t.Errorf("NewTrack = %v, %v; want %v", tr, err, boom)
	}
	if s.IsOpen() || s.Opens() != 0 {
		t.Error("a failed open counts as open")
	}
}

func TestSourceFailureEndsItsTracks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, d := newSource(device.KindVideo, devicetest.Options{})
		a, b := newTrack(t, s), newTrack(t, s)
		var ended atomic.Int32
		a.OnEnded(func() { ended.Add(1) })
		b.OnEnded(func() { ended.Add(1) })
		d.Vanish(errors.New("unplugged"))
		synctest.Wait()
		if a.ReadyState() != device.ReadyStateEnded || b.ReadyState() != device.ReadyStateEnded || ended.Load() != 2 {
			t.Errorf("after the source failed: %s %s, %d listeners ran", a.ReadyState(), b.ReadyState(), ended.Load())
		}
		if d.IsOpen() || s.IsOpen() || d.Closes() != 1 {
			t.Errorf("failed stream not released: driver open %v, closes %d", d.IsOpen(), d.Closes())
		}
		a.Stop() // already ended: nothing more happens
		if d.Closes() != 1 || ended.Load() != 2 {
			t.Errorf("Stop after the failure: closes %d, listener runs %d", d.Closes(), ended.Load())
		}
		c := newTrack(t, s)
		defer c.Stop()
		if d.Opens() != 2 || c.ReadyState() != device.ReadyStateLive {
			t.Errorf("new track after failure: %d opens, %s", d.Opens(), c.ReadyState())
		}
	})
}

func TestNewTrackDuringFailureNeverOpensTheDriverTwice(t *testing.T) {
	// The failed stream takes a while to release; a track made meanwhile must wait for the
	// release instead of opening a busy device.
	s, d := newSource(device.KindVideo, devicetest.Options{CloseDelay: 20 * time.Millisecond})
	newTrack(t, s)
	d.Vanish(nil)
	for s.IsOpen() {
		time.Sleep(time.Millisecond)
	}
	tr, err := s.NewTrack()
	if err != nil {
		t.Fatalf("NewTrack while the failed stream was being released: %v", err)
	}
	defer tr.Stop()
	if d.BusyOpens() != 0 {
		t.Errorf("the driver was opened %d times while still open", d.BusyOpens())
	}
}
