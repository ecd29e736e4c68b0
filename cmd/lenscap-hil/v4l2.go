package main

// Minimal raw V4L2 over golang.org/x/sys/unix: just enough to find vivid's capture node and
// vicodec's stateful encoder by VIDIOC_QUERYCAP, to capture a few frames with MMAP streaming and
// to encode a frame through the memory-to-memory encoder. It proves the kernel side of the
// emulated board independently of lenscap.
//
// TODO(issue 5): once camera/ has its V4L2 capture and M2M encoder, the discovery (QUERYCAP,
// ENUM_FMT) and the capture/encode checks should call camera/ instead of this file, so the
// in-guest test exercises the firmware's own V4L2 code; keep this file only as the kernel-side
// reference the camera checks are compared with.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	capVideoCapture = 0x00000001
	capVideoM2M     = 0x00008000
	capM2MMplane    = 0x00004000
	capStreaming    = 0x04000000
	capDeviceCaps   = 0x80000000

	bufTypeCapture = 1
	bufTypeOutput  = 2
	memoryMMAP     = 1
	fieldNone      = 1

	bufFlagKeyframe = 0x00000008
)

func fourcc(s string) uint32 {
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

func fourccString(v uint32) string {
	b := []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
	for i, c := range b {
		if c < ' ' || c > '~' {
			b[i] = '?' // V4L2_PIX_FMT_*_BE set the top bit
		}
	}
	return string(b)
}

// ioc is the kernel's _IOC(dir, type, nr, size).
func ioc(dir, typ, nr, size uintptr) uintptr { return dir<<30 | size<<16 | typ<<8 | nr }

const (
	iocWrite = 1
	iocRead  = 2
)

// Sizes of the structures on 64-bit Linux (arm64): v4l2_capability 104, v4l2_fmtdesc 64,
// v4l2_format 208 (the union is 8-aligned), v4l2_requestbuffers 20, v4l2_buffer 88.
var (
	vidiocQuerycap  = ioc(iocRead, 'V', 0, 104)
	vidiocEnumFmt   = ioc(iocRead|iocWrite, 'V', 2, 64)
	vidiocSFmt      = ioc(iocRead|iocWrite, 'V', 5, 208)
	vidiocReqbufs   = ioc(iocRead|iocWrite, 'V', 8, 20)
	vidiocQuerybuf  = ioc(iocRead|iocWrite, 'V', 9, 88)
	vidiocQbuf      = ioc(iocRead|iocWrite, 'V', 15, 88)
	vidiocDqbuf     = ioc(iocRead|iocWrite, 'V', 17, 88)
	vidiocStreamon  = ioc(iocWrite, 'V', 18, 4)
	vidiocStreamoff = ioc(iocWrite, 'V', 19, 4)
)

var le = binary.LittleEndian

// ioctl retries on EINTR: Go's runtime signals interrupt ioctls (EMULATED-BOARD.md, pitfalls).
func ioctl(fd int, req uintptr, arg []byte) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&arg[0])))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

type videoNode struct {
	Path       string
	Driver     string
	Card       string
	DeviceCaps uint32
	Capture    []string // formats of the capture queue
	Output     []string // formats of the output queue
}

func cstr(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

func querycap(path string) (videoNode, error) {
	n := videoNode{Path: path}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return n, err
	}
	defer unix.Close(fd)
	c := make([]byte, 104)
	if err := ioctl(fd, vidiocQuerycap, c); err != nil {
		return n, fmt.Errorf("VIDIOC_QUERYCAP %s: %w", path, err)
	}
	n.Driver, n.Card = cstr(c[0:16]), cstr(c[16:48])
	n.DeviceCaps = le.Uint32(c[84:])
	if le.Uint32(c[84:])&capDeviceCaps != 0 {
		n.DeviceCaps = le.Uint32(c[88:])
	}
	n.Capture = enumFormats(fd, bufTypeCapture)
	n.Output = enumFormats(fd, bufTypeOutput)
	return n, nil
}

func enumFormats(fd int, typ uint32) []string {
	var out []string
	for i := uint32(0); i < 64; i++ {
		d := make([]byte, 64)
		le.PutUint32(d[0:], i)
		le.PutUint32(d[4:], typ)
		if ioctl(fd, vidiocEnumFmt, d) != nil {
			break
		}
		out = append(out, fourccString(le.Uint32(d[44:])))
	}
	return out
}

