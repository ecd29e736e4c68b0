package device_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/journal"
)

// powered returns a kind's reported power, failing when the status has none.
func powered(t *testing.T, st device.KindStatus) bool {
	t.Helper()
	if st.Powered == nil {
		t.Fatalf("status %+v has no powered field", st)
	}
	return *st.Powered
}

func TestACutClosesTheSourceThenSwitchesThePowerOffAndALiftTheReverse(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	r := newRig(t, rigOptions{dir: dir, power: true, journal: j})
	pv := r.power[device.KindVideo]
	if pv.Ons() != 1 || !pv.IsOn() || !powered(t, r.dev.Status().Video) {
		t.Fatalf("at boot (public): %d ons, on %v; want powered on once", pv.Ons(), pv.IsOn())
	}
	st := r.press()
	r.wantPrivate(device.KindVideo, device.ByButton)
	if pv.IsOn() || pv.Offs() != 1 || powered(t, st.Video) || st.Video.PowerError != "" {
		t.Fatalf("after the cut: on %v, %d offs, status %+v; want off, confirmed", pv.IsOn(), pv.Offs(), st.Video)
	}
	r.press()
	r.wantLive(device.KindVideo)
	if !pv.IsOn() || pv.Ons() != 2 || !powered(t, r.dev.Status().Video) {
		t.Fatalf("after the lift: on %v, %d ons", pv.IsOn(), pv.Ons())
	}
	for k, p := range r.power {
		if n := p.SwitchedWhileOpen(); n != 0 {
			t.Errorf("%s: switched %d times while the source was open", k, n)
		}
	}
	r.stop()
	if pv.IsOn() || r.power[device.KindAudio].IsOn() {
		t.Error("still powered after Run returned")
	}
	entries, err := j.Since(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var power []string
	for _, e := range entries {
		if e.Event == device.EventPower && strings.Join(e.Kinds, ",") == "video" {
			power = append(power, strings.SplitN(e.Detail, ":", 2)[0]+"/"+e.By)
		}
	}
	if got := strings.Join(power, " "); got != "on/ off confirmed/button on/ off confirmed/" {
		t.Errorf("journal power entries for video: %q", got)
	}
}

func TestAPowerOffThatCannotBeConfirmedLeavesTheCutAndIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{power: true, retryMin: time.Second})
		pv := r.power[device.KindVideo]
		pv.FailOff(errors.New("/dev/video0 still opens 5s after GPIO5 went low"))
		st := r.press()
		r.wantPrivate(device.KindVideo, device.ByButton) // the cut stands
		if !powered(t, st.Video) || !strings.Contains(st.Video.PowerError, "still opens") {
			t.Fatalf("status %+v; want powered (not confirmed off) with the error", st.Video)
		}
		if powered(t, st.Audio) {
			t.Errorf("audio %+v: its own interlock worked", st.Audio)
		}
		pv.FailOff(nil)
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if st := r.dev.Status().Video; powered(t, st) || st.PowerError != "" || pv.IsOn() {
			t.Fatalf("after the retry: %+v, on %v; want confirmed off", st, pv.IsOn())
		}
	})
}

func TestADeviceThatDoesNotAppearAfterPowerOnIsAnErrorAndRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{power: true, retryMin: time.Second, retryMax: time.Second})
		pv := r.power[device.KindVideo]
		r.press()
		pv.FailOn(errors.New("/dev/video0 did not appear within 5s"))
		st := r.press()
		if st.Video.Live || !strings.Contains(st.Video.Error, "did not appear") {
			t.Fatalf("lifted with no device: %+v; want an error saying so", st.Video)
		}
		if r.video.Opens() != 1 {
			t.Fatalf("%d opens: the driver was opened without power", r.video.Opens())
		}
		pv.FailOn(nil)
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		r.wantLive(device.KindVideo)
	})
}

func TestAKindPrivateAtBootIsSwitchedOffAndNeverOn(t *testing.T) {
	dir := t.TempDir()
	st := device.State{Video: device.KindState{Private: true, By: device.ByButton}, Seq: 4}
	if err := device.NewStore(dir).Save(st); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{dir: dir, power: true})
	pv := r.power[device.KindVideo]
	if pv.Ons() != 0 || pv.Offs() != 1 || pv.IsOn() || powered(t, r.dev.Status().Video) {
		t.Fatalf("booted private: %d ons, %d offs; want switched off, never on", pv.Ons(), pv.Offs())
	}
	r.wantLive(device.KindAudio)
}

func TestOnDemandAnIdleCameraIsPoweredOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{power: true, onDemand: true, linger: time.Second})
		pv := r.power[device.KindVideo]
		if pv.IsOn() || pv.Ons() != 0 {
			t.Fatalf("idle at boot: on %v after %d ons", pv.IsOn(), pv.Ons())
		}
		r.dev.SetDemand(1)
		synctest.Wait()
		r.wantLive(device.KindVideo)
		r.dev.SetDemand(0)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if pv.IsOn() || r.video.IsOpen() {
			t.Fatal("parked but still powered")
		}
	})
}

func TestUnconfirmedPowerOffsAreRetriedWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{power: true, retryMin: time.Second, retryMax: 4 * time.Second})
		pv := r.power[device.KindVideo]
		pv.FailOff(errors.New("still there"))
		r.press()
		time.Sleep(10*time.Second + 500*time.Millisecond)
		synctest.Wait()
		// The cut's own try, then retries at 1, 2, 4 and 8 s: not one a second.
		if n := pv.Offs(); n != 5 {
			t.Errorf("%d power offs in 10 s, want 5 (backoff 1 s to 4 s)", n)
		}
	})
}

func TestOnDemandAFailedSourceIsPoweredOffWhenTheLastViewerLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{power: true, onDemand: true, linger: time.Second, retryMin: time.Minute, retryMax: time.Minute})
		pv := r.power[device.KindVideo]
		r.dev.SetDemand(1)
		synctest.Wait()
		r.wantLive(device.KindVideo)
		r.video.Vanish(nil) // the camera fails while watched: no track, but powered for the retry
		synctest.Wait()
		if r.dev.Track(device.KindVideo) != nil || !pv.IsOn() {
			t.Fatalf("after the failure: track %v, powered %v", r.dev.Track(device.KindVideo), pv.IsOn())
		}
		r.dev.SetDemand(0)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if pv.IsOn() {
			t.Fatal("nobody watches, the source failed, and the camera is still powered")
		}
	})
}
