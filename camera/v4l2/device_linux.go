//go:build linux

package v4l2

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Device is an open V4L2 device file. Its methods are thin ioctl wrappers that retry on
// EINTR (Go's runtime signals interrupt ioctls) and name the device and the request in
// their errors. Wait may be called while another goroutine calls Wake; the rest of the
// methods are used by one goroutine at a time.
type Device struct {
	Path string
	fd   int
	wake int // an eventfd that Wake makes readable, ending a Wait
}

// Open opens a V4L2 device node non-blocking (DQBUF returns EAGAIN; Wait blocks).
func Open(path string) (*Device, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("v4l2: open %s: %w", path, err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("v4l2: open %s: eventfd: %w", path, err)
	}
	return &Device{Path: path, fd: fd, wake: wake}, nil
}

// Close closes the device file; the kernel then stops streaming and frees its buffers once
// they are unmapped. It must not be called twice.
func (d *Device) Close() error {
	unix.Close(d.wake)
	if err := unix.Close(d.fd); err != nil {
		return fmt.Errorf("v4l2: close %s: %w", d.Path, err)
	}
	return nil
}

// FD is the device's file descriptor.
func (d *Device) FD() int { return d.fd }

func (d *Device) ioctl(req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), req, uintptr(arg))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}

// Ioctl runs a request on the device, retrying on EINTR; name is used in the error.
func (d *Device) Ioctl(name string, req uintptr, arg unsafe.Pointer) error {
	if err := d.ioctl(req, arg); err != nil {
		return fmt.Errorf("v4l2: %s %s: %w", name, d.Path, err)
	}
	return nil
}

// QueryCap is VIDIOC_QUERYCAP.
func (d *Device) QueryCap() (Capability, error) {
	var c Capability
	err := d.Ioctl("VIDIOC_QUERYCAP", VIDIOC_QUERYCAP, unsafe.Pointer(&c))
	return c, err
}

// Caps is the capabilities of this device node: device_caps when the driver fills it in,
// else capabilities.
func (c *Capability) Caps() uint32 {
	if c.Capabilities&CapDeviceCaps != 0 {
		return c.DeviceCaps
	}
	return c.Capabilities
}

// FormatDesc is one entry of VIDIOC_ENUM_FMT.
type FormatDesc struct {
	PixelFormat uint32
	Description string
	Compressed  bool
}

func (f FormatDesc) String() string { return FourccString(f.PixelFormat) }

// EnumFormats lists the pixel formats of a buffer type (VIDIOC_ENUM_FMT until EINVAL).
func (d *Device) EnumFormats(bufType uint32) ([]FormatDesc, error) {
	var out []FormatDesc
	for i := uint32(0); ; i++ {
		desc := FmtDesc{Index: i, Type: bufType}
		err := d.ioctl(VIDIOC_ENUM_FMT, unsafe.Pointer(&desc))
		if errors.Is(err, unix.EINVAL) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("v4l2: VIDIOC_ENUM_FMT %s: %w", d.Path, err)
		}
		out = append(out, FormatDesc{
			PixelFormat: desc.PixelFormat,
			Description: CString(desc.Description[:]),
			Compressed:  desc.Flags&FmtFlagCompressed != 0,
		})
	}
}

// FrameSizes lists the discrete frame sizes of a pixel format as "WxH", or a range as
// "W1x H1..W2xH2" (VIDIOC_ENUM_FRAMESIZES); nil when the driver does not say.
func (d *Device) FrameSizes(pixfmt uint32) []string {
	var out []string
	for i := uint32(0); i < 64; i++ {
		e := FrmSizeEnum{Index: i, PixelFormat: pixfmt}
		if d.ioctl(VIDIOC_ENUM_FRAMESIZES, unsafe.Pointer(&e)) != nil {
			break
		}
		if e.Type != FrmSizeTypeDiscrete {
			out = append(out, fmt.Sprintf("%dx%d..%dx%d", e.Size[0], e.Size[3], e.Size[1], e.Size[4]))
			break
		}
		out = append(out, fmt.Sprintf("%dx%d", e.Size[0], e.Size[1]))
	}
	return out
}

// GetFormat is VIDIOC_G_FMT.
func (d *Device) GetFormat(bufType uint32) (Format, error) {
	f := Format{Type: bufType}
	err := d.Ioctl("VIDIOC_G_FMT", VIDIOC_G_FMT, unsafe.Pointer(&f))
	return f, err
}

