package device_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
)

func TestSourceCountsFramesAndStreamsThatBeginWithAKeyframe(t *testing.T) {
	drv := devicetest.NewDriver(device.KindVideo, devicetest.Options{Interval: time.Millisecond})
	src := device.NewSource(drv, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 3 {
		tr, err := src.NewTrack()
		if err != nil {
			t.Fatal(err)
		}
		before := src.Frames()
		if err := drv.WaitFor(ctx, func() bool { return src.Frames() > before+2 }); err != nil {
			t.Fatal(err)
		}
		tr.Stop()
	}
	if got := src.KeyframeFirst(); got != 3 || src.Opens() != 3 {
		t.Errorf("keyframe-first streams %d, opens %d; want 3 and 3", got, src.Opens())
	}
}
