package device_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
)

// latch is a BootChange for a latching switch in the given position.
func latch(p device.Policy, private bool) func(device.State) *device.Change {
	return func(st device.State) *device.Change { return p.SwitchChange(st, private, true, time.Now()) }
}

func TestSwitchOnPrivateAtBootKeepsTheCameraClosed(t *testing.T) {
	dir := t.TempDir()
	// The saved state says public: without the switch, both would open at boot.
	if err := device.NewStore(dir).Save(device.State{Seq: 7}); err != nil {
		t.Fatal(err)
	}
	for range 3 { // any number of reboots
		r := newRig(t, rigOptions{dir: dir, boot: latch(device.Policy{}, true)})
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
	r := newRig(t, rigOptions{dir: dir, boot: latch(device.Policy{}, false)})
	r.wantPrivate(device.KindVideo, device.ByRemote) // a remote cut outlives a reboot
	r.wantLive(device.KindAudio)                     // the switch was moved while off
	if r.video.OpenCalls() != 0 {
		t.Error("video was opened")
	}
}

func TestSwitchOnPublicAtBootKeepsBootPrivacy(t *testing.T) {
	p := device.Policy{}
	boot := device.KindState{Private: true, By: device.ByBoot}
	if c := p.SwitchChange(device.State{Video: boot, Audio: boot}, false, true, time.Now()); c != nil {
		t.Fatalf("change %+v, want none: an unreadable state stays private until the switch moves", c)
	}
}

func TestSwitchFollowsItsPosition(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := context.Background()
	if _, err := r.dev.SetSwitch(ctx, time.Now(), true, false); err != nil {
		t.Fatal(err)
	}
	r.wantPrivate(device.KindVideo, device.ByButton)
	r.wantPrivate(device.KindAudio, device.ByButton)
	// The same position again changes nothing.
	seq := r.dev.Status().Seq
	if st, err := r.dev.SetSwitch(ctx, time.Now(), true, false); err != nil || st.Seq != seq {
		t.Fatalf("same position: seq %d -> %d, %v", seq, st.Seq, err)
	}
	// A remote lift of the switch's privacy is refused.
	if _, err := r.dev.SetPrivacy(ctx, remote(ptr(false), nil)); !errors.Is(err, device.ErrButtonWins) {
		t.Fatalf("remote lift: %v, want ErrButtonWins", err)
	}
	if _, err := r.dev.SetSwitch(ctx, time.Now(), false, false); err != nil {
		t.Fatal(err)
	}
	r.wantLive(device.KindVideo)
	r.wantLive(device.KindAudio)
	// Moved to public, the switch lifts a remote cut too, as a press does.
	r.set(remote(ptr(true), nil))
	if _, err := r.dev.SetSwitch(ctx, time.Now(), true, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.dev.SetSwitch(ctx, time.Now(), false, false); err != nil {
		t.Fatal(err)
	}
	r.wantLive(device.KindVideo)
}

func TestPressButtonKindsTogglesOnlyThoseKinds(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := context.Background()
	if _, err := r.dev.PressButtonKinds(ctx, time.Now(), device.KindAudio); err != nil {
		t.Fatal(err)
	}
	r.wantLive(device.KindVideo)
	r.wantPrivate(device.KindAudio, device.ByButton)
	// Only the button lifts it.
	if _, err := r.dev.SetPrivacy(ctx, remote(nil, ptr(false))); !errors.Is(err, device.ErrButtonWins) {
		t.Fatalf("remote lift: %v", err)
	}
	if _, err := r.dev.PressButtonKinds(ctx, time.Now(), device.KindAudio); err != nil {
		t.Fatal(err)
	}
	r.wantLive(device.KindAudio)
	// The usual press still toggles both.
	r.press()
	r.wantPrivate(device.KindVideo, device.ByButton)
	r.wantPrivate(device.KindAudio, device.ByButton)
	for _, bad := range [][]device.Kind{nil, {"smell"}} {
		if _, err := r.dev.PressButtonKinds(ctx, time.Now(), bad...); !errors.Is(err, device.ErrInvalidChange) {
			t.Errorf("kinds %v: %v, want ErrInvalidChange", bad, err)
		}
	}
}
