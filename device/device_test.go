package device_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
)

func TestNewRejectsBadConfigs(t *testing.T) {
	store := device.NewStore(t.TempDir())
	v := devicetest.NewDriver(device.KindVideo, devicetest.Options{})
	for name, tc := range map[string]struct {
		cfg     device.Config
		drivers []device.Driver
	}{
		"no store":            {device.Config{}, nil},
		"two video drivers":   {device.Config{Store: store}, []device.Driver{v, devicetest.NewDriver(device.KindVideo, devicetest.Options{})}},
		"unknown kind":        {device.Config{Store: store}, []device.Driver{devicetest.NewDriver("depth", devicetest.Options{})}},
		"unknown button kind": {device.Config{Store: store, Policy: device.Policy{ButtonKinds: []device.Kind{"depth"}}}, nil},
	} {
		if _, err := device.New(tc.cfg, tc.drivers...); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if v.OpenCalls() != 0 {
		t.Error("New opened a driver")
	}
}

func TestNewOpensNothing(t *testing.T) {
	v := devicetest.NewDriver(device.KindVideo, devicetest.Options{})
	d, err := device.New(device.Config{Store: device.NewStore(t.TempDir())}, v)
	if err != nil {
		t.Fatal(err)
	}
	if v.OpenCalls() != 0 || d.Track(device.KindVideo) != nil || d.Source(device.KindVideo) == nil || d.Source(device.KindAudio) != nil {
		t.Error("New opened a source, or sources are wrong")
	}
}

func TestSetPrivacyBeforeRunWaitsForReady(t *testing.T) {
	d, err := device.New(device.Config{Store: device.NewStore(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.SetPrivacy(ctx, remote(ptr(true), nil)); !errors.Is(err, context.Canceled) {
		t.Errorf("SetPrivacy before Run = %v, want context.Canceled", err)
	}
	if _, err := d.PressButton(ctx, time.Now()); !errors.Is(err, context.Canceled) {
		t.Errorf("PressButton before Run = %v, want context.Canceled", err)
	}
}

func TestMissingStateFileStartsPublicWithBothSourcesOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		r.wantLive(device.KindVideo)
		r.wantLive(device.KindAudio)
		calls := r.sink.Calls()
		if len(calls) != 2 || calls[0].op != "add" || calls[1].op != "add" {
			t.Errorf("sink calls %v, want two AddTrack", calls)
		}
		if st := r.dev.Status(); st.Seq != 0 {
			t.Errorf("seq %d on first boot", st.Seq)
		}
	})
}

func TestTracksCarryFramesToTheSink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		r.video.Push()
		r.audio.Push()
		synctest.Wait()
		if r.sink.Frames(device.KindVideo) != 1 || r.sink.Frames(device.KindAudio) != 1 {
			t.Errorf("sink got %d video and %d audio frames, want 1 each", r.sink.Frames(device.KindVideo), r.sink.Frames(device.KindAudio))
		}
	})
}

func TestAddSinkIsGivenTheLiveTracks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		r.set(remote(nil, ptr(true)))
		late := newFakeSink()
		r.dev.AddSink(late)
		calls := late.Calls()
		if len(calls) != 1 || calls[0].op != "add" || calls[0].tracks[0] != r.dev.Track(device.KindVideo) {
			t.Errorf("late sink calls %v, want AddTrack of the video track", calls)
		}
	})
}

func TestButtonPressCutsBothKindsWithOneRemoveTracks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		video, audio := r.dev.Track(device.KindVideo), r.dev.Track(device.KindAudio)
		st := r.press()
		if !st.Video.Private || st.Video.By != device.ByButton || !st.Audio.Private || st.Audio.By != device.ByButton || st.Seq != 1 {
			t.Errorf("status after press %+v", st)
		}
		r.wantPrivate(device.KindVideo, device.ByButton)
		r.wantPrivate(device.KindAudio, device.ByButton)
		calls := r.sink.Calls()[2:]
		if len(calls) != 1 || calls[0].op != "remove" || len(calls[0].tracks) != 2 ||
			!slices.Contains(calls[0].tracks, video) || !slices.Contains(calls[0].tracks, audio) {
			t.Fatalf("sink calls after press %v, want one RemoveTracks of both tracks", calls)
		}
		if video.ReadyState() != device.ReadyStateEnded || audio.ReadyState() != device.ReadyStateEnded {
			t.Error("cut tracks not ended")
		}
		// A second press lifts both, with new tracks.
		st = r.press()
		if st.Video.Private || st.Audio.Private || st.Seq != 2 {
			t.Errorf("status after second press %+v", st)
		}
		r.wantLive(device.KindVideo)
		r.wantLive(device.KindAudio)
	})
}

