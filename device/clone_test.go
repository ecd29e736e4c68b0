package device_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
)

func TestACloneSharesTheSourceAndTheCut(t *testing.T) {
	r := newRig(t, rigOptions{})
	orig := r.dev.Track(device.KindVideo)
	c, err := orig.Clone()
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	c.SetSink(func(device.Frame) { got.Add(1) })
	for range 3 {
		if _, err := r.video.Push(); err != nil {
			t.Fatal(err)
		}
	}
	r.sink.waitFrames(t, device.KindVideo, 3)
	// The source hands each frame to its tracks in turn: the clone's may come just after.
	for deadline := time.Now().Add(5 * time.Second); got.Load() != 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the clone got %d of 3 frames", got.Load())
		}
	}
	if r.video.Opens() != 1 {
		t.Fatalf("%d opens: a clone opened the camera again", r.video.Opens())
	}
	// A sink that clones must stop its clones in RemoveTracks: here, the test does it after the
	// cut, and the camera stays open until then.
	r.press()
	if _, err := r.video.Push(); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 3 {
		t.Fatalf("the clone got a frame after the cut (%d)", got.Load())
	}
	if !r.video.IsOpen() {
		t.Fatal("the source closed under a live clone")
	}
	c.Stop()
	if r.video.IsOpen() {
		t.Fatal("the source stayed open after the last clone stopped")
	}
	if _, err := orig.Clone(); err == nil {
		t.Error("a clone of a stopped track")
	}
}
