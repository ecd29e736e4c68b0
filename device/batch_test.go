package device_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
)

func (r *rig) batch(cs ...device.Change) (device.Status, []error) {
	r.t.Helper()
	st, errs := r.dev.SetPrivacyBatch(context.Background(), cs)
	if len(errs) != len(cs) {
		r.t.Fatalf("SetPrivacyBatch: %d errors for %d changes", len(errs), len(cs))
	}
	return st, errs
}

func TestBatchResultsAreThoseOfTheChangesOneByOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		r.set(device.Change{Video: ptr(true), By: device.ByButton})
		seq := r.dev.Status().Seq
		st, errs := r.batch(
			remote(ptr(false), nil),            // the button's privacy: refused
			remote(nil, ptr(true)),             // cut audio
			remote(nil, ptr(false)),            // lift it
			device.Change{By: device.ByRemote}, // names no kind: invalid
			remote(nil, ptr(true)),             // cut it again
			remote(nil, ptr(true)),             // already private: no change
		)
		if !errors.Is(errs[0], device.ErrButtonWins) || !errors.Is(errs[3], device.ErrInvalidChange) {
			t.Errorf("errors %v, want button wins for the first and invalid for the fourth", errs)
		}
		for _, i := range []int{1, 2, 4, 5} {
			if errs[i] != nil {
				t.Errorf("change %d: %v, want nil", i, errs[i])
			}
		}
		if st.Seq != seq+3 || st != r.dev.Status() {
			t.Errorf("status %+v, want seq %d (three changes that changed something), as Status says %+v", st, seq+3, r.dev.Status())
		}
		r.wantPrivate(device.KindVideo, device.ByButton)
		r.wantPrivate(device.KindAudio, device.ByRemote)
		saved, err := device.NewStore(r.dir).Load()
		if err != nil || saved.Seq != st.Seq || saved.Video.By != device.ByButton || saved.Audio.By != device.ByRemote || !saved.Audio.Private {
			t.Errorf("saved state %+v (%v), want the status after the batch %+v", saved, err, st)
		}
	})
}

func TestBatchLiftGivenBeforeACutNeverUndoesIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		r.set(remote(ptr(true), nil))
		opens := r.video.OpenCalls()
		_, errs := r.batch(remote(ptr(false), nil), remote(ptr(true), nil))
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("errors %v", errs)
		}
		r.wantPrivate(device.KindVideo, device.ByRemote)
		if r.video.OpenCalls() != opens {
			t.Error("the camera was opened by a lift that a later cut of the batch overrides")
		}
	})
}

func TestBatchCutThenLiftLeavesTheKindLiveWithoutReopeningItAndHoldsItsFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{driver: devicetest.Options{Interval: 10 * time.Millisecond}})
		r.sink.waitFrames(t, device.KindVideo, 3)
		var mu sync.Mutex
		var delivered []time.Time
		r.sink.hooks(nil, nil, func(tr *device.Track, f device.Frame) {
			if tr.Kind() == device.KindVideo {
				mu.Lock()
				delivered = append(delivered, f.CaptureTime)
				mu.Unlock()
			}
		})
		opens, closes := r.video.OpenCalls(), r.video.Closes()
		cutAt := time.Now()
		release := r.dev.Hold(cutAt, device.KindVideo) // as a command's arrival does
		time.Sleep(100 * time.Millisecond)             // frames captured after the cut
		liftAt := time.Now()
		_, errs := r.batch(device.Change{Video: ptr(true), By: device.ByRemote, At: cutAt},
			device.Change{Video: ptr(false), By: device.ByRemote, At: liftAt})
		release()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("errors %v", errs)
		}
		r.wantLive(device.KindVideo)
		if r.video.OpenCalls() != opens || r.video.Closes() != closes {
			t.Error("the camera was closed and reopened for a cut the batch lifts again")
		}
		n := r.sink.Frames(device.KindVideo)
		r.sink.waitFrames(t, device.KindVideo, n+3) // frames flow again
		mu.Lock()
		defer mu.Unlock()
		for _, at := range delivered {
			if !at.Before(cutAt) && at.Before(liftAt) {
				t.Fatalf("a frame captured %v after the cut, before the lift, reached the sink", at.Sub(cutAt))
			}
		}
	})
}

func TestBatchCutsBeforeItOpensAndSavesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var events []string
		record := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
		reports := 0
		r := newRig(t, rigOptions{watch: func(device.Status) { reports++ }})
		r.set(remote(nil, ptr(true)))
		store := device.NewStore(r.dir)
		r.sink.hooks(func(tr *device.Track) { record("add " + string(tr.Kind())) },
			func(ts []*device.Track) {
				if st, err := store.Load(); err != nil || !st.Video.Private {
					t.Errorf("RemoveTracks before the state was saved: %+v, %v", st, err)
				}
				record("remove")
			}, nil)
		n := reports
		// The lift first, as it arrived; the cut is still carried out before the lift.
		_, errs := r.batch(remote(nil, ptr(false)), remote(ptr(true), nil), remote(ptr(true), nil))
		if slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
			t.Fatalf("errors %v", errs)
		}
		if want := []string{"remove", "add audio"}; !slices.Equal(events, want) {
			t.Errorf("events %v, want %v", events, want)
		}
		if reports-n != 1 {
			t.Errorf("watchers told %d times, want once for the batch", reports-n)
		}
		r.wantPrivate(device.KindVideo, device.ByRemote)
		r.wantLive(device.KindAudio)
		r.sink.hooks(nil, nil, nil)
	})
}

func TestBatchWithAFailingSaveKeepsItsCutsLiftsNothingAndReportsTheError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent := filepath.Join(t.TempDir(), "var")
		r := newRig(t, rigOptions{dir: filepath.Join(parent, "state")})
		r.set(remote(nil, ptr(true)))
		breakStore(t, parent)
		st, errs := r.batch(remote(ptr(true), nil), remote(nil, ptr(false)))
		for i, err := range errs {
			if err == nil || errors.Is(err, device.ErrButtonWins) {
				t.Errorf("change %d: %v, want the save error", i, err)
			}
		}
		if !st.Unsaved || !st.Video.Private || !st.Audio.Private {
			t.Errorf("status %+v, want both private, unsaved", st)
		}
		r.wantPrivate(device.KindVideo, device.ByRemote)
		r.wantPrivate(device.KindAudio, device.ByRemote)
	})
}

func TestBatchBeforeReadyWithAnEndedContextAppliesNothing(t *testing.T) {
	dev, err := device.New(device.Config{Store: device.NewStore(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, errs := dev.SetPrivacyBatch(ctx, []device.Change{remote(ptr(true), nil), remote(nil, ptr(true))})
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("change %d: %v, want the context's error", i, err)
		}
	}
	if st := dev.Status(); st.Video.Private || st.Audio.Private || st.Seq != 0 {
		t.Errorf("status %+v, want nothing applied", st)
	}
}

func TestEmptyBatchChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		before := r.dev.Status()
		st, errs := r.batch()
		if len(errs) != 0 || st != before {
			t.Errorf("empty batch: %+v, %v; want %+v and no errors", st, errs, before)
		}
	})
}
