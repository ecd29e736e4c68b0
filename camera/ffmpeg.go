package camera

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/lenscap/lenscap/camera/v4l2"
	"github.com/lenscap/lenscap/device"
)

// The software encoder is an ffmpeg subprocess: raw frames in on stdin, H.264 out. A raw
// Annex-B byte stream has no framing (an access unit is known complete only when the next
// one starts), so ffmpeg writes through its tee muxer to two pipes per packet: the Annex-B
// bytes to stdout, then a framecrc line (pts, size, flags) to fd 3. The reader reads the
// line, then exactly that many bytes: each access unit is handed on as soon as ffmpeg has
// written it.
//
// With these flags ffmpeg 5.1 (Debian 12) returns frame n as soon as frame n is written,
// with no frame held back (TestSoftwareEncoderReturnsAFrameBeforeTheNextIsCaptured); do not
// add -fflags nobuffer: it makes ffmpeg drop the frame its probe read, the first.
//
// A keyframe on request is not possible through the ffmpeg command line: libx264 takes
// forced IDRs only from the CLI's -force_key_frames (times or an expression fixed at
// start), and raw input frames are all "key" to -force_key_frames source. RequestKeyframe
// is therefore served by the periodic IDR (KeyframePeriod, one second by default).

// ffmpegArgs is the command line of the software encoder for raw frames of f.
func ffmpegArgs(f RawFormat, o EncoderOptions) ([]string, error) {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin",
		"-probesize", "32", "-analyzeduration", "0"}
	switch f.PixelFormat {
	case v4l2.PixFmtYUV420:
		args = append(args, "-f", "rawvideo", "-pix_fmt", "yuv420p")
	case v4l2.PixFmtNV12:
		args = append(args, "-f", "rawvideo", "-pix_fmt", "nv12")
	case v4l2.PixFmtYUYV:
		args = append(args, "-f", "rawvideo", "-pix_fmt", "yuyv422")
	case v4l2.PixFmtMJPEG, v4l2.PixFmtJPEG:
		args = append(args, "-f", "mjpeg")
	default:
		return nil, fmt.Errorf("%w: software encoder takes YU12, NV12, YUYV or MJPG, not %s",
			ErrFormat, v4l2.FourccString(f.PixelFormat))
	}
	level, _ := h264Level(f.Width, f.Height, f.FrameRate)
	br := strconv.Itoa(o.Bitrate)
	args = append(args,
		"-video_size", fmt.Sprintf("%dx%d", f.Width, f.Height), "-framerate", strconv.Itoa(f.FrameRate),
		"-i", "pipe:0", "-map", "0:v",
		"-c:v", "libx264", "-preset", o.Preset, "-tune", "zerolatency",
		"-profile:v", "baseline", "-level", fmt.Sprintf("%d.%d", level/10, level%10),
		"-pix_fmt", "yuv420p", "-bf", "0",
		"-g", strconv.Itoa(o.KeyframePeriod), "-keyint_min", strconv.Itoa(o.KeyframePeriod), "-sc_threshold", "0",
		"-b:v", br, "-maxrate", br, "-bufsize", strconv.Itoa(o.Bitrate/2),
		"-x264-params", "repeat-headers=1:aud=0",
		"-fps_mode", "passthrough",
		"-f", "tee", `[f=h264]pipe\:1|[f=framecrc]pipe\:3`)
	return args, nil
}

// ffmpegFrame is one access unit read from ffmpeg, in a buffer that circulates between
// the reader and ReadFrame.
type ffmpegFrame struct {
	data []byte
	at   time.Time
	key  bool
}