// SetFormat is VIDIOC_S_FMT; f is updated with what the driver set, which may differ from
// what was asked: the caller checks.
func (d *Device) SetFormat(f *Format) error {
	return d.Ioctl("VIDIOC_S_FMT", VIDIOC_S_FMT, unsafe.Pointer(f))
}

// SetFrameRate asks for fps frames a second on a buffer type (VIDIOC_S_PARM) and returns
// the rate the driver set (0 when it does not say).
func (d *Device) SetFrameRate(bufType uint32, fps int) (float64, error) {
	p := StreamParm{Type: bufType}
	p.Parm.TimePerFrame = Fract{Numerator: 1, Denominator: uint32(fps)}
	if err := d.Ioctl("VIDIOC_S_PARM", VIDIOC_S_PARM, unsafe.Pointer(&p)); err != nil {
		return 0, err
	}
	if p.Parm.TimePerFrame.Numerator == 0 {
		return 0, nil
	}
	return float64(p.Parm.TimePerFrame.Denominator) / float64(p.Parm.TimePerFrame.Numerator), nil
}

// SetControl is VIDIOC_S_CTRL.
func (d *Device) SetControl(id uint32, value int32) error {
	c := Control{ID: id, Value: value}
	if err := d.ioctl(VIDIOC_S_CTRL, unsafe.Pointer(&c)); err != nil {
		return fmt.Errorf("v4l2: VIDIOC_S_CTRL %s: control %#x = %d: %w", d.Path, id, value, err)
	}
	return nil
}

// Controls lists the device's controls by name (VIDIOC_QUERYCTRL with NEXT_CTRL).
func (d *Device) Controls() map[string]uint32 {
	out := make(map[string]uint32)
	id := uint32(0)
	for range 1024 {
		q := QueryCtrl{ID: id | CtrlFlagNextCtrl}
		if d.ioctl(VIDIOC_QUERYCTRL, unsafe.Pointer(&q)) != nil {
			break
		}
		out[CString(q.Name[:])] = q.ID
		id = q.ID
	}
	return out
}

// RequestBuffers is VIDIOC_REQBUFS with MMAP memory; it returns the count the driver
// allocated (count 0 frees them).
func (d *Device) RequestBuffers(bufType, count uint32) (uint32, error) {
	r := RequestBuffers{Count: count, Type: bufType, Memory: MemoryMmap}
	err := d.Ioctl("VIDIOC_REQBUFS", VIDIOC_REQBUFS, unsafe.Pointer(&r))
	return r.Count, err
}

// StreamOn is VIDIOC_STREAMON.
func (d *Device) StreamOn(bufType uint32) error {
	t := int32(bufType)
	return d.Ioctl("VIDIOC_STREAMON", VIDIOC_STREAMON, unsafe.Pointer(&t))
}

// StreamOff is VIDIOC_STREAMOFF: it dequeues every buffer.
func (d *Device) StreamOff(bufType uint32) error {
	t := int32(bufType)
	return d.Ioctl("VIDIOC_STREAMOFF", VIDIOC_STREAMOFF, unsafe.Pointer(&t))
}

// EncoderCommand is VIDIOC_ENCODER_CMD.
func (d *Device) EncoderCommand(cmd uint32) error {
	c := EncoderCmd{Cmd: cmd}
	return d.Ioctl("VIDIOC_ENCODER_CMD", VIDIOC_ENCODER_CMD, unsafe.Pointer(&c))
}

// Wait blocks until the device is readable (a CAPTURE buffer is done), writable (an
// OUTPUT buffer is done), has an error, or Wake is called, at most timeoutMs milliseconds
// (-1: no limit); it returns ErrWoken for Wake and 0 events on timeout.
func (d *Device) Wait(events int16, timeoutMs int) (int16, error) {
	fds := [2]unix.PollFd{{Fd: int32(d.fd), Events: events}, {Fd: int32(d.wake), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds[:], timeoutMs)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("v4l2: poll %s: %w", d.Path, err)
		}
		if fds[1].Revents != 0 {
			return 0, ErrWoken
		}
		return fds[0].Revents, nil
	}
}

// Wake ends a pending Wait, and every later one, with ErrWoken.
func (d *Device) Wake() {
	one := [8]byte{1}
	unix.Write(d.wake, one[:])
}

