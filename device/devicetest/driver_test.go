package devicetest_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
)

func TestDefaultCodecs(t *testing.T) {
	v := devicetest.NewDriver(device.KindVideo, devicetest.Options{}).Codec()
	if v.MimeType != "video/H264" || v.ClockRate != 90000 {
		t.Errorf("video codec = %+v", v)
	}
	a := devicetest.NewDriver(device.KindAudio, devicetest.Options{}).Codec()
	if a.MimeType != "audio/opus" || a.ClockRate != 48000 || a.Channels != 2 {
		t.Errorf("audio codec = %+v", a)
	}
}

// reader reads frames from a stream into a channel until it fails.
func reader(st device.Stream) (<-chan device.Frame, <-chan error) {
	frames := make(chan device.Frame, 100)
	errc := make(chan error, 1)
	go func() {
		for {
			f, err := st.ReadFrame()
			if err != nil {
				errc <- err
				return
			}
			frames <- f
		}
	}()
	return frames, errc
}

func TestPushedFramesAreKeyframesFirstAndOnRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := devicetest.NewDriver(device.KindVideo, devicetest.Options{})
		st, err := d.Open()
		if err != nil {
			t.Fatal(err)
		}
		frames, errc := reader(st)
		var got []bool
		push := func() {
			t.Helper()
			f, err := d.Push()
			if err != nil {
				t.Fatal(err)
			}
			if f.CaptureTime != time.Now() || len(f.Data) == 0 {
				t.Errorf("frame = %+v", f)
			}
			got = append(got, (<-frames).Keyframe)
		}
		push()
		push()
		st.RequestKeyframe()
		st.RequestKeyframe()
		push()
		push()
		want := []bool{true, false, true, false}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("keyframes = %v, want %v", got, want)
			}
		}
		if n := d.KeyframeRequests(); n != 2 {
			t.Errorf("KeyframeRequests = %d, want 2", n)
		}
		if n := d.ForcedKeyframes(); n != 1 {
			t.Errorf("ForcedKeyframes = %d, want 1", n)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, device.ErrStreamClosed) {
			t.Errorf("ReadFrame after Close = %v, want ErrStreamClosed", err)
		}
	})
}

func TestTickingDriverCapturesAtItsInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := devicetest.NewDriver(device.KindAudio, devicetest.Options{Interval: 20 * time.Millisecond})
		st, _ := d.Open()
		defer st.Close()
		start := time.Now()
		for i := range 3 {
			f, err := st.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if want := start.Add(time.Duration(i) * 20 * time.Millisecond); !f.CaptureTime.Equal(want) {
				t.Errorf("frame %d captured at %v, want %v", i, f.CaptureTime.Sub(start), want.Sub(start))
			}
			if !f.Keyframe || f.Duration != 20*time.Millisecond {
				t.Errorf("audio frame %d = %+v", i, f)
			}
		}
	})
}

func TestSecondOpenWhileOpenIsBusy(t *testing.T) {
	d := devicetest.NewDriver(device.KindVideo, devicetest.Options{})
	st, err := d.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(); !errors.Is(err, devicetest.ErrBusy) {
		t.Errorf("second Open = %v, want ErrBusy", err)
	}
	st.Close()
	st.Close()
	if d.Opens() != 1 || d.Closes() != 1 || d.BusyOpens() != 1 || d.OpenCalls() != 2 || d.IsOpen() {
		t.Errorf("opens %d closes %d busy %d calls %d open %v", d.Opens(), d.Closes(), d.BusyOpens(), d.OpenCalls(), d.IsOpen())
	}
	st2, err := d.Open()
	if err != nil {
		t.Fatalf("Open after Close = %v", err)
	}
	st2.Close()
}

func TestFailOpenFailsUntilCleared(t *testing.T) {
	d := devicetest.NewDriver(device.KindVideo, devicetest.Options{})
	boom := errors.New("no camera")
	d.FailOpen(boom)
	if _, err := d.Open(); !errors.Is(err, boom) {
		t.Errorf("Open = %v, want %v", err, boom)
	}
	d.FailOpen(nil)
	st, err := d.Open()
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

func TestVanishEndsPendingReadFrameWithTheError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := devicetest.NewDriver(device.KindVideo, devicetest.Options{})
		st, _ := d.Open()
		_, errc := reader(st)
		synctest.Wait()
		boom := errors.New("unplugged")
		d.Vanish(boom)
		if err := <-errc; !errors.Is(err, boom) {
			t.Errorf("ReadFrame = %v, want %v", err, boom)
		}
		if _, err := d.Push(); !errors.Is(err, boom) {
			t.Errorf("Push after Vanish = %v, want %v", err, boom)
		}
		if !d.IsOpen() {
			t.Error("vanished stream released before Close")
		}
		st.Close()
		if d.IsOpen() {
			t.Error("open after Close")
		}
	})
}

func TestCloseUnblocksReadFrameAndReturnsOnceReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := devicetest.NewDriver(device.KindVideo, devicetest.Options{CloseDelay: 30 * time.Millisecond})
		st, _ := d.Open()
		_, errc := reader(st)
		synctest.Wait()
		start := time.Now()
		st.Close()
		if took := time.Since(start); took != 30*time.Millisecond {
			t.Errorf("Close took %v, want the CloseDelay", took)
		}
		if d.IsOpen() {
			t.Error("open after Close returned")
		}
		if err := <-errc; !errors.Is(err, device.ErrStreamClosed) {
			t.Errorf("ReadFrame = %v", err)
		}
		if _, err := d.Push(); !errors.Is(err, devicetest.ErrNotOpen) {
			t.Errorf("Push when closed = %v, want ErrNotOpen", err)
		}
	})
}

func TestWaitHelpersSeeOpenAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := devicetest.NewDriver(device.KindVideo, devicetest.Options{})
		ctx := t.Context()
		go func() {
			time.Sleep(time.Second)
			st, _ := d.Open()
			time.Sleep(time.Second)
			st.Close()
		}()
		if err := d.WaitOpen(ctx); err != nil {
			t.Fatal(err)
		}
		if err := d.WaitClosed(ctx); err != nil {
			t.Fatal(err)
		}
		if err := d.WaitOpens(ctx, 1); err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := d.WaitOpen(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitOpen on a closed driver = %v", err)
		}
	})
}