// ffmpegStream is an open camera whose raw frames are encoded by an ffmpeg subprocess. It
// owns two goroutines, the feeder (source -> stdin) and the reader (stdout -> frames),
// which Close waits for.
type ffmpegStream struct {
	name     string
	src      rawStream
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	stdout   io.ReadCloser
	framing  *os.File // fd 3's read end
	stderr   *tailBuffer
	duration time.Duration

	frames chan *ffmpegFrame // filled by the reader
	free   chan *ffmpegFrame // empty buffers for the reader
	cur    *ffmpegFrame      // returned by the last ReadFrame; guarded by readMu
	readMu sync.Mutex

	timesMu sync.Mutex
	times   [64]time.Time // capture time of frame n at n%64

	closed    chan struct{}
	closeOnce sync.Once
	exited    chan struct{} // closed when ffmpeg has been reaped
	failOnce  sync.Once
	failed    chan struct{}
	err       error // why the stream failed; set before failed is closed
	wg        sync.WaitGroup
}

// startFFmpeg starts the software encoder on src's frames of format f. On error src is
// closed.
func startFFmpeg(name string, src rawStream, f RawFormat, o EncoderOptions) (*ffmpegStream, error) {
	args, err := ffmpegArgs(f, o)
	if err != nil {
		src.close()
		return nil, fmt.Errorf("camera: open %s: %w", name, err)
	}
	s := &ffmpegStream{
		name:     name,
		src:      src,
		cmd:      exec.Command(o.FFmpeg, args...),
		stderr:   &tailBuffer{max: 2048},
		duration: time.Second / time.Duration(max(f.FrameRate, 1)),
		frames:   make(chan *ffmpegFrame, 4),
		free:     make(chan *ffmpegFrame, 6),
		closed:   make(chan struct{}),
		failed:   make(chan struct{}),
		exited:   make(chan struct{}),
	}
	for range cap(s.free) {
		s.free <- &ffmpegFrame{data: make([]byte, 0, 256<<10)}
	}
	fail := func(err error) (*ffmpegStream, error) {
		src.close()
		return nil, fmt.Errorf("camera: open %s: software encoder %s: %w", name, o.FFmpeg, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	s.framing = r
	s.cmd.ExtraFiles = []*os.File{w}
	ownProcessGroup(s.cmd)
	s.cmd.Stderr = s.stderr
	if s.stdin, err = s.cmd.StdinPipe(); err == nil {
		s.stdout, err = s.cmd.StdoutPipe()
	}
	if err == nil {
		err = s.cmd.Start()
	}
	w.Close()
	if err != nil {
		r.Close()
		if s.stdin != nil {
			s.stdin.Close()
		}
		return fail(err)
	}
	s.wg.Add(2)
	go s.feed()
	go s.read()
	go s.wait()
	return s, nil
}

// wait reaps ffmpeg; its exit, unless asked for by Close, fails the stream with ffmpeg's
// last words (Wait returns after its stderr is read to the end).
func (s *ffmpegStream) wait() {
	err := s.cmd.Wait()
	s.fail(fmt.Errorf("camera: read %s: %w: ffmpeg exited (%v)%s", s.name, ErrEncoder, err, s.stderr.suffix()))
	close(s.exited)
}

// feed writes the source's frames to ffmpeg until the stream ends.
func (s *ffmpegStream) feed() {
	defer s.wg.Done()
	for n := 0; ; n++ {
		data, at, err := s.src.next()
		if err != nil {
			s.fail(err)
			return
		}
		s.timesMu.Lock()
		s.times[n%len(s.times)] = at
		s.timesMu.Unlock()
		if _, err := s.stdin.Write(data); err != nil {
			return // ffmpeg is gone: wait reports why
		}
	}
}

// read turns ffmpeg's output into frames until it ends.
func (s *ffmpegStream) read() {
	defer s.wg.Done()
	lines := bufio.NewReaderSize(s.framing, 4096)
	var asm auAssembler
	for {
		line, err := lines.ReadSlice('\n')
		if err != nil {
			return // ffmpeg is gone: wait reports why
		}
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		pts, size, ok := parseFramecrc(line)
		if !ok {
			s.fail(fmt.Errorf("camera: read %s: %w: unexpected framing line %q", s.name, ErrEncoder, line))
			return
		}
		var fr *ffmpegFrame
		select {
		case fr = <-s.free:
		case <-s.closed:
			return
		}
		if cap(fr.data) < size {
			fr.data = make([]byte, size, size+size/2)
		}
		fr.data = fr.data[:size]
		if _, err := io.ReadFull(s.stdout, fr.data); err != nil {
			return // ffmpeg is gone: wait reports why
		}
		_, key, ok, err := asm.assemble(fr.data)
		if err != nil || !ok {
			s.fail(fmt.Errorf("camera: read %s: %w: ffmpeg wrote an access unit without a picture or parameter sets", s.name, ErrEncoder))
			return
		}
		s.timesMu.Lock()
		fr.at = s.times[pts%len(s.times)]
		s.timesMu.Unlock()
		fr.key = key
		select {
		case s.frames <- fr:
		case <-s.closed:
			return
		}
	}
}

// parseFramecrc reads "0, dts, pts, duration, size, crc..." without allocating.
func parseFramecrc(line []byte) (pts, size int, ok bool) {
	var fields [5]int
	for i := range fields {
		line = bytes.TrimLeft(line, " ")
		j := 0
		for j < len(line) && line[j] >= '0' && line[j] <= '9' {
			fields[i] = fields[i]*10 + int(line[j]-'0')
			j++
		}
		if j == 0 || j >= len(line) || line[j] != ',' {
			return 0, 0, false
		}
		line = line[j+1:]
	}
	return fields[2], fields[4], fields[4] > 0
}

// fail ends the stream with err, once; later errors are dropped.
func (s *ffmpegStream) fail(err error) {
	s.failOnce.Do(func() {
		s.err = err
		close(s.failed)
	})
}

// ReadFrame returns the next access unit: Annex-B, SPS and PPS before every IDR, the first
// an IDR. Frame.Data is valid until the next ReadFrame or Close. After Close it returns an
// error wrapping device.ErrStreamClosed; when the source fails (ErrGone) or ffmpeg exits
// (ErrEncoder) it returns that error, never a frame queued before the failure.
func (s *ffmpegStream) ReadFrame() (device.Frame, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.cur != nil {
		s.free <- s.cur
		s.cur = nil
	}
	for {
		if err := s.stopErr(); err != nil {
			return device.Frame{}, err
		}
		select {
		case fr := <-s.frames:
			if s.stopErr() != nil {
				s.free <- fr
				continue
			}
			s.cur = fr
			return device.Frame{Data: fr.data, CaptureTime: fr.at, Duration: s.duration, Keyframe: fr.key}, nil
		case <-s.closed:
		case <-s.failed:
		}
	}
}

func (s *ffmpegStream) stopErr() error {
	select {
	case <-s.closed:
		return fmt.Errorf("camera: read %s: %w", s.name, device.ErrStreamClosed)
	default:
	}
	select {
	case <-s.failed:
		return s.err
	default:
	}
	return nil
}

// RequestKeyframe does nothing: the next periodic IDR (KeyframePeriod) serves the request;
// see the limit above. It never blocks.
func (s *ffmpegStream) RequestKeyframe() {}

// Close stops capture, kills ffmpeg and waits for it: when Close returns the capture
// device is released and the process has exited (its state reaped). Idempotent.
func (s *ffmpegStream) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.stdin.Close()
		killGroup(s.cmd)
		<-s.exited // reaped before the camera is released: IsOpen false means both are gone
		groupGone(s.cmd, time.Second)
		// feed may be copying a captured frame: the capture buffers are unmapped only once
		// it has returned.
		s.src.stop()
		s.wg.Wait()
		s.src.close()
		s.framing.Close()
	})
	return nil
}

// reaped reports whether the subprocess has been reaped (for tests).
func (s *ffmpegStream) reaped() bool {
	select {
	case <-s.exited:
		return s.cmd.ProcessState != nil
	default:
		return false
	}
}

// tailBuffer keeps the last max bytes written to it: a subprocess's stderr for errors.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// suffix is ": <last stderr line(s)>" or "".
func (t *tailBuffer) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := bytes.TrimSpace(t.b)
	if len(s) == 0 {
		return ""
	}
	return ": " + string(s)
}