// ErrWoken is returned by Wait after Wake.
var ErrWoken = errors.New("v4l2: woken")

// Queue is a buffer queue of MMAP buffers on a device, single- or multi-planar; its
// buffers are mapped once and reused. Every method but Dequeue's results is free of heap
// allocation after NewQueue.
type Queue struct {
	dev     *Device
	Type    uint32
	Mplane  bool
	Buffers [][][]byte // Buffers[i][p] is plane p of buffer i, mapped
	planes  []Plane    // scratch for multi-planar ioctls; kept alive across them
	buf     Buffer
}

// NewQueue requests count MMAP buffers of a type and maps every plane.
func NewQueue(dev *Device, bufType, count uint32) (*Queue, error) {
	q := &Queue{dev: dev, Type: bufType, Mplane: bufType == BufTypeVideoCaptureMplane || bufType == BufTypeVideoOutputMplane,
		planes: make([]Plane, MaxPlanes)}
	n, err := dev.RequestBuffers(bufType, count)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("v4l2: VIDIOC_REQBUFS %s: driver gave no buffers", dev.Path)
	}
	for i := uint32(0); i < n; i++ {
		b := q.prepare(i)
		if err := dev.Ioctl("VIDIOC_QUERYBUF", VIDIOC_QUERYBUF, unsafe.Pointer(b)); err != nil {
			q.Release()
			return nil, err
		}
		runtime.KeepAlive(q.planes)
		var maps [][]byte
		if q.Mplane {
			for p := range b.Length {
				m, err := unix.Mmap(dev.fd, int64(uint32(q.planes[p].M)), int(q.planes[p].Length),
					unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
				if err != nil {
					q.Buffers = append(q.Buffers, maps)
					q.Release()
					return nil, fmt.Errorf("v4l2: mmap %s buffer %d plane %d: %w", dev.Path, i, p, err)
				}
				maps = append(maps, m)
			}
		} else {
			m, err := unix.Mmap(dev.fd, int64(uint32(b.M)), int(b.Length),
				unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				q.Release()
				return nil, fmt.Errorf("v4l2: mmap %s buffer %d: %w", dev.Path, i, err)
			}
			maps = append(maps, m)
		}
		q.Buffers = append(q.Buffers, maps)
	}
	return q, nil
}

// prepare fills the scratch v4l2_buffer for buffer i.
func (q *Queue) prepare(i uint32) *Buffer {
	q.buf = Buffer{Index: i, Type: q.Type, Memory: MemoryMmap}
	if q.Mplane {
		clear(q.planes)
		q.buf.M = uintptr(unsafe.Pointer(&q.planes[0]))
		q.buf.Length = MaxPlanes
	}
	return &q.buf
}

// Enqueue queues buffer i (VIDIOC_QBUF); bytesUsed gives each plane's payload for OUTPUT
// buffers (nil for CAPTURE). ts is the buffer's timestamp; a memory-to-memory device
// copies an OUTPUT buffer's timestamp to the CAPTURE buffer made of it.
func (q *Queue) Enqueue(i uint32, ts Timeval, bytesUsed ...int) error {
	b := q.prepare(i)
	b.Timestamp = ts
	if q.Mplane {
		b.Length = uint32(len(q.Buffers[i]))
		for p := range q.Buffers[i] {
			q.planes[p].Length = uint32(len(q.Buffers[i][p]))
			if p < len(bytesUsed) {
				q.planes[p].BytesUsed = uint32(bytesUsed[p])
			}
		}
	} else if len(bytesUsed) > 0 {
		b.BytesUsed = uint32(bytesUsed[0])
	}
	err := q.dev.ioctl(VIDIOC_QBUF, unsafe.Pointer(b))
	runtime.KeepAlive(q.planes)
	if err != nil {
		return fmt.Errorf("v4l2: VIDIOC_QBUF %s buffer %d: %w", q.dev.Path, i, err)
	}
	return nil
}

// Dequeued is a buffer taken back from the driver by Dequeue.
type Dequeued struct {
	Index     uint32
	BytesUsed int // of plane 0 (the payload of a single-plane or coded buffer)
	Flags     uint32
	Sequence  uint32
	Timestamp Timeval
}

