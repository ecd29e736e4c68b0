package device_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lenscap/lenscap/device"
)

func TestStateIsSavedBeforeSetPrivacyReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		r.set(remote(ptr(true), nil))
		b, err := os.ReadFile(filepath.Join(r.dir, "privacy.json"))
		if err != nil {
			t.Fatal(err)
		}
		var onDisk struct {
			Version int
			Video   struct {
				Private bool
				By      string
			}
			Audio struct{ Private bool }
			Seq   uint64
		}
		if err := json.Unmarshal(b, &onDisk); err != nil {
			t.Fatalf("state file is not JSON: %v\n%s", err, b)
		}
		if onDisk.Version != 1 || !onDisk.Video.Private || onDisk.Video.By != "remote" || onDisk.Audio.Private || onDisk.Seq != 1 {
			t.Errorf("saved %s", b)
		}
		r.press()
		saved, err := device.NewStore(r.dir).Load()
		if err != nil || saved.Seq != 2 || saved.Audio.By != device.ByButton {
			t.Errorf("after the press, saved %+v, %v", saved, err)
		}
	})
}

func TestSavingLeavesOnlyTheStateFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{})
		for range 5 {
			r.press()
		}
		ents, err := os.ReadDir(r.dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 1 || ents[0].Name() != "privacy.json" {
			t.Errorf("state dir holds %v, want only privacy.json", ents)
		}
		b, _ := os.ReadFile(filepath.Join(r.dir, "privacy.json"))
		if !json.Valid(b) {
			t.Errorf("state file is not valid JSON: %s", b)
		}
	})
}

func TestRestartWhilePrivateStartsPrivateAndNeverOpensTheDriver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		first := newRig(t, rigOptions{dir: dir})
		first.press()
		first.stop()

		r := newRig(t, rigOptions{dir: dir})
		r.wantPrivate(device.KindVideo, device.ByButton)
		r.wantPrivate(device.KindAudio, device.ByButton)
		if st := r.dev.Status(); st.Seq != 1 {
			t.Errorf("seq %d after restart, want 1", st.Seq)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := r.video.OpenCalls() + r.audio.OpenCalls(); n != 0 {
			t.Errorf("a private kind's driver was opened %d times after restart", n)
		}
		if len(r.sink.Calls()) != 0 {
			t.Errorf("sink calls %v at a private boot", r.sink.Calls())
		}
		// The button still wins after the restart.
		if _, err := r.dev.SetPrivacy(context.Background(), remote(ptr(false), nil)); !errors.Is(err, device.ErrButtonWins) {
			t.Errorf("remote lift after restart = %v, want ErrButtonWins", err)
		}
		if st := r.set(device.Change{Video: ptr(false), By: device.ByButton}); st.Seq != 2 {
			t.Errorf("seq %d, want 2", st.Seq)
		}
		r.wantLive(device.KindVideo)
	})
}

func TestRestartWithOneKindPrivateOpensOnlyTheOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		first := newRig(t, rigOptions{dir: dir})
		first.set(remote(nil, ptr(true)))
		first.stop()

		r := newRig(t, rigOptions{dir: dir})
		r.wantLive(device.KindVideo)
		r.wantPrivate(device.KindAudio, device.ByRemote)
		if r.audio.OpenCalls() != 0 {
			t.Error("the private audio driver was opened at boot")
		}
	})
}

func TestUnreadableStateStartsPrivateByBoot(t *testing.T) {
	for name, setup := range map[string]func(t *testing.T, dir string) string{
		"corrupt": func(t *testing.T, dir string) string {
			writeState(t, dir, `{"version":1,"video":{"priv`)
			return dir
		},
		"unknown version": func(t *testing.T, dir string) string {
			writeState(t, dir, `{"version":7,"video":{"private":false},"audio":{"private":false},"seq":3}`)
			return dir
		},
		"unknown by": func(t *testing.T, dir string) string {
			writeState(t, dir, `{"version":1,"video":{"private":false,"by":"mqtt"},"seq":3}`)
			return dir
		},
		"directory in place of the file": func(t *testing.T, dir string) string {
			if err := os.Mkdir(filepath.Join(dir, "privacy.json"), 0o700); err != nil {
				t.Fatal(err)
			}
			return dir
		},
		"state dir under a regular file": func(t *testing.T, dir string) string {
			f := filepath.Join(dir, "file")
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(f, "state")
		},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := setup(t, t.TempDir())
				r := newRig(t, rigOptions{dir: dir})
				r.wantPrivate(device.KindVideo, device.ByBoot)
				r.wantPrivate(device.KindAudio, device.ByBoot)
				time.Sleep(time.Minute)
				synctest.Wait()
				if n := r.video.OpenCalls() + r.audio.OpenCalls(); n != 0 {
					t.Errorf("drivers opened %d times with an unreadable state", n)
				}
				if !strings.Contains(r.logs.String(), "privacy state unreadable") {
					t.Errorf("unreadable state not logged; log:\n%s", r.logs)
				}
			})
		})
	}
}

func writeState(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "privacy.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// breakStore makes every later Save of a store in parent/state fail (as root, permissions do
// not stop a write: a regular file in place of the parent directory does).
func breakStore(t *testing.T, parent string) {
	t.Helper()
	if err := os.RemoveAll(parent); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(parent, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFailingSaveKeepsEngagedPrivacyAndReturnsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent := filepath.Join(t.TempDir(), "var")
		r := newRig(t, rigOptions{dir: filepath.Join(parent, "state")})
		r.wantLive(device.KindVideo)
		breakStore(t, parent)
		st, err := r.dev.SetPrivacy(context.Background(), remote(ptr(true), nil))
		if err == nil || errors.Is(err, device.ErrButtonWins) || errors.Is(err, device.ErrInvalidChange) {
			t.Errorf("SetPrivacy with a failing store = %v, want a save error", err)
		}
		if !st.Video.Private {
			t.Errorf("returned status %+v: privacy not engaged", st)
		}
		r.wantPrivate(device.KindVideo, device.ByRemote)
		r.wantLive(device.KindAudio)
	})
}

func TestFailingSaveLiftsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent := filepath.Join(t.TempDir(), "var")
		var reports int
		r := newRig(t, rigOptions{dir: filepath.Join(parent, "state"), watch: func(device.Status) { reports++ }})
		r.press()
		before, n, opens := r.dev.Status(), reports, r.video.OpenCalls()
		breakStore(t, parent)
		st, err := r.dev.PressButton(context.Background(), time.Now())
		if err == nil {
			t.Error("a lift that could not be saved returned no error")
		}
		// Nothing changed but the flag that the state is being saved again.
		want := before
		want.Unsaved = true
		if st != want || r.dev.Status() != want {
			t.Errorf("status %+v after an unsaved lift, want %+v", r.dev.Status(), want)
		}
		if reports != n {
			t.Errorf("watchers told of %d changes by an unsaved lift", reports-n)
		}
		if r.video.OpenCalls() != opens {
			t.Error("an unsaved lift opened the camera")
		}
		r.wantPrivate(device.KindVideo, device.ByButton)
		r.wantPrivate(device.KindAudio, device.ByButton)
	})
}
