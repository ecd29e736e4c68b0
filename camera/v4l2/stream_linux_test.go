//go:build linux

package v4l2

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The helpers against a file that is no V4L2 device (/dev/null answers every ioctl with
// ENOTTY); on real devices they run in the emulated board's checks (cmd/lenscap-hil).

func openNull(t *testing.T) *Device {
	t.Helper()
	d, err := Open("/dev/null")
	if err != nil {
		t.Skipf("no /dev/null: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestSetControlByNameSaysWhichControlIsMissing(t *testing.T) {
	d := openNull(t)
	err := d.SetControlByName("Inject Fatal Streaming Error", 1)
	if err == nil || !strings.Contains(err.Error(), `no control "Inject Fatal Streaming Error"`) {
		t.Errorf("err = %v, want one naming the missing control", err)
	}
}

func TestSetPixFormatReturnsTheDriversErrorWithTheRequest(t *testing.T) {
	d := openNull(t)
	_, err := d.SetPixFormat(BufTypeVideoCapture, 640, 480, PixFmtYUYV)
	if !errors.Is(err, unix.ENOTTY) || !strings.Contains(err.Error(), "VIDIOC_S_FMT /dev/null") {
		t.Errorf("err = %v, want ENOTTY naming VIDIOC_S_FMT and the device", err)
	}
}

func TestDequeueWithinReturnsAnErrorOtherThanEAGAINAtOnce(t *testing.T) {
	d := openNull(t)
	q := &Queue{dev: d, Type: BufTypeVideoCapture, planes: make([]Plane, MaxPlanes)}
	start := time.Now()
	_, err := q.DequeueWithin(5 * time.Second)
	if !errors.Is(err, unix.ENOTTY) {
		t.Errorf("err = %v, want ENOTTY", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %v: it waited on an error", took)
	}
}
