//go:build linux

package main

// The kernel side of the emulated board's video, through the firmware's own V4L2 code: the
// binding camera/v4l2 (QUERYCAP, formats, MMAP queues, controls) for discovery, capture and
// vivid's error injection, and camera's memory-to-memory encoder (camera.SyntheticCamera:
// generated frames into vicodec) for encoding. These checks run before lenscap starts, so a
// failure here is the kernel's or the binding's, not the daemon's.

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/lenscap/lenscap/camera"
	"github.com/lenscap/lenscap/camera/v4l2"
)

// videoNodes describes every /dev/video* node (VIDIOC_QUERYCAP, VIDIOC_ENUM_FMT); it fails
// when there is none or one does not answer.
func videoNodes() ([]v4l2.Node, error) {
	paths, _ := filepath.Glob("/dev/video*")
	if len(paths) == 0 {
		return nil, errors.New("no /dev/video* nodes")
	}
	nodes, err := v4l2.Find(func(v4l2.Node) bool { return true })
	if err != nil {
		return nodes, err
	}
	if len(nodes) != len(paths) {
		return nodes, fmt.Errorf("%d of the %d nodes %v answered VIDIOC_QUERYCAP", len(nodes), len(paths), paths)
	}
	return nodes, nil
}

// findCapture is the first node of driver that captures video and is not a memory-to-memory
// device.
func findCapture(nodes []v4l2.Node, driver string) (v4l2.Node, bool) {
	for _, n := range nodes {
		if n.Driver() == driver && n.Caps&v4l2.CapVideoCapture != 0 &&
			n.Caps&(v4l2.CapVideoM2M|v4l2.CapVideoM2MMplane) == 0 {
			return n, true
		}
	}
	return v4l2.Node{}, false
}

// findEncoder is the stateful encoder: a memory-to-memory node whose CAPTURE queue carries
// the coded format (FWHT for vicodec, H264 on a Pi) and whose OUTPUT queue takes raw frames.
func findEncoder(nodes []v4l2.Node, coded uint32) (v4l2.Node, bool) {
	for _, n := range nodes {
		if n.Caps&(v4l2.CapVideoM2M|v4l2.CapVideoM2MMplane) != 0 && v4l2.Has(n.Input, coded) &&
			!v4l2.Has(n.Output, coded) && len(n.Output) > 0 {
			return n, true
		}
	}
	return v4l2.Node{}, false
}

// fourccs is the pixel formats' four-character codes.
func fourccs(formats []v4l2.FormatDesc) []string {
	s := make([]string, len(formats))
	for i, f := range formats {
		s[i] = f.String()
	}
	return s
}

// startCapture sets YUYV width x height on a capture node, queues count MMAP buffers and
// streams. The caller stops the queue, then closes the device.
func startCapture(dev *v4l2.Device, width, height, count uint32) (*v4l2.Queue, v4l2.PixFormat, error) {
	pix, err := dev.SetPixFormat(v4l2.BufTypeVideoCapture, width, height, v4l2.PixFmtYUYV)
	if err != nil {
		return nil, pix, err
	}
	q, err := v4l2.NewQueue(dev, v4l2.BufTypeVideoCapture, count)
	if err != nil {
		return nil, pix, err
	}
	if err := q.EnqueueAll(); err != nil {
		q.Release()
		return nil, pix, err
	}
	if err := dev.StreamOn(q.Type); err != nil {
		q.Release()
		return nil, pix, err
	}
	return q, pix, nil
}