// videoNodes queries every /dev/video* node.
func videoNodes() ([]videoNode, error) {
	paths, _ := filepath.Glob("/dev/video*")
	sort.Strings(paths)
	if len(paths) == 0 {
		return nil, errors.New("no /dev/video* nodes")
	}
	var nodes []videoNode
	for _, p := range paths {
		n, err := querycap(p)
		if err != nil {
			return nodes, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// findCapture is the first node that captures video and is not a memory-to-memory device.
func findCapture(nodes []videoNode, driver string) (videoNode, bool) {
	for _, n := range nodes {
		if n.Driver == driver && n.DeviceCaps&capVideoCapture != 0 && n.DeviceCaps&(capVideoM2M|capM2MMplane) == 0 {
			return n, true
		}
	}
	return videoNode{}, false
}

// findEncoder is the stateful encoder: a memory-to-memory node whose capture queue carries the
// coded format (FWHT for vicodec, H264 on a Pi) and whose output queue takes raw frames.
func findEncoder(nodes []videoNode, coded string) (videoNode, bool) {
	for _, n := range nodes {
		if n.DeviceCaps&capVideoM2M != 0 && has(n.Capture, coded) && !has(n.Output, coded) && len(n.Output) > 0 {
			return n, true
		}
	}
	return videoNode{}, false
}

type mmapBuf struct {
	data []byte
}

// stream is one queue of an open node with its MMAP buffers.
type stream struct {
	fd   int
	typ  uint32
	bufs []mmapBuf
}

func setFormat(fd int, typ, width, height uint32, pixfmt string, sizeimage uint32) (w, h, size uint32, err error) {
	f := make([]byte, 208)
	le.PutUint32(f[0:], typ)
	le.PutUint32(f[8:], width)
	le.PutUint32(f[12:], height)
	le.PutUint32(f[16:], fourcc(pixfmt))
	le.PutUint32(f[20:], fieldNone)
	le.PutUint32(f[28:], sizeimage)
	if err := ioctl(fd, vidiocSFmt, f); err != nil {
		return 0, 0, 0, fmt.Errorf("VIDIOC_S_FMT %s %dx%d: %w", pixfmt, width, height, err)
	}
	if got := fourccString(le.Uint32(f[16:])); got != pixfmt {
		return 0, 0, 0, fmt.Errorf("VIDIOC_S_FMT: asked %s, got %s", pixfmt, got)
	}
	return le.Uint32(f[8:]), le.Uint32(f[12:]), le.Uint32(f[28:]), nil
}

func newStream(fd int, typ uint32, count int) (*stream, error) {
	r := make([]byte, 20)
	le.PutUint32(r[0:], uint32(count))
	le.PutUint32(r[4:], typ)
	le.PutUint32(r[8:], memoryMMAP)
	if err := ioctl(fd, vidiocReqbufs, r); err != nil {
		return nil, fmt.Errorf("VIDIOC_REQBUFS: %w", err)
	}
	s := &stream{fd: fd, typ: typ}
	for i := 0; i < int(le.Uint32(r[0:])); i++ {
		b := s.buffer(uint32(i))
		if err := ioctl(fd, vidiocQuerybuf, b); err != nil {
			s.close()
			return nil, fmt.Errorf("VIDIOC_QUERYBUF %d: %w", i, err)
		}
		data, err := unix.Mmap(fd, int64(le.Uint32(b[64:])), int(le.Uint32(b[72:])), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("mmap buffer %d: %w", i, err)
		}
		s.bufs = append(s.bufs, mmapBuf{data: data})
	}
	if len(s.bufs) == 0 {
		return nil, errors.New("VIDIOC_REQBUFS gave no buffers")
	}
	return s, nil
}

func (s *stream) buffer(index uint32) []byte {
	b := make([]byte, 88)
	le.PutUint32(b[0:], index)
	le.PutUint32(b[4:], s.typ)
	le.PutUint32(b[16:], fieldNone)
	le.PutUint32(b[60:], memoryMMAP)
	return b
}

func (s *stream) queue(index, bytesused uint32) error {
	b := s.buffer(index)
	le.PutUint32(b[8:], bytesused)
	if err := ioctl(s.fd, vidiocQbuf, b); err != nil {
		return fmt.Errorf("VIDIOC_QBUF %d: %w", index, err)
	}
	return nil
}

type dequeued struct {
	index, bytesused, flags, sequence uint32
}

// dequeue waits (poll) up to timeout for a buffer of this queue.
func (s *stream) dequeue(timeout time.Duration) (dequeued, error) {
	deadline := time.Now().Add(timeout)
	ev := int16(unix.POLLIN)
	if s.typ == bufTypeOutput {
		ev = unix.POLLOUT
	}
	for {
		b := s.buffer(0)
		err := ioctl(s.fd, vidiocDqbuf, b)
		if err == nil {
			return dequeued{le.Uint32(b[0:]), le.Uint32(b[8:]), le.Uint32(b[12:]), le.Uint32(b[56:])}, nil
		}
		if err != unix.EAGAIN {
			return dequeued{}, fmt.Errorf("VIDIOC_DQBUF: %w", err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return dequeued{}, fmt.Errorf("VIDIOC_DQBUF: no buffer within %v", timeout)
		}
		pfd := []unix.PollFd{{Fd: int32(s.fd), Events: ev}}
		if _, err := unix.Poll(pfd, int(left/time.Millisecond)+1); err != nil && err != unix.EINTR {
			return dequeued{}, fmt.Errorf("poll: %w", err)
		}
	}
}

func (s *stream) on() error {
	t := make([]byte, 4)
	le.PutUint32(t, s.typ)
	return ioctl(s.fd, vidiocStreamon, t)
}

func (s *stream) close() {
	t := make([]byte, 4)
	le.PutUint32(t, s.typ)
	_ = ioctl(s.fd, vidiocStreamoff, t)
	for _, b := range s.bufs {
		_ = unix.Munmap(b.data)
	}
	s.bufs = nil
	r := make([]byte, 20)
	le.PutUint32(r[4:], s.typ)
	le.PutUint32(r[8:], memoryMMAP)
	_ = ioctl(s.fd, vidiocReqbufs, r)
}

// captureFrames streams n frames of width x height YUYV from a capture node; it answers the
// frames per second measured between the first and the last frame.
func captureFrames(path string, width, height uint32, n int) (fps float64, detail string, err error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, "", err
	}
	defer unix.Close(fd)
	w, h, size, err := setFormat(fd, bufTypeCapture, width, height, "YUYV", 0)
	if err != nil {
		return 0, "", err
	}
	s, err := newStream(fd, bufTypeCapture, 4)
	if err != nil {
		return 0, "", err
	}
	defer s.close()
	for i := range s.bufs {
		if err := s.queue(uint32(i), 0); err != nil {
			return 0, "", err
		}
	}
	if err := s.on(); err != nil {
		return 0, "", fmt.Errorf("VIDIOC_STREAMON: %w", err)
	}
	var first time.Time
	var nonEmpty int
	for i := 0; i < n; i++ {
		d, err := s.dequeue(5 * time.Second)
		if err != nil {
			return 0, "", fmt.Errorf("frame %d: %w", i, err)
		}
		if i == 0 {
			first = time.Now()
		}
		if d.bytesused > 0 && anyNonZero(s.bufs[d.index].data[:d.bytesused]) {
			nonEmpty++
		}
		if err := s.queue(d.index, 0); err != nil {
			return 0, "", err
		}
	}
	if nonEmpty != n {
		return 0, "", fmt.Errorf("%d of %d frames were empty", n-nonEmpty, n)
	}
	if n > 1 {
		fps = float64(n-1) / time.Since(first).Seconds()
	}
	return fps, fmt.Sprintf("%d frames %dx%d YUYV (%d bytes each), %.1f fps", n, w, h, size, fps), nil
}

func anyNonZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return true
		}
	}
	return false
}

