package device_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
)

func TestVanishEndsTheTrackAndReportsTheErrorInStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var reports []device.Status
		r := newRig(t, rigOptions{watch: func(s device.Status) { reports = append(reports, s) }})
		old := r.dev.Track(device.KindVideo)
		ended := 0
		old.OnEnded(func() { ended++ })
		r.video.Vanish(errors.New("csi cable unplugged"))
		synctest.Wait()
		if old.ReadyState() != device.ReadyStateEnded || ended != 1 {
			t.Errorf("vanished track %s, %d listener runs; want ended, 1", old.ReadyState(), ended)
		}
		st := r.dev.Status().Video
		if st.Private || st.Live || !strings.Contains(st.Error, "csi cable unplugged") {
			t.Errorf("video status %+v, want public, not live, with the error", st)
		}
		if r.video.IsOpen() || r.dev.Track(device.KindVideo) != nil {
			t.Error("vanished source still held or its track still the device's")
		}
		calls := r.sink.Calls()
		if last := calls[len(calls)-1]; last.op != "remove" || !slices.Equal(last.tracks, []*device.Track{old}) {
			t.Errorf("last sink call %v, want RemoveTracks of the vanished track", last)
		}
		if last := reports[len(reports)-1]; last.Video.Error == "" {
			t.Errorf("watchers were not told of the failure: %+v", last)
		}
		r.wantLive(device.KindAudio)
		if !strings.Contains(r.logs.String(), "csi cable unplugged") {
			t.Error("the failure was not logged")
		}
	})
}

func TestVanishedSourceIsRetriedWithBackoffAndReopened(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{retryMin: time.Second, retryMax: 4 * time.Second})
		r.video.FailOpen(errors.New("no camera"))
		r.video.Vanish(nil)
		synctest.Wait()
		// Attempts at 1 s, then 2 s, 4 s, 4 s after the previous one.
		calls := 1 // the boot's open
		for i, gap := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
			time.Sleep(gap - time.Millisecond)
			synctest.Wait()
			if got := r.video.OpenCalls(); got != calls {
				t.Fatalf("attempt %d came early: %d open calls, want %d", i, got, calls)
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			calls++
			if got := r.video.OpenCalls(); got != calls {
				t.Fatalf("attempt %d: %d open calls, want %d", i, got, calls)
			}
			if st := r.dev.Status().Video; st.Live || !strings.Contains(st.Error, "no camera") {
				t.Errorf("attempt %d: status %+v, want the open error", i, st)
			}
		}
		n := len(r.sink.Calls())
		r.video.FailOpen(nil)
		time.Sleep(4 * time.Second)
		synctest.Wait()
		r.wantLive(device.KindVideo)
		added := r.sink.Calls()[n:]
		if len(added) != 1 || added[0].op != "add" || added[0].tracks[0] != r.dev.Track(device.KindVideo) {
			t.Errorf("sink calls after the reopen %v, want AddTrack of the new track", added)
		}
		r.video.Push()
		synctest.Wait()
		if r.sink.Frames(device.KindVideo) != 1 {
			t.Error("the reopened track carries no frames")
		}
		if r.video.BusyOpens() != 0 {
			t.Errorf("%d opens of a busy driver", r.video.BusyOpens())
		}
	})
}

func TestOpenFailureAtBootIsReportedAndRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRigWith(t, rigOptions{retryMin: time.Second}, func(r *rig) { r.audio.FailOpen(errors.New("no microphone")) })
		if st := r.dev.Status().Audio; st.Live || !strings.Contains(st.Error, "no microphone") {
			t.Errorf("audio status %+v, want the open error", st)
		}
		r.audio.FailOpen(nil)
		time.Sleep(time.Second)
		synctest.Wait()
		r.wantLive(device.KindAudio)
	})
}

func TestVanishedSourceIsNotRetriedWhilePrivate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{retryMin: time.Second, retryMax: 4 * time.Second})
		r.video.Vanish(nil)
		synctest.Wait()
		r.set(remote(ptr(true), nil))
		if st := r.dev.Status().Video; st.Error != "" || !st.Private {
			t.Errorf("video status %+v: a private kind reports no error", st)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := r.video.OpenCalls(); got != 1 {
			t.Errorf("a private kind was reopened: %d open calls", got)
		}
		r.set(remote(ptr(false), nil))
		r.wantLive(device.KindVideo)
	})
}

func TestFailureOfOneKindKeepsTheOtherKindsError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{retryMin: time.Second})
		r.video.FailOpen(errors.New("no camera"))
		r.video.Vanish(nil)
		synctest.Wait()
		r.set(remote(nil, ptr(true))) // a change of audio only
		if st := r.dev.Status().Video; !strings.Contains(st.Error, "no camera") && !strings.Contains(st.Error, "vanished") {
			t.Errorf("video status %+v after an audio change: the failure is no longer reported", st)
		}
	})
}

func TestVanishDuringPrivacyChangesNeverDeadlocksNorOpensTwice(t *testing.T) {
	// Real time, fast drivers, quick retries: failures race with cuts and lifts.
	r := newRig(t, rigOptions{retryMin: time.Millisecond, retryMax: 2 * time.Millisecond,
		driver: devicetest.Options{Interval: 100 * time.Microsecond, CloseDelay: 100 * time.Microsecond}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 25 {
			if i%3 == 0 {
				r.audio.Vanish(nil)
			}
			r.video.Vanish(nil)
			time.Sleep(300 * time.Microsecond)
		}
	}()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := range 26 {
			p := i%2 == 0
			if _, err := r.dev.SetPrivacy(context.Background(), remote(ptr(p), ptr(p))); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	for _, ch := range []chan struct{}{done, finished} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("deadlock between source failures and privacy changes")
		}
	}
	// The last change lifted both; failures stopped: both kinds come back.
	deadline := time.Now().Add(5 * time.Second)
	for r.dev.Track(device.KindVideo) == nil || r.dev.Track(device.KindAudio) == nil ||
		r.dev.Track(device.KindVideo).ReadyState() != device.ReadyStateLive || r.dev.Track(device.KindAudio).ReadyState() != device.ReadyStateLive {
		if time.Now().After(deadline) {
			t.Fatalf("sources not back after the failures stopped: %+v", r.dev.Status())
		}
		time.Sleep(time.Millisecond)
	}
	r.stop()
	if r.video.BusyOpens()+r.audio.BusyOpens() != 0 {
		t.Errorf("drivers opened while open: video %d, audio %d", r.video.BusyOpens(), r.audio.BusyOpens())
	}
	if r.video.IsOpen() || r.audio.IsOpen() {
		t.Error("a driver is open after Run returned")
	}
}

func TestRetryBackoffNeverGoesBelowRetryMin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// RetryMax left at its default (30 s), below a long RetryMin.
		r := newRig(t, rigOptions{retryMin: time.Minute})
		r.video.FailOpen(errors.New("no camera"))
		r.video.Vanish(nil)
		synctest.Wait()
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := r.video.OpenCalls(); n != 2 {
			t.Fatalf("%d open calls a minute after the failure, want 2", n)
		}
		time.Sleep(time.Minute - time.Millisecond)
		synctest.Wait()
		if n := r.video.OpenCalls(); n != 2 {
			t.Errorf("retried %v after the previous attempt, less than RetryMin", time.Minute-time.Millisecond)
		}
	})
}
