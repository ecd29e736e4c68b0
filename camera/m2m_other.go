//go:build !linux

package camera

import (
	"errors"
	"fmt"

	"github.com/lenscap/lenscap/device"
)

// openHardwareEncoder fails: memory-to-memory encoders are V4L2 devices, Linux only. The
// error wraps ErrNoEncoder (so EncoderAuto falls back to software) and ErrUnsupported.
func openHardwareEncoder(name string, _ rawStream, _ RawFormat, _ EncoderOptions) (device.Stream, string, error) {
	return nil, "", fmt.Errorf("camera: open %s: %w (%w)", name, ErrNoEncoder, ErrUnsupported)
}

func isNoEncoder(err error) bool { return errors.Is(err, ErrNoEncoder) }