func TestRemoteLiftOfButtonPrivacyIsRefusedAndTouchesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		before := r.press()
		calls, opens := len(r.sink.Calls()), r.video.OpenCalls()+r.audio.OpenCalls()
		for _, c := range []device.Change{remote(ptr(false), ptr(false)), remote(ptr(false), nil), remote(nil, ptr(false))} {
			st, err := r.dev.SetPrivacy(context.Background(), c)
			if !errors.Is(err, device.ErrButtonWins) {
				t.Errorf("SetPrivacy(%s) = %v, want ErrButtonWins", describe(c), err)
			}
			if st != before || r.dev.Status() != before {
				t.Errorf("status %+v after a refused lift, want %+v", st, before)
			}
		}
		if len(r.sink.Calls()) != calls || r.video.OpenCalls()+r.audio.OpenCalls() != opens {
			t.Error("a refused lift touched the sink or the sources")
		}
		saved, err := device.NewStore(r.dir).Load()
		if err != nil || saved.Seq != before.Seq {
			t.Errorf("saved state %+v, %v after a refused lift", saved, err)
		}
	})
}

func TestRemoteMayLiftPolicyLetsRemoteLiftButtonPrivacy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{policy: device.Policy{RemoteMayLift: true}})
		r.press()
		st := r.set(remote(ptr(false), nil))
		if st.Video.Private || st.Video.By != device.ByRemote {
			t.Errorf("status %+v", st)
		}
		r.wantLive(device.KindVideo)
		r.wantPrivate(device.KindAudio, device.ByButton)
	})
}

func TestRemoteCutThenRemoteLift(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		r.set(remote(ptr(true), ptr(true)))
		r.wantPrivate(device.KindVideo, device.ByRemote)
		r.wantPrivate(device.KindAudio, device.ByRemote)
		r.set(remote(ptr(false), ptr(false)))
		r.wantLive(device.KindVideo)
		r.wantLive(device.KindAudio)
		if r.video.Opens() != 2 || r.audio.Opens() != 2 || r.video.BusyOpens()+r.audio.BusyOpens() != 0 {
			t.Errorf("opens: video %d audio %d", r.video.Opens(), r.audio.Opens())
		}
	})
}

func TestButtonTakesOverRemotePrivateKind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		r.set(remote(ptr(true), nil))
		st := r.press() // audio was live: the press makes both private, video now by the button
		if st.Video.By != device.ByButton || st.Audio.By != device.ByButton {
			t.Fatalf("status %+v, want both by the button", st)
		}
		if _, err := r.dev.SetPrivacy(context.Background(), remote(ptr(false), nil)); !errors.Is(err, device.ErrButtonWins) {
			t.Errorf("remote lift after the take-over = %v, want ErrButtonWins", err)
		}
	})
}

func TestInvalidChangeChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		before := r.dev.Status()
		for _, c := range []device.Change{
			{By: device.ByRemote},
			{Video: ptr(true), By: "mqtt"},
			{Video: ptr(true)},
			{Audio: ptr(true), By: device.ByBoot},
		} {
			if _, err := r.dev.SetPrivacy(context.Background(), c); !errors.Is(err, device.ErrInvalidChange) {
				t.Errorf("SetPrivacy(%s) = %v, want ErrInvalidChange", describe(c), err)
			}
		}
		if r.dev.Status() != before || len(r.sink.Calls()) != 2 {
			t.Errorf("invalid changes changed the status to %+v or called the sink", r.dev.Status())
		}
		r.wantLive(device.KindVideo)
		r.wantLive(device.KindAudio)
	})
}

func TestVideoAloneCanBeCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		audio := r.dev.Track(device.KindAudio)
		r.set(remote(ptr(true), nil))
		r.wantPrivate(device.KindVideo, device.ByRemote)
		r.wantLive(device.KindAudio)
		if r.dev.Track(device.KindAudio) != audio {
			t.Error("cutting video replaced the audio track")
		}
		r.audio.Push()
		synctest.Wait()
		if r.sink.Frames(device.KindAudio) != 1 {
			t.Error("audio stopped flowing when video was cut")
		}
	})
}

func TestAudioAloneCanBeCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		r.set(device.Change{Audio: ptr(true), By: device.ByButton})
		r.wantPrivate(device.KindAudio, device.ByButton)
		r.wantLive(device.KindVideo)
	})
}

