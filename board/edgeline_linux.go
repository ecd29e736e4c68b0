package board

import (
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	conngpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3/gpioioctl"
)

// edgeLine is a line of the GPIO character device whose edges are read with their direction
// and the kernel's timestamp. periph's GPIOLine reads each line event and drops both, so a
// reader can only look at the level afterwards: a press shorter than a stall of the reading
// goroutine (a loaded board) would read "released" twice and be lost. In with edges requests
// the line here; everything else (Out for the LEDs, the names) is periph's.
type edgeLine struct {
	*gpioioctl.GPIOLine
	chip string // the chip's device path

	mu sync.Mutex
	f  *os.File // the line request, after In with edges
}

// newLine wraps a periph line of the chip at path.
func newLine(l *gpioioctl.GPIOLine, path string) conngpio.PinIO {
	return &edgeLine{GPIOLine: l, chip: path}
}

// The GPIO v2 uAPI (linux/gpio.h).
const (
	gpioFlagInput       = 1 << 2
	gpioFlagEdgeRising  = 1 << 4
	gpioFlagEdgeFalling = 1 << 5
	gpioFlagPullUp      = 1 << 8
	gpioFlagPullDown    = 1 << 9
	gpioFlagBiasOff     = 1 << 10
	gpioEventRising     = 1
	gpioEventSize       = 48 // struct gpio_v2_line_event
)

type gpioLineConfig struct {
	Flags    uint64
	NumAttrs uint32
	_        [5]uint32
	Attrs    [10][3]uint64 // struct gpio_v2_line_config_attribute: not used
}

type gpioLineRequest struct {
	Offsets         [64]uint32
	Consumer        [32]byte
	Config          gpioLineConfig
	NumLines        uint32
	EventBufferSize uint32
	_               [5]uint32
	Fd              int32
}

type gpioLineValues struct{ Bits, Mask uint64 }

// The ioctls, _IOWR(0xB4, nr, size) as linux/gpio.h defines them.
const (
	gpioGetLine   = 3<<30 | unsafe.Sizeof(gpioLineRequest{})<<16 | 0xB4<<8 | 0x07
	gpioGetValues = 3<<30 | unsafe.Sizeof(gpioLineValues{})<<16 | 0xB4<<8 | 0x0E
)

// In implements conngpio.PinIn. With edges it requests the line itself, so that ReadEdge
// has the events; without, periph does.
func (l *edgeLine) In(pull conngpio.Pull, edge conngpio.Edge) error {
	if edge == conngpio.NoEdge {
		return l.GPIOLine.In(pull, edge)
	}
	flags := uint64(gpioFlagInput)
	if edge != conngpio.FallingEdge {
		flags |= gpioFlagEdgeRising
	}
	if edge != conngpio.RisingEdge {
		flags |= gpioFlagEdgeFalling
	}
	switch pull {
	case conngpio.PullUp:
		flags |= gpioFlagPullUp
	case conngpio.PullDown:
		flags |= gpioFlagPullDown
	case conngpio.Float:
		flags |= gpioFlagBiasOff
	}
	req := gpioLineRequest{NumLines: 1, EventBufferSize: 64, Config: gpioLineConfig{Flags: flags}}
	req.Offsets[0] = uint32(l.Number())
	copy(req.Consumer[:], "lenscap")
	chip, err := os.Open(l.chip)
	if err != nil {
		return fmt.Errorf("board: %s: %w", l.Name(), err)
	}
	defer chip.Close()
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, chip.Fd(), gpioGetLine, uintptr(unsafe.Pointer(&req))); e != 0 {
		return fmt.Errorf("board: %s: request the line for edges: %w", l.Name(), e)
	}
	if err := unix.SetNonblock(int(req.Fd), true); err != nil {
		unix.Close(int(req.Fd))
		return fmt.Errorf("board: %s: %w", l.Name(), err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
	}
	l.f = os.NewFile(uintptr(req.Fd), l.Name()) // non-blocking: the runtime's poller waits
	return nil
}

// file is the line request, nil before In with edges.
func (l *edgeLine) file() *os.File {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f
}

// Read implements conngpio.PinIn.
func (l *edgeLine) Read() conngpio.Level {
	f := l.file()
	if f == nil {
		return l.GPIOLine.Read()
	}
	v := gpioLineValues{Mask: 1}
	rc, err := f.SyscallConn()
	if err != nil {
		return conngpio.Low
	}
	var e unix.Errno
	_ = rc.Control(func(fd uintptr) {
		_, _, e = unix.Syscall(unix.SYS_IOCTL, fd, gpioGetValues, uintptr(unsafe.Pointer(&v)))
	})
	return e == 0 && v.Bits&1 != 0
}

// ReadEdge waits up to timeout (0: not at all) for the next edge and returns the level it
// went to and when, by the kernel's monotonic clock. ok is false on timeout, Halt or error.
func (l *edgeLine) ReadEdge(timeout time.Duration) (conngpio.Level, time.Time, bool) {
	f := l.file()
	if f == nil {
		return conngpio.Low, time.Time{}, false
	}
	var buf [gpioEventSize]byte
	n, err := 0, error(nil)
	if timeout <= 0 {
		// Straight to the descriptor (it is non-blocking): the runtime's read would fail at
		// once on the deadline an earlier timed wait left expired, with edges waiting.
		rc, rerr := f.SyscallConn()
		if rerr != nil {
			return conngpio.Low, time.Time{}, false
		}
		_ = rc.Control(func(fd uintptr) { n, err = unix.Read(int(fd), buf[:]) })
	} else {
		if err := f.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return conngpio.Low, time.Time{}, false
		}
		n, err = f.Read(buf[:])
	}
	if err != nil || n != gpioEventSize {
		return conngpio.Low, time.Time{}, false
	}
	ts := *(*uint64)(unsafe.Pointer(&buf[0]))
	id := *(*uint32)(unsafe.Pointer(&buf[8]))
	return conngpio.Level(id == gpioEventRising), monotonicTime(ts), true
}

// monotonicTime converts a CLOCK_MONOTONIC reading to a time.Time (with Go's monotonic
// reading, so that durations against time.Now are exact).
func monotonicTime(ns uint64) time.Time {
	var ts unix.Timespec
	now := time.Now()
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return now
	}
	ago := time.Duration(ts.Nano() - int64(ns))
	return now.Add(-max(ago, 0))
}

// Halt implements conngpio.PinIn: it interrupts a pending ReadEdge or WaitForEdge.
func (l *edgeLine) Halt() error {
	if f := l.file(); f != nil {
		return f.SetReadDeadline(time.UnixMilli(0))
	}
	return l.GPIOLine.Halt()
}

// WaitForEdge implements conngpio.PinIn.
func (l *edgeLine) WaitForEdge(timeout time.Duration) bool {
	if l.file() == nil {
		return l.GPIOLine.WaitForEdge(timeout)
	}
	if timeout <= 0 {
		timeout = 100 * 365 * 24 * time.Hour // periph's meaning of 0: no timeout
	}
	_, _, ok := l.ReadEdge(timeout)
	return ok
}

// Close releases the line.
func (l *edgeLine) Close() {
	l.mu.Lock()
	f := l.f
	l.f = nil
	l.mu.Unlock()
	if f != nil {
		f.Close()
	}
	l.GPIOLine.Close()
}