// encodeFrames pushes n raw YU12 frames through a stateful M2M encoder, one at a time, and
// answers the coded sizes, whether the first was a keyframe, and frames per second.
func encodeFrames(path, coded string, width, height uint32, n int) (sizes []uint32, firstKey bool, fps float64, err error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, 0, err
	}
	defer unix.Close(fd)
	_, _, rawSize, err := setFormat(fd, bufTypeOutput, width, height, "YU12", 0)
	if err != nil {
		return nil, false, 0, fmt.Errorf("output queue: %w", err)
	}
	if _, _, _, err := setFormat(fd, bufTypeCapture, width, height, coded, 0); err != nil {
		return nil, false, 0, fmt.Errorf("capture queue: %w", err)
	}
	out, err := newStream(fd, bufTypeOutput, 2)
	if err != nil {
		return nil, false, 0, fmt.Errorf("output queue: %w", err)
	}
	defer out.close()
	cap, err := newStream(fd, bufTypeCapture, 2)
	if err != nil {
		return nil, false, 0, fmt.Errorf("capture queue: %w", err)
	}
	defer cap.close()
	for i := range cap.bufs {
		if err := cap.queue(uint32(i), 0); err != nil {
			return nil, false, 0, err
		}
	}
	if err := out.on(); err != nil {
		return nil, false, 0, fmt.Errorf("VIDIOC_STREAMON output: %w", err)
	}
	if err := cap.on(); err != nil {
		return nil, false, 0, fmt.Errorf("VIDIOC_STREAMON capture: %w", err)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		b := out.bufs[i%len(out.bufs)].data
		fillPattern(b[:rawSize], width, i)
		if err := out.queue(uint32(i%len(out.bufs)), rawSize); err != nil {
			return nil, false, 0, err
		}
		d, err := cap.dequeue(10 * time.Second)
		if err != nil {
			return nil, false, 0, fmt.Errorf("coded frame %d: %w", i, err)
		}
		if i == 0 {
			firstKey = d.flags&bufFlagKeyframe != 0 ||
				(coded == "FWHT" && isFWHTKeyframe(cap.bufs[d.index].data[:d.bytesused]))
		}
		sizes = append(sizes, d.bytesused)
		if _, err := out.dequeue(10 * time.Second); err != nil {
			return nil, false, 0, fmt.Errorf("raw frame %d back: %w", i, err)
		}
		if err := cap.queue(d.index, 0); err != nil {
			return nil, false, 0, err
		}
	}
	fps = float64(n) / time.Since(start).Seconds()
	return sizes, firstKey, fps, nil
}

