//go:build !linux

package camera

import (
	"fmt"

	"github.com/lenscap/lenscap/device"
)

// Open fails: V4L2 is Linux only.
func (c *V4L2Camera) Open() (device.Stream, error) {
	return nil, fmt.Errorf("camera: open %s: %w", c.opts.Name, ErrUnsupported)
}