func TestButtonKindsPolicyPressCutsOnlyThoseKinds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{policy: device.Policy{ButtonKinds: []device.Kind{device.KindAudio}}})
		r.press()
		r.wantPrivate(device.KindAudio, device.ByButton)
		r.wantLive(device.KindVideo)
	})
}

func TestSeqGrowsOnlyOnRealChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		steps := []struct {
			c       device.Change
			wantSeq uint64
		}{
			{remote(ptr(false), ptr(false)), 0},
			{remote(ptr(true), nil), 1},
			{remote(ptr(true), nil), 1},
			{remote(ptr(true), ptr(false)), 1},
			{remote(nil, ptr(true)), 2},
			{remote(ptr(false), ptr(false)), 3},
		}
		for i, s := range steps {
			if st := r.set(s.c); st.Seq != s.wantSeq {
				t.Errorf("step %d (%s): seq %d, want %d", i, describe(s.c), st.Seq, s.wantSeq)
			}
		}
		r.press()
		r.dev.SetPrivacy(context.Background(), remote(ptr(false), nil)) // refused
		if st := r.dev.Status(); st.Seq != 4 {
			t.Errorf("seq %d after a press and a refused lift, want 4", st.Seq)
		}
	})
}

func TestCutOrderIsGatePersistRemoveStopClose(t *testing.T) {
	// Real time and fast drivers: frames are flowing when each cut starts.
	dir := t.TempDir()
	store := device.NewStore(dir)
	var mu sync.Mutex
	var events []string
	record := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	var cutting, savedBeforeFrame atomic.Bool
	var tracks sync.Map // kind -> the track being cut
	closing := func(k device.Kind) func() {
		return func() {
			record("close " + string(k))
			if tr, ok := tracks.Load(k); ok && tr.(*device.Track).ReadyState() != device.ReadyStateEnded {
				t.Errorf("%s source closed before its track was stopped", k)
			}
		}
	}
	r := newRig(t, rigOptions{dir: dir, driver: devicetest.Options{Interval: 50 * time.Microsecond},
		onClose: closing})
	onFrame := func(tr *device.Track, f device.Frame) {
		if !cutting.Load() {
			return
		}
		// A frame handed over once the cut began must be from before the gate, and so
		// from before the state was persisted.
		if st, err := store.Load(); err == nil && st.Kind(tr.Kind()).Private {
			savedBeforeFrame.Store(true)
		}
	}
	onRemove := func(ts []*device.Track) {
		st, err := store.Load()
		record("remove")
		if err != nil || !st.Video.Private || !st.Audio.Private {
			t.Errorf("RemoveTracks before the state was saved: %+v, %v", st, err)
		}
		for _, tr := range ts {
			if tr.ReadyState() != device.ReadyStateLive || !r.driver(tr.Kind()).IsOpen() {
				t.Errorf("%s track stopped or source closed before RemoveTracks", tr.Kind())
			}
		}
	}
	r.sink.hooks(nil, onRemove, onFrame)
	for cycle := range 6 {
		mu.Lock()
		events = nil
		mu.Unlock()
		for _, k := range device.Kinds {
			tracks.Store(k, r.dev.Track(k))
		}
		r.sink.waitFrames(t, device.KindVideo, 5*(cycle+1))
		r.sink.waitFrames(t, device.KindAudio, 5*(cycle+1))
		cutting.Store(true)
		r.press()
		record("returned")
		cutting.Store(false)
		if savedBeforeFrame.Load() {
			t.Fatal("a frame reached the sink after the state was saved: the gate closes after persisting")
		}
		if r.video.IsOpen() || r.audio.IsOpen() {
			t.Fatal("PressButton returned before the sources were closed")
		}
		want := []string{"remove", "close video", "close audio", "returned"}
		if !slices.Equal(events, want) {
			t.Fatalf("events %v, want %v", events, want)
		}
		tracks.Clear()
		r.press()
	}
	r.sink.hooks(nil, nil, nil) // Run's shutdown removes the tracks of public kinds
}

func TestLiftOpensSourceAndAddsNewLiveTrack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		old := r.dev.Track(device.KindVideo)
		r.set(remote(ptr(true), nil))
		n := len(r.sink.Calls())
		r.set(remote(ptr(false), nil))
		calls := r.sink.Calls()[n:]
		if len(calls) != 1 || calls[0].op != "add" {
			t.Fatalf("sink calls after lift %v, want one AddTrack", calls)
		}
		tr := calls[0].tracks[0]
		if tr == old || tr.Kind() != device.KindVideo || tr.ReadyState() != device.ReadyStateLive || r.dev.Track(device.KindVideo) != tr {
			t.Errorf("lifted track %v (old %v) is not a new live video track", tr.ID(), old.ID())
		}
		if r.video.Opens() != 2 {
			t.Errorf("video opened %d times, want 2", r.video.Opens())
		}
		f, _ := r.video.Push()
		synctest.Wait()
		if !f.Keyframe || r.sink.Frames(device.KindVideo) != 1 {
			t.Errorf("first frame after the lift: keyframe %v, sink frames %d", f.Keyframe, r.sink.Frames(device.KindVideo))
		}
	})
}

