package device_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/lenscap/lenscap/device"
)

func TestOnDemandTheSourcesOpenForTheFirstViewerAndCloseAfterTheLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{onDemand: true, linger: 10 * time.Second})
		if n := r.video.OpenCalls() + r.audio.OpenCalls(); n != 0 || !r.dev.Status().Idle {
			t.Fatalf("no viewer: %d opens, idle %v; want none, idle", n, r.dev.Status().Idle)
		}
		r.dev.SetDemand(1)
		synctest.Wait()
		r.wantLive(device.KindVideo)
		r.wantLive(device.KindAudio)
		r.dev.SetDemand(0)
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if !r.video.IsOpen() {
			t.Fatal("closed before the linger")
		}
		r.dev.SetDemand(2) // back within the linger: nothing closes or reopens
		r.dev.SetDemand(0)
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if !r.video.IsOpen() || r.video.Opens() != 1 {
			t.Fatalf("a viewer back within the linger: open %v, opens %d", r.video.IsOpen(), r.video.Opens())
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if r.video.IsOpen() || r.audio.IsOpen() || r.dev.Track(device.KindVideo) != nil {
			t.Fatal("still open after the linger with no viewer")
		}
		if st := r.dev.Status(); st.Video.Private || st.Video.Live || !st.Idle {
			t.Errorf("parked: %+v, want public, not live, idle", st)
		}
	})
}

func TestOnDemandPrivacyRulesAreUnchanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, rigOptions{onDemand: true})
		r.press() // private with nobody watching: nothing was open, nothing opens
		r.dev.SetDemand(3)
		synctest.Wait()
		if r.video.OpenCalls()+r.audio.OpenCalls() != 0 {
			t.Fatal("a viewer opened a private kind")
		}
		r.press() // lifted with a viewer: opens
		synctest.Wait()
		r.wantLive(device.KindVideo)
		r.dev.SetDemand(0)
		time.Sleep(device.DefaultLinger + time.Second)
		synctest.Wait()
		r.set(remote(ptr(false), nil)) // a lift with nobody watching opens nothing
		if r.video.IsOpen() {
			t.Error("a lift with no viewer opened the camera")
		}
	})
}