// Dequeue takes a done buffer back (VIDIOC_DQBUF); it returns unix.EAGAIN, unwrapped,
// when none is ready.
func (q *Queue) Dequeue() (Dequeued, error) {
	b := q.prepare(0)
	err := q.dev.ioctl(VIDIOC_DQBUF, unsafe.Pointer(b))
	runtime.KeepAlive(q.planes)
	if err == unix.EAGAIN {
		return Dequeued{}, unix.EAGAIN
	}
	if err != nil {
		return Dequeued{}, fmt.Errorf("v4l2: VIDIOC_DQBUF %s: %w", q.dev.Path, err)
	}
	d := Dequeued{Index: b.Index, Flags: b.Flags, Sequence: b.Sequence, Timestamp: b.Timestamp,
		BytesUsed: int(b.BytesUsed)}
	if q.Mplane {
		d.BytesUsed = int(q.planes[0].BytesUsed) - int(q.planes[0].DataOffset)
	}
	if int(b.Index) >= len(q.Buffers) {
		return Dequeued{}, fmt.Errorf("v4l2: VIDIOC_DQBUF %s: buffer index %d out of range", q.dev.Path, b.Index)
	}
	return d, nil
}

// Data is plane 0 of a dequeued buffer's payload.
func (q *Queue) Data(d Dequeued) []byte {
	m := q.Buffers[d.Index][0]
	off := 0
	if q.Mplane {
		off = int(q.planes[0].DataOffset)
	}
	end := min(off+d.BytesUsed, len(m))
	return m[off:end]
}

// Release unmaps every buffer and frees them in the driver (REQBUFS 0, after STREAMOFF).
func (q *Queue) Release() {
	for _, planes := range q.Buffers {
		for _, m := range planes {
			unix.Munmap(m)
		}
	}
	q.Buffers = nil
	q.dev.RequestBuffers(q.Type, 0)
}

// Node is a V4L2 device node found by Find, with what it can do.
type Node struct {
	Path   string
	Cap    Capability
	Caps   uint32       // the node's own capabilities (device_caps)
	Output []FormatDesc // formats of its OUTPUT queue (M2M devices), else nil
	Input  []FormatDesc // formats of its CAPTURE queue
}

// Driver is the driver's name (QUERYCAP driver: "uvcvideo", "vivid", "bcm2835-codec").
func (n Node) Driver() string { return CString(n.Cap.Driver[:]) }

// Card is the device's name (QUERYCAP card: "vicodec-stateful-encoder"...).
func (n Node) Card() string { return CString(n.Cap.Card[:]) }

// Find opens every /dev/video* node, queries it, and returns those match accepts, in
// path order. Nodes that cannot be opened are skipped.
func Find(match func(Node) bool) ([]Node, error) {
	paths, err := filepath.Glob("/dev/video*")
	if err != nil {
		return nil, err
	}
	sort.Slice(paths, func(i, j int) bool { return naturalLess(paths[i], paths[j]) })
	var out []Node
	for _, p := range paths {
		n, err := Describe(p)
		if err != nil {
			continue
		}
		if match(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Describe opens a node and reads its capabilities and formats.
func Describe(path string) (Node, error) {
	d, err := Open(path)
	if err != nil {
		return Node{}, err
	}
	defer d.Close()
	c, err := d.QueryCap()
	if err != nil {
		return Node{}, err
	}
	n := Node{Path: path, Cap: c, Caps: c.Caps()}
	switch {
	case n.Caps&CapVideoM2MMplane != 0:
		n.Output, _ = d.EnumFormats(BufTypeVideoOutputMplane)
		n.Input, _ = d.EnumFormats(BufTypeVideoCaptureMplane)
	case n.Caps&CapVideoM2M != 0:
		n.Output, _ = d.EnumFormats(BufTypeVideoOutput)
		n.Input, _ = d.EnumFormats(BufTypeVideoCapture)
	case n.Caps&CapVideoCaptureMplane != 0:
		n.Input, _ = d.EnumFormats(BufTypeVideoCaptureMplane)
	case n.Caps&CapVideoCapture != 0:
		n.Input, _ = d.EnumFormats(BufTypeVideoCapture)
	}
	return n, nil
}

// Has reports whether formats holds pixfmt.
func Has(formats []FormatDesc, pixfmt uint32) bool {
	for _, f := range formats {
		if f.PixelFormat == pixfmt {
			return true
		}
	}
	return false
}

// FormatList is formats as "YUYV, MJPG".
func FormatList(formats []FormatDesc) string {
	s := make([]string, len(formats))
	for i, f := range formats {
		s[i] = f.String()
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func naturalLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