func TestNoFrameReachesSinkAfterSetPrivacyReturns(t *testing.T) {
	r := newRig(t, rigOptions{driver: devicetest.Options{Interval: 50 * time.Microsecond}})
	var cut atomic.Bool
	var leaked atomic.Int64
	r.sink.hooks(nil, nil, func(*device.Track, device.Frame) {
		if cut.Load() {
			leaked.Add(1)
		}
	})
	for i := range 10 {
		r.sink.waitFrames(t, device.KindVideo, 3*(i+1))
		r.sink.waitFrames(t, device.KindAudio, 3*(i+1))
		now := time.Now()
		if _, err := r.dev.SetPrivacy(context.Background(), device.Change{Video: ptr(true), Audio: ptr(true), By: device.ByRemote, At: now}); err != nil {
			t.Fatal(err)
		}
		cut.Store(true)
		v, a := r.sink.Frames(device.KindVideo), r.sink.Frames(device.KindAudio)
		time.Sleep(2 * time.Millisecond) // the drivers are closed; give a leak time to show
		if leaked.Load() != 0 || r.sink.Frames(device.KindVideo) != v || r.sink.Frames(device.KindAudio) != a {
			t.Fatalf("cycle %d: %d frames reached the sink after SetPrivacy returned", i, leaked.Load())
		}
		cut.Store(false)
		r.set(remote(ptr(false), ptr(false)))
	}
}

func TestWatchGetsEachChangeInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []device.Status
		r := newRig(t, rigOptions{watch: func(s device.Status) { got = append(got, s) }})
		r.set(remote(ptr(true), nil))
		r.set(remote(ptr(true), nil)) // no change, no report
		r.press()
		r.dev.SetPrivacy(context.Background(), remote(ptr(false), nil)) // refused, no report
		r.press()
		type vas struct {
			seq          uint64
			video, audio bool
		}
		want := []vas{{0, false, false}, {1, true, false}, {2, true, true}, {3, false, false}}
		if len(got) != len(want) {
			t.Fatalf("watch got %d reports %+v, want %d", len(got), got, len(want))
		}
		for i, w := range want {
			g := vas{got[i].Seq, got[i].Video.Private, got[i].Audio.Private}
			if g != w {
				t.Errorf("report %d = %+v, want %+v", i, g, w)
			}
		}
		if last := got[len(got)-1]; !last.Video.Live || !last.Audio.Live {
			t.Errorf("last report %+v: the lifted kinds are not live", last)
		}
	})
}

func TestRunEndStopsTracksAndClosesSources(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		video := r.dev.Track(device.KindVideo)
		r.stop()
		if r.video.IsOpen() || r.audio.IsOpen() || video.ReadyState() != device.ReadyStateEnded || r.dev.Track(device.KindVideo) != nil {
			t.Error("Run returned with sources open or tracks live")
		}
		calls := r.sink.Calls()
		if last := calls[len(calls)-1]; last.op != "remove" || len(last.tracks) != 2 {
			t.Errorf("last sink call %v, want RemoveTracks of both", last)
		}
	})
}

func TestNoSourceOpensAfterRunReturned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		r.set(remote(ptr(true), ptr(true)))
		r.stop()
		opens := r.video.OpenCalls() + r.audio.OpenCalls()
		st, err := r.dev.SetPrivacy(context.Background(), remote(ptr(false), ptr(false)))
		if err != nil {
			t.Fatal(err)
		}
		if r.video.OpenCalls()+r.audio.OpenCalls() != opens || r.video.IsOpen() || r.audio.IsOpen() || st.Video.Live {
			t.Error("a lift after Run returned opened a source that nobody will close")
		}
	})
}

func TestTheStateIsLoggedAsLoadedBeforeAnySourceOpens(t *testing.T) {
	r := newRig(t, rigOptions{})
	logs := r.logs.String()
	loaded, opened := strings.Index(logs, "privacy state loaded"), strings.Index(logs, "source opened")
	if loaded < 0 || opened < 0 || opened < loaded {
		t.Errorf("log order: loaded at %d, opened at %d, want loaded first:\n%s", loaded, opened, logs)
	}
}
