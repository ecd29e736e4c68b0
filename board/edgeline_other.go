//go:build !linux

package board

import (
	conngpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3/gpioioctl"
)

// newLine is periph's line: the character device is Linux's.
func newLine(l *gpioioctl.GPIOLine, _ string) conngpio.PinIO { return l }