// captureFrames streams n frames of width x height YUYV from a capture node with MMAP buffers
// and says what came, with the frames per second between the first and the last.
func captureFrames(path string, width, height uint32, n int) (string, error) {
	dev, err := v4l2.Open(path)
	if err != nil {
		return "", err
	}
	defer dev.Close()
	q, pix, err := startCapture(dev, width, height, 4)
	if err != nil {
		return "", err
	}
	defer q.Stop()
	var first time.Time
	empty := 0
	for i := range n {
		d, err := q.DequeueWithin(5 * time.Second)
		if err != nil {
			return "", fmt.Errorf("frame %d: %w", i, err)
		}
		if i == 0 {
			first = time.Now()
		}
		if !anyNonZero(q.Data(d)) {
			empty++
		}
		if err := q.Enqueue(d.Index, v4l2.Timeval{}); err != nil {
			return "", err
		}
	}
	if empty > 0 {
		return "", fmt.Errorf("%d of %d frames were empty", empty, n)
	}
	fps := 0.0
	if n > 1 {
		fps = float64(n-1) / time.Since(first).Seconds()
	}
	return fmt.Sprintf("%d frames %dx%d YUYV (%d bytes each), %.1f fps", n, pix.Width, pix.Height, pix.SizeImage, fps), nil
}

func anyNonZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return true
		}
	}
	return false
}

// vividFatalError is vivid's control that makes the capture queue fail (vb2_queue_error).
const vividFatalError = "Inject Fatal Streaming Error"

// vividControl sets a control of the node by name through a file descriptor of its own, as
// a second process would: vivid's error injection controls are buttons (any value).
func vividControl(path, name string, value int32) error {
	dev, err := v4l2.Open(path)
	if err != nil {
		return err
	}
	defer dev.Close()
	return dev.SetControlByName(name, value)
}

// captureThenFail streams from a vivid capture node, injects a fatal streaming error through
// a second file descriptor (as the camera.failure check does under lenscap) and expects
// VIDIOC_DQBUF to fail.
func captureThenFail(path string, width, height uint32) error {
	dev, err := v4l2.Open(path)
	if err != nil {
		return err
	}
	defer dev.Close()
	q, _, err := startCapture(dev, width, height, 2)
	if err != nil {
		return err
	}
	defer q.Stop()
	d, err := q.DequeueWithin(5 * time.Second)
	if err != nil {
		return fmt.Errorf("before the injection: %w", err)
	}
	if err := q.Enqueue(d.Index, v4l2.Timeval{}); err != nil {
		return err
	}
	if err := vividControl(path, vividFatalError, 1); err != nil {
		return err
	}
	for range 3 {
		if _, err := q.DequeueWithin(5 * time.Second); err != nil {
			return nil // failed, as a dead camera does
		}
	}
	return fmt.Errorf("VIDIOC_DQBUF still works after %q", vividFatalError)
}

// encoded is what encodeFrames measured.
type encoded struct {
	sizes    []int // bytes of each coded frame
	firstKey bool  // the first coded frame is a keyframe
	fps      float64
	desc     string // the encoder, as camera describes it
}

// encodeFrames codes n generated YU12 frames of width x height with the firmware's
// memory-to-memory encoder (camera.SyntheticCamera on the node at path), as fast as the
// encoder goes (the generator's 240 fps is not reached under emulation).
func encodeFrames(path string, coded uint32, width, height, n int) (encoded, error) {
	cam, err := camera.NewSyntheticCamera(camera.SyntheticCameraOptions{
		Name:    "hil generated frames",
		Format:  camera.RawFormat{PixelFormat: v4l2.PixFmtYUV420, Width: width, Height: height, FrameRate: 240},
		Encoder: camera.EncoderOptions{Kind: camera.EncoderHardware, Device: path, CodedFormat: coded},
	})
	if err != nil {
		return encoded{}, err
	}
	st, err := cam.Open()
	if err != nil {
		return encoded{}, err
	}
	defer st.Close()
	e := encoded{desc: cam.Describe()}
	start := time.Now()
	for i := range n {
		f, err := st.ReadFrame()
		if err != nil {
			return e, fmt.Errorf("coded frame %d: %w", i, err)
		}
		if i == 0 {
			e.firstKey = f.Keyframe
		}
		e.sizes = append(e.sizes, len(f.Data))
	}
	e.fps = float64(n) / time.Since(start).Seconds()
	return e, nil
}