// isFWHTKeyframe reads the I-frame flag of a FWHT frame's header (struct fwht_cframe_hdr: flags
// big-endian at byte 20, V4L2_FWHT_FL_I_FRAME is bit 10): vicodec's encoder does not set
// V4L2_BUF_FLAG_KEYFRAME on its capture buffers, only its decoder does.
func isFWHTKeyframe(b []byte) bool {
	return len(b) >= 24 && binary.BigEndian.Uint32(b[20:])&(1<<10) != 0
}

// fillPattern draws moving bars into a YU12 frame (the luma plane; chroma left as is).
func fillPattern(b []byte, width uint32, frame int) {
	for i := range b {
		x := uint32(i) % width
		b[i] = byte((x + uint32(frame)*8) & 0xff)
	}
}

// holders lists the /dev/video* nodes (and any other path matching prefix) that pid holds open.
func holders(pid int, prefix string) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		t, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(t, prefix) {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

var (
	vidiocSCtrl     = ioc(iocRead|iocWrite, 'V', 28, 8)
	vidiocQueryctrl = ioc(iocRead|iocWrite, 'V', 36, 68)
)

const ctrlFlagNextCtrl = 0x80000000

// vividControl sets the control named name (VIDIOC_QUERYCTRL walk, then VIDIOC_S_CTRL); vivid's
// error injection controls ("Inject VIDIOC_DQBUF Error", "Disconnect") are buttons: any value.
func vividControl(path, name string, value int32) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	id := uint32(0)
	for {
		q := make([]byte, 68)
		le.PutUint32(q[0:], id|ctrlFlagNextCtrl)
		if err := ioctl(fd, vidiocQueryctrl, q); err != nil {
			return fmt.Errorf("%s has no control %q", path, name)
		}
		id = le.Uint32(q[0:])
		if cstr(q[8:40]) == name {
			break
		}
	}
	c := make([]byte, 8)
	le.PutUint32(c[0:], id)
	le.PutUint32(c[4:], uint32(value))
	if err := ioctl(fd, vidiocSCtrl, c); err != nil {
		return fmt.Errorf("VIDIOC_S_CTRL %q: %w", name, err)
	}
	return nil
}

// vividFatalError is vivid's control that makes the capture queue fail (vb2_queue_error).
const vividFatalError = "Inject Fatal Streaming Error"

// captureThenFail streams from a vivid capture node, injects a fatal streaming error through a
// second file descriptor (as the test does under lenscap) and expects VIDIOC_DQBUF to fail.
func captureThenFail(path string, width, height uint32) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if _, _, _, err := setFormat(fd, bufTypeCapture, width, height, "YUYV", 0); err != nil {
		return err
	}
	s, err := newStream(fd, bufTypeCapture, 2)
	if err != nil {
		return err
	}
	defer s.close()
	for i := range s.bufs {
		if err := s.queue(uint32(i), 0); err != nil {
			return err
		}
	}
	if err := s.on(); err != nil {
		return fmt.Errorf("VIDIOC_STREAMON: %w", err)
	}
	d, err := s.dequeue(5 * time.Second)
	if err != nil {
		return fmt.Errorf("before the injection: %w", err)
	}
	if err := s.queue(d.index, 0); err != nil {
		return err
	}
	if err := vividControl(path, vividFatalError, 1); err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		if _, err := s.dequeue(5 * time.Second); err != nil {
			return nil // failed, as a dead camera does
		}
	}
	return fmt.Errorf("VIDIOC_DQBUF still works after %q", vividFatalError)
}
