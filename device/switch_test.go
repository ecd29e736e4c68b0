package device_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
)

// latch is a latching switch in the given position, as Config.Switch reads it.
func latch(private bool) func() bool { return func() bool { return private } }

// flip applies a switch event.
func flip(r *rig, private, initial bool) (device.Status, error) {
	return r.dev.Button(device.ButtonEvent{Gesture: device.GestureSwitch, At: time.Now(), Private: private, Initial: initial})(context.Background())
}

func TestSwitchOnPrivateAtBootKeepsTheCameraClosed(t *testing.T) {
	dir := t.TempDir()
	// The saved state says public: without the switch, both would open at boot.
	if err := device.NewStore(dir).Save(device.State{Seq: 7}); err != nil {
		t.Fatal(err)
	}
	for range 3 { // any number of reboots
		r := newRig(t, rigOptions{dir: dir, switchAt: latch(true)})
		r.wantPrivate(device.KindVideo, device.ByButton)
		r.wantPrivate(device.KindAudio, device.ByButton)
		r.stop()
		if n := r.video.OpenCalls() + r.audio.OpenCalls(); n != 0 {
			t.Fatalf("a driver was opened %d times with the switch on private", n)
		}
		if len(r.sink.Calls()) != 0 {
			t.Fatalf("the sink was given tracks: %+v", r.sink.Calls())
		}
	}
	st, err := device.NewStore(dir).Load()
	if err != nil || !st.Video.Private || st.Video.By != device.ByButton || st.Seq != 8 {
		t.Fatalf("persisted %+v, %v: want private by the button, seq 8 (one change)", st, err)
	}
}

func TestSwitchOnPublicAtBootLiftsOnlyTheButtonsPrivacy(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	saved := device.State{
		Video: device.KindState{Private: true, By: device.ByRemote, Since: now},
		Audio: device.KindState{Private: true, By: device.ByButton, Since: now},
		Seq:   3,
	}
	if err := device.NewStore(dir).Save(saved); err != nil {
		t.Fatal(err)
	}
	// At boot only "private" is read at once; "public" comes as the debounced first event.
	r := newRig(t, rigOptions{dir: dir, switchAt: latch(false)})
	r.wantPrivate(device.KindVideo, device.ByRemote)
	if _, err := flip(r, false, true); err != nil {
		t.Fatal(err)
	}
	r.wantPrivate(device.KindVideo, device.ByRemote) // a remote cut outlives a reboot
	r.wantLive(device.KindAudio)                     // the switch was moved while off
	if r.video.OpenCalls() != 0 {
		t.Error("video was opened")
	}
}

func TestSwitchOnPublicAtBootKeepsBootPrivacy(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "privacy.json"), []byte("{torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{dir: dir, switchAt: latch(false)})
	if st, err := flip(r, false, true); err != nil || st.Seq != r.dev.Status().Seq {
		t.Fatalf("first reading on public: %+v, %v", st, err)
	}
	// An unreadable state stays private until the switch moves.
	r.wantPrivate(device.KindVideo, device.ByBoot)
	r.wantPrivate(device.KindAudio, device.ByBoot)
}

func TestSwitchFollowsItsPosition(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := context.Background()
	if _, err := flip(r, true, false); err != nil {
		t.Fatal(err)
	}
	r.wantPrivate(device.KindVideo, device.ByButton)
	r.wantPrivate(device.KindAudio, device.ByButton)
	// The same position again changes nothing.
	seq := r.dev.Status().Seq
	if st, err := flip(r, true, false); err != nil || st.Seq != seq {
		t.Fatalf("same position: seq %d -> %d, %v", seq, st.Seq, err)
	}
	// A remote lift of the switch's privacy is refused.
	if _, err := r.dev.SetPrivacy(ctx, remote(ptr(false), nil)); !errors.Is(err, device.ErrButtonWins) {
		t.Fatalf("remote lift: %v, want ErrButtonWins", err)
	}
	if _, err := flip(r, false, false); err != nil {
		t.Fatal(err)
	}
	r.wantLive(device.KindVideo)
	r.wantLive(device.KindAudio)
	// Moved to public, the switch lifts a remote cut too, as a press does.
	r.set(remote(ptr(true), nil))
	if _, err := flip(r, true, false); err != nil {
		t.Fatal(err)
	}
	if _, err := flip(r, false, false); err != nil {
		t.Fatal(err)
	}
	r.wantLive(device.KindVideo)
}

func TestHoldTogglesOnlyTheMicrophone(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := context.Background()
	hold := func() {
		t.Helper()
		if _, err := r.dev.Button(device.ButtonEvent{Gesture: device.GestureHold, At: time.Now()})(ctx); err != nil {
			t.Fatal(err)
		}
	}
	hold()
	r.wantLive(device.KindVideo)
	r.wantPrivate(device.KindAudio, device.ByButton)
	// Only the button lifts it.
	if _, err := r.dev.SetPrivacy(ctx, remote(nil, ptr(false))); !errors.Is(err, device.ErrButtonWins) {
		t.Fatalf("remote lift: %v", err)
	}
	hold()
	r.wantLive(device.KindAudio)
	// The usual press still toggles both.
	r.press()
	r.wantPrivate(device.KindVideo, device.ByButton)
	r.wantPrivate(device.KindAudio, device.ByButton)
}

func TestAButtonEventIsAppliedOnceAndADroppedOneOnlyLetsTheGateGo(t *testing.T) {
	r := newRig(t, rigOptions{})
	apply := r.dev.Button(device.ButtonEvent{Gesture: device.GesturePress, At: time.Now()})
	if _, err := apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(context.Background()); err == nil {
		t.Error("a second apply of the same event did not fail")
	}
	r.wantPrivate(device.KindVideo, device.ByButton)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dropped := r.dev.Button(device.ButtonEvent{Gesture: device.GesturePress, At: time.Now()})
	if _, err := dropped(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("apply with an ended context: %v, want context.Canceled", err)
	}
	r.wantPrivate(device.KindVideo, device.ByButton) // not lifted
	r.press()                                        // the gate is gone: frames flow again
	r.wantLive(device.KindVideo)
	before := r.sink.Frames(device.KindVideo)
	r.video.Push()
	deadline := time.Now().Add(5 * time.Second)
	for r.sink.Frames(device.KindVideo) == before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if r.sink.Frames(device.KindVideo) == before {
		t.Error("frames held back after the dropped event")
	}
}
