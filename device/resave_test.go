package device_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
)

func TestACutThatCouldNotBeSavedIsSavedOnceTheDiskAllows(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	store := device.NewStore(dir)
	video := devicetest.NewDriver(device.KindVideo, devicetest.Options{})
	dev, err := device.New(device.Config{Store: store, RetryMin: 10 * time.Millisecond}, video)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx) }()
	<-dev.Ready()
	// The state directory cannot be made: a regular file is in its place.
	if err := os.WriteFile(dir, []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}
	yes := true
	st, err := dev.SetPrivacy(ctx, device.Change{Video: &yes, By: device.ByRemote})
	if err == nil {
		t.Fatal("the save could not succeed, yet no error")
	}
	if !st.Video.Private || !st.Unsaved || video.IsOpen() {
		t.Fatalf("after the failed save: %+v, camera open %v (the cut must hold)", st, video.IsOpen())
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for dev.Status().Unsaved && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if dev.Status().Unsaved {
		t.Fatal("the state was never saved again")
	}
	loaded, err := store.Load()
	if err != nil || !loaded.Video.Private {
		t.Fatalf("on disk: %+v, %v: a reboot would turn the camera on", loaded, err)
	}
	cancel()
	<-done
}
