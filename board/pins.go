package board

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"periph.io/x/conn/v3/driver/driverreg"
	conngpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3/gpioioctl"
)

// PinDriver finds GPIO lines. The character device (CharDev) is the real one; the emulated
// board's tests give one over gpio-sim's chips, and unit tests one over gpiotest pins.
type PinDriver interface {
	// Pin returns the line of a chip, by line name ("GPIO17") or offset ("17"). chip is a
	// chip's label ("pinctrl-bcm2711"), name ("gpiochip0") or path ("/dev/gpiochip0").
	// Errors wrap ErrNoGPIO, ErrNoChip, ErrNoPin or ErrPermission.
	Pin(chip, line string) (conngpio.PinIO, error)
}

// Errors of PinDriver.Pin, which callers check with errors.Is.
var (
	// ErrNoGPIO: the machine has no GPIO character device at all.
	ErrNoGPIO = errors.New("board: no GPIO chip (/dev/gpiochip*)")
	// ErrNoChip: the configured chip is not there.
	ErrNoChip = errors.New("board: no such GPIO chip")
	// ErrNoPin: the chip has no such line.
	ErrNoPin = errors.New("board: no such GPIO line")
	// ErrPermission: the GPIO chip cannot be opened by this user.
	ErrPermission = errors.New("board: no permission to use the GPIO chip")
)

// CharDev is the GPIO character device (/dev/gpiochipN, periph's gpioioctl): the driver that
// works on every Raspberry Pi with a current kernel, and the only one on the Pi 5.
type CharDev struct {
	// Dev is the directory of the gpiochip devices; empty means /dev. periph reads /dev
	// itself: Dev only changes where the checks for missing chips and permissions look.
	Dev string
}

var (
	periphOnce sync.Once
	periphErr  error
)

// Pin implements PinDriver.
func (c CharDev) Pin(chip, line string) (conngpio.PinIO, error) {
	dev := c.Dev
	if dev == "" {
		dev = "/dev"
	}
	paths, _ := filepath.Glob(filepath.Join(dev, "gpiochip*"))
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w in %s: not a board with GPIO, or a kernel without CONFIG_GPIO_CDEV (--board sim runs without hardware)", ErrNoGPIO, dev)
	}
	var denied []string
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrPermission) {
			denied = append(denied, p)
			continue
		}
		if err == nil {
			f.Close()
		}
	}
	periphOnce.Do(func() { _, periphErr = driverreg.Init() })
	if periphErr != nil {
		return nil, fmt.Errorf("board: GPIO: %w", periphErr)
	}
	var found *gpioioctl.GPIOChip
	var have []string
	for _, ch := range gpioioctl.Chips {
		have = append(have, fmt.Sprintf("%s (%s)", ch.Name(), ch.Label()))
		if chip == ch.Name() || chip == ch.Path() || chip == ch.Label() || "/dev/"+chip == ch.Path() {
			found = ch
			break
		}
	}
	if found == nil {
		if len(denied) > 0 {
			return nil, permissionError(denied)
		}
		return nil, fmt.Errorf("%w: %q (this machine has: %s)", ErrNoChip, chip, strings.Join(have, ", "))
	}
	var l *gpioioctl.GPIOLine
	if n, err := strconv.Atoi(line); err == nil {
		if n >= 0 && n < found.LineCount() {
			l = found.ByNumber(n)
		}
	} else {
		l = found.ByName(line)
	}
	if l == nil {
		return nil, fmt.Errorf("%w: %q on %s (%s, %d lines): give a line name such as GPIO17 or an offset below %d",
			ErrNoPin, line, found.Name(), found.Label(), found.LineCount(), found.LineCount())
	}
	return newLine(l, found.Path()), nil
}

// permissionError says who may open the chips and how to be allowed.
func permissionError(paths []string) error {
	group := groupOf(paths[0])
	how := fmt.Sprintf("run lenscap as a member of the group %q (sudo usermod -aG %s USER, then log in again)", group, group)
	if group == "" || group == "root" {
		how = `add a udev rule giving a group the chips, e.g. /etc/udev/rules.d/60-gpio.rules: ` +
			`SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"; then add lenscap's user to that group`
	}
	return fmt.Errorf("%w: %s: %s", ErrPermission, strings.Join(paths, ", "), how)
}

// groupOf names the group that owns a file, "" if unknown.
func groupOf(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return groupName(fi)
}
