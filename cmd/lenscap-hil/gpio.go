//go:build linux

package main

// gpio-sim from the test's side: the chip is found by its label through the GPIO character
// device (GPIO_GET_CHIPINFO_IOCTL), its lines by name (GPIO_V2_GET_LINEINFO_IOCTL), and a line is
// pulled or read through gpio-sim's sysfs files (/sys/bus/gpio/devices/gpiochipN/sim_gpioK/).

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The two requests of <linux/gpio.h> the test uses, _IOC(dir, 0xB4, nr, size): struct
// gpiochip_info is 68 bytes, struct gpio_v2_line_info 256.
const (
	gpioGetChipinfo   = 2<<30 | 68<<16 | 0xB4<<8 | 0x01  // _IOR
	gpioV2GetLineinfo = 3<<30 | 256<<16 | 0xB4<<8 | 0x05 // _IOWR
)

var le = binary.LittleEndian

// gpioIoctl runs a GPIO request on fd with the structure arg, again while a signal of Go's
// runtime interrupts it (EINTR; EMULATED-BOARD.md, pitfalls).
func gpioIoctl(fd int, req uintptr, arg []byte) error {
	errno := unix.EINTR
	for errno == unix.EINTR {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&arg[0])))
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// cstr is a NUL-terminated string of the kernel.
func cstr(b []byte) string { return unix.ByteSliceToString(b) }

const (
	gpioLineFlagUsed   = 1 << 0
	gpioLineFlagOutput = 1 << 3
)

type simChip struct {
	Name  string         // gpiochipN
	Label string         // the bank's label
	Lines map[string]int // line name -> offset
}

type lineInfo struct {
	Name, Consumer string
	Used, Output   bool
}

// findSimChip is the /dev/gpiochip* whose label is label.
func findSimChip(label string) (simChip, error) {
	paths, _ := filepath.Glob("/dev/gpiochip*")
	var seen []string
	for _, p := range paths {
		fd, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		info := make([]byte, 68)
		err = gpioIoctl(fd, gpioGetChipinfo, info)
		unix.Close(fd)
		if err != nil {
			continue
		}
		c := simChip{Name: cstr(info[0:32]), Label: cstr(info[32:64]), Lines: map[string]int{}}
		seen = append(seen, c.Name+"="+c.Label)
		if c.Label != label {
			continue
		}
		for off := 0; off < int(le.Uint32(info[64:])); off++ {
			li, err := c.line(off)
			if err != nil {
				return c, err
			}
			if li.Name != "" {
				c.Lines[li.Name] = off
			}
		}
		return c, nil
	}
	return simChip{}, fmt.Errorf("no gpiochip labelled %q (chips: %s)", label, strings.Join(seen, ", "))
}

func (c simChip) line(off int) (lineInfo, error) {
	fd, err := unix.Open("/dev/"+c.Name, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return lineInfo{}, err
	}
	defer unix.Close(fd)
	b := make([]byte, 256)
	le.PutUint32(b[64:], uint32(off))
	if err := gpioIoctl(fd, gpioV2GetLineinfo, b); err != nil {
		return lineInfo{}, fmt.Errorf("GPIO_V2_GET_LINEINFO %s line %d: %w", c.Name, off, err)
	}
	flags := le.Uint64(b[72:])
	return lineInfo{Name: cstr(b[0:32]), Consumer: cstr(b[32:64]),
		Used: flags&gpioLineFlagUsed != 0, Output: flags&gpioLineFlagOutput != 0}, nil
}

// simFile is the path of one of gpio-sim's sysfs files of the named line.
func (c simChip) simFile(name, file string) (string, error) {
	off, ok := c.Lines[name]
	if !ok {
		return "", fmt.Errorf("%s has no line named %q", c.Name, name)
	}
	return fmt.Sprintf("/sys/bus/gpio/devices/%s/sim_gpio%d/%s", c.Name, off, file), nil
}

// pull sets the simulated pull of a line: up (the line reads 1) or down.
func (c simChip) pull(name string, up bool) error {
	p, err := c.simFile(name, "pull")
	if err != nil {
		return err
	}
	v := "pull-down"
	if up {
		v = "pull-up"
	}
	return os.WriteFile(p, []byte(v), 0)
}

// value reads a line's value as the chip sees it (an output's driven value, an input's pull).
func (c simChip) value(name string) (int, error) {
	p, err := c.simFile(name, "value")
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	switch strings.TrimSpace(string(b)) {
	case "1":
		return 1, nil
	case "0":
		return 0, nil
	}
	return 0, fmt.Errorf("%s: %q", p, b)
}

// waitValue polls a line until it reads want, up to timeout; it answers how long it took.
func (c simChip) waitValue(name string, want int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		v, err := c.value(name)
		if err != nil {
			return 0, err
		}
		if v == want {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("line %s reads %d, not %d, after %v", name, v, want, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
