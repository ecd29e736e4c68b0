package camera

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lenscap/lenscap/device"
)

// simDriver is what every simulated driver offers: a device.Driver with its bookkeeping and
// failure hooks.
type simDriver interface {
	device.Driver
	Opens() uint64
	Closes() uint64
	IsOpen() bool
	FailNextOpen(err error)
	Vanish()
	Reappear()
}

// simDriverCase makes one simulated driver on a clock.
type simDriverCase struct {
	name   string
	period time.Duration // between frames
	make   func(t *testing.T, c Clock, openLatency time.Duration) simDriver
}

var _ simDriver = (*TestPattern)(nil)
var _ simDriver = (*TestTone)(nil)

func simDriverCases() []simDriverCase {
	tone := func(enc AudioEncoding) func(*testing.T, Clock, time.Duration) simDriver {
		return func(t *testing.T, c Clock, lat time.Duration) simDriver {
			t.Helper()
			d, err := NewTestTone(TestToneOptions{Encoding: enc, Clock: c, OpenLatency: lat})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	return []simDriverCase{
		{"video", time.Second / 30, func(t *testing.T, c Clock, lat time.Duration) simDriver {
			t.Helper()
			d, err := NewTestPattern(TestPatternOptions{Clock: c, OpenLatency: lat})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}},
		{"opus", 20 * time.Millisecond, tone(AudioOpus)},
		{"pcmu", 20 * time.Millisecond, tone(AudioPCMU)},
	}
}

// forEachSimDriver runs f as a subtest for every simulated driver.
func forEachSimDriver(t *testing.T, f func(t *testing.T, tc simDriverCase)) {
	for _, tc := range simDriverCases() {
		t.Run(tc.name, func(t *testing.T) { f(t, tc) })
	}
}

func mustOpen(t *testing.T, d device.Driver) device.Stream {
	t.Helper()
	st, err := d.Open()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func mustRead(t *testing.T, st device.Stream) device.Frame {
	t.Helper()
	f, err := st.ReadFrame()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return f
}

// readAsync starts a ReadFrame and returns where its error arrives.
func readAsync(st device.Stream) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := st.ReadFrame()
		done <- err
	}()
	return done
}

func TestFirstFrameIsCapturedAtOpenAndIsAKeyframe(t *testing.T) {
	forEachSimDriver(t, func(t *testing.T, tc simDriverCase) {
		c := newFakeClock()
		d := tc.make(t, c, 0)
		st := mustOpen(t, d)
		f := mustRead(t, st) // the fake clock never moves: this must not wait
		if !f.Keyframe || len(f.Data) == 0 || !f.CaptureTime.Equal(epoch) || f.Duration != tc.period {
			t.Errorf("first frame: keyframe %v, %d bytes, captured %v, duration %v; want a keyframe captured at open (%v) lasting %v",
				f.Keyframe, len(f.Data), f.CaptureTime, f.Duration, epoch, tc.period)
		}
	})
}

func TestSecondOpenWhileOpenFailsBusy(t *testing.T) {
	forEachSimDriver(t, func(t *testing.T, tc simDriverCase) {
		d := tc.make(t, newFakeClock(), 0)
		st := mustOpen(t, d)
		st2, err := d.Open()
		if !errors.Is(err, ErrBusy) || st2 != nil || !strings.Contains(err.Error(), "busy") {
			t.Fatalf("second open: %v, %v; want an error wrapping ErrBusy", st2, err)
		}
		if d.Opens() != 1 || !d.IsOpen() {
			t.Errorf("after a refused open: Opens %d, IsOpen %v; want 1, true", d.Opens(), d.IsOpen())
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st3 := mustOpen(t, d)
		mustRead(t, st3)
		if d.Opens() != 2 || d.Closes() != 1 {
			t.Errorf("Opens %d, Closes %d; want 2, 1", d.Opens(), d.Closes())
		}
	})
}

func TestCloseUnblocksPendingReadFrameAndReleasesDevice(t *testing.T) {
	forEachSimDriver(t, func(t *testing.T, tc simDriverCase) {
		c := newFakeClock()
		d := tc.make(t, c, 0)
		st := mustOpen(t, d)
		mustRead(t, st)
		done := readAsync(st)
		c.waitArmed(t, 1) // the reader waits for a tick that never comes
		start := time.Now()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if d.IsOpen() {
			t.Error("IsOpen after Close returned")
		}
		select {
		case err := <-done:
			if elapsed := time.Since(start); elapsed > 50*time.Millisecond {
				t.Errorf("pending ReadFrame returned %v after Close, want < 50ms", elapsed)
			}
			if !errors.Is(err, device.ErrStreamClosed) {
				t.Errorf("pending ReadFrame: %v, want an error wrapping device.ErrStreamClosed", err)
			}
		case <-time.After(time.Second):
			t.Fatal("Close did not unblock a pending ReadFrame")
		}
		if _, err := st.ReadFrame(); !errors.Is(err, device.ErrStreamClosed) {
			t.Errorf("ReadFrame after Close: %v, want device.ErrStreamClosed", err)
		}
	})
}

func TestCloseIsIdempotent(t *testing.T) {
	forEachSimDriver(t, func(t *testing.T, tc simDriverCase) {
		d := tc.make(t, newFakeClock(), 0)
		st := mustOpen(t, d)
		for i := range 3 {
			if err := st.Close(); err != nil {
				t.Fatalf("Close #%d: %v", i+1, err)
			}
		}
		st.RequestKeyframe() // harmless after Close
		if d.Opens() != 1 || d.Closes() != 1 || d.IsOpen() {
			t.Errorf("after 3 Closes: Opens %d, Closes %d, IsOpen %v; want 1, 1, false", d.Opens(), d.Closes(), d.IsOpen())
		}
		// A stale Close must not release the next stream.
		st2 := mustOpen(t, d)
		_ = st.Close()
		if !d.IsOpen() || d.Closes() != 1 {
			t.Errorf("a closed stream's Close released its successor: IsOpen %v, Closes %d", d.IsOpen(), d.Closes())
		}
		mustRead(t, st2)
	})
}

func TestFailNextOpenFailsOnlyTheNextOpen(t *testing.T) {
	forEachSimDriver(t, func(t *testing.T, tc simDriverCase) {
		d := tc.make(t, newFakeClock(), 0)
		boom := errors.New("simulated firmware crash")
		d.FailNextOpen(boom)
		if st, err := d.Open(); !errors.Is(err, boom) || st != nil || !strings.HasPrefix(err.Error(), "camera: open ") {
			t.Fatalf("open after FailNextOpen: %v, %v; want a camera: error wrapping the injected one", st, err)
		}
		if d.IsOpen() || d.Opens() != 0 {
			t.Errorf("failed open: IsOpen %v, Opens %d; want false, 0", d.IsOpen(), d.Opens())
		}
		st := mustOpen(t, d)
		mustRead(t, st)
		_ = st.Close()

		d.FailNextOpen(boom)
		d.FailNextOpen(nil) // cancelled
		mustRead(t, mustOpen(t, d))
	})
}

func TestVanishFailsTheOpenStreamAndLaterOpensUntilReappear(t *testing.T) {
	forEachSimDriver(t, func(t *testing.T, tc simDriverCase) {
		c := newFakeClock()
		d := tc.make(t, c, 0)
		st := mustOpen(t, d)
		mustRead(t, st)
		done := readAsync(st)
		c.waitArmed(t, 1)
		d.Vanish()
		select {
		case err := <-done:
			if !errors.Is(err, ErrGone) || errors.Is(err, device.ErrStreamClosed) {
				t.Errorf("pending ReadFrame after Vanish: %v, want ErrGone (not ErrStreamClosed)", err)
			}
		case <-time.After(time.Second):
			t.Fatal("Vanish did not unblock a pending ReadFrame")
		}
		if _, err := st.ReadFrame(); !errors.Is(err, ErrGone) {
			t.Errorf("ReadFrame after Vanish: %v, want ErrGone", err)
		}
		if !d.IsOpen() {
			t.Error("a vanished device's stream must hold it until Close")
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ReadFrame(); !errors.Is(err, device.ErrStreamClosed) {
			t.Errorf("ReadFrame after Vanish and Close: %v, want ErrStreamClosed", err)
		}
		if d.IsOpen() || d.Closes() != 1 {
			t.Errorf("after Close: IsOpen %v, Closes %d; want false, 1", d.IsOpen(), d.Closes())
		}
		if _, err := d.Open(); !errors.Is(err, ErrGone) {
			t.Errorf("Open of a vanished device: %v, want ErrGone", err)
		}
		d.Reappear()
		f := mustRead(t, mustOpen(t, d))
		if !f.Keyframe {
			t.Error("first frame after the device reappeared is not a keyframe")
		}
		if d.Opens() != 2 {
			t.Errorf("Opens %d, want 2", d.Opens())
		}
	})
}

func TestOpenTakesOpenLatencyHoldingTheDevice(t *testing.T) {
	forEachSimDriver(t, func(t *testing.T, tc simDriverCase) {
		synctest.Test(t, func(t *testing.T) {
			const latency = 250 * time.Millisecond
			d := tc.make(t, nil, latency) // the real clock, faked by synctest
			start := time.Now()
			opened := make(chan device.Stream, 1)
			go func() {
				st, err := d.Open()
				if err != nil {
					t.Error(err)
				}
				opened <- st
			}()
			synctest.Wait()
			if !d.IsOpen() || d.Opens() != 0 {
				t.Errorf("while opening: IsOpen %v, Opens %d; want true, 0", d.IsOpen(), d.Opens())
			}
			if _, err := d.Open(); !errors.Is(err, ErrBusy) {
				t.Errorf("Open while another Open is in progress: %v, want ErrBusy", err)
			}
			st := <-opened
			if took := time.Since(start); took != latency {
				t.Errorf("Open took %v, want %v", took, latency)
			}
			f := mustRead(t, st)
			if !f.CaptureTime.Equal(start.Add(latency)) {
				t.Errorf("first frame captured at +%v, want +%v (when Open returned)", f.CaptureTime.Sub(start), latency)
			}
			_ = st.Close()

			go func() {
				_, err := d.Open()
				opened <- nil
				if !errors.Is(err, ErrGone) {
					t.Errorf("Open when the device vanishes while opening: %v, want ErrGone", err)
				}
			}()
			synctest.Wait()
			d.Vanish()
			<-opened
			if d.IsOpen() {
				t.Error("a failed open left the device held")
			}
		})
	})
}

func TestFramesArePacedByTheClockAtTheirPeriod(t *testing.T) {
	forEachSimDriver(t, func(t *testing.T, tc simDriverCase) {
		synctest.Test(t, func(t *testing.T) {
			d := tc.make(t, nil, 0)
			start := time.Now()
			st := mustOpen(t, d)
			for i := range 31 {
				f := mustRead(t, st)
				want := start.Add(time.Duration(i) * time.Second / time.Duration(time.Second/tc.period))
				if !f.CaptureTime.Equal(want) || !time.Now().Equal(want) {
					t.Fatalf("frame %d captured at +%v, returned at +%v; want both +%v",
						i, f.CaptureTime.Sub(start), time.Since(start), want.Sub(start))
				}
			}
		})
	})
}

// TestFramesArriveInRealTime checks the default real clock without synctest: frames come a
// period apart, never before their capture time.
func TestFramesArriveInRealTime(t *testing.T) {
	forEachSimDriver(t, func(t *testing.T, tc simDriverCase) {
		t.Parallel()
		d := tc.make(t, nil, 0)
		start := time.Now()
		st := mustOpen(t, d)
		const n = 6
		var prev time.Time
		for i := range n {
			f := mustRead(t, st)
			if now := time.Now(); now.Before(f.CaptureTime) {
				t.Errorf("frame %d returned %v before its capture time", i, f.CaptureTime.Sub(now))
			}
			if i > 0 {
				gap := f.CaptureTime.Sub(prev)
				// A reader descheduled for more than a period gets the latest tick: a multiple.
				if ticks := (gap + tc.period/2) / tc.period; ticks < 1 || (gap-ticks*tc.period).Abs() > time.Microsecond {
					t.Errorf("frames %d and %d captured %v apart, want a multiple of %v", i-1, i, gap, tc.period)
				}
			}
			prev = f.CaptureTime
		}
		if took := time.Since(start); took < (n-1)*tc.period {
			t.Errorf("%d frames took %v, want at least %v", n, took, (n-1)*tc.period)
		}
	})
}

func TestLateReaderGetsLatestTickNotABurst(t *testing.T) {
	forEachSimDriver(t, func(t *testing.T, tc simDriverCase) {
		c := newFakeClock()
		st := mustOpen(t, tc.make(t, c, 0))
		mustRead(t, st)
		c.Advance(100 * time.Millisecond) // several ticks pass unread
		if f := mustRead(t, st); !f.CaptureTime.Equal(epoch.Add(100 * time.Millisecond)) {
			t.Fatalf("late frame captured at +%v, want the latest tick, +100ms", f.CaptureTime.Sub(epoch))
		}
		done := readAsync(st)
		c.waitArmed(t, 1) // the next frame waits for the next tick
		c.Advance(tc.period)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestStreamMethodsAreSafeForConcurrentUse(t *testing.T) {
	forEachSimDriver(t, func(t *testing.T, tc simDriverCase) {
		d := tc.make(t, newStepClock(), 0)
		st := mustOpen(t, d)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					st.RequestKeyframe()
					_ = d.IsOpen()
				}
			}
		})
		var err error
		for i := 0; err == nil; i++ {
			if i == 200 {
				wg.Go(func() { _ = st.Close() })
			}
			_, err = st.ReadFrame()
		}
		close(stop)
		wg.Wait()
		if !errors.Is(err, device.ErrStreamClosed) {
			t.Errorf("reader ended with %v, want ErrStreamClosed", err)
		}
	})
}

// TestReadFrameAllocatesNothing counts the heap allocations of 500 frames exactly
// (testing.AllocsPerRun rounds an average down), after 500 frames of warm-up: gopus makes a
// dozen lazy allocations in its first frames.
func TestReadFrameAllocatesNothing(t *testing.T) {
	forEachSimDriver(t, func(t *testing.T, tc simDriverCase) {
		st := mustOpen(t, tc.make(t, newStepClock(), 0))
		read := func(n int) {
			for range n {
				st.RequestKeyframe()
				if _, err := st.ReadFrame(); err != nil {
					t.Fatal(err)
				}
			}
		}
		read(500)
		// The count is process-wide: a goroutine left by another test may allocate meanwhile.
		// The least of three rounds is ours; a per-frame allocation would show in every round.
		least := ^uint64(0)
		for range 3 {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			read(500)
			runtime.ReadMemStats(&after)
			least = min(least, after.Mallocs-before.Mallocs)
		}
		if least != 0 {
			t.Errorf("500 frames made %d heap allocations, want 0", least)
		}
	})
}
