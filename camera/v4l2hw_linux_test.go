//go:build linux

package camera

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/camera/v4l2"
	"github.com/lenscap/lenscap/device"
)

// The tests against real V4L2 drivers run only where the environment names the devices;
// the emulated board (vivid + vicodec under QEMU) runs them from a cross-compiled test
// binary, parameters only:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go test -c -o camera.test ./camera
//	# in the guest:
//	LENSCAP_V4L2_CAPTURE=auto LENSCAP_V4L2_FORMAT=YUYV LENSCAP_V4L2_SIZE=640x360 \
//	LENSCAP_V4L2_ENCODER=auto LENSCAP_V4L2_CODED=FWHT ./camera.test -test.run V4L2Real -test.v
//
// LENSCAP_V4L2_CAPTURE is a capture node or "auto" (the first); LENSCAP_V4L2_ENCODER a
// memory-to-memory encoder node or "auto"; LENSCAP_V4L2_CODED its coded format (H264 on a
// Pi, FWHT on vicodec); LENSCAP_V4L2_FORMAT the raw format (YU12, NV12, YUYV; vicodec
// takes all three); LENSCAP_V4L2_DRIVER picks the capture node by driver name ("vivid").

type hwEnv struct {
	capture, encoder, driver string
	format                   RawFormat
	coded                    uint32
}

func v4l2Env(t *testing.T, needCapture, needEncoder bool) hwEnv {
	t.Helper()
	e := hwEnv{capture: os.Getenv("LENSCAP_V4L2_CAPTURE"), encoder: os.Getenv("LENSCAP_V4L2_ENCODER"),
		driver: os.Getenv("LENSCAP_V4L2_DRIVER")}
	if (needCapture && e.capture == "") || (needEncoder && e.encoder == "") {
		t.Skip("no V4L2 devices named (LENSCAP_V4L2_CAPTURE / LENSCAP_V4L2_ENCODER): run on the emulated board or a Pi")
	}
	if e.capture == "auto" {
		e.capture = ""
	}
	if e.encoder == "auto" {
		e.encoder = ""
	}
	e.format = RawFormat{Width: 640, Height: 360, FrameRate: 30}
	if s := os.Getenv("LENSCAP_V4L2_SIZE"); s != "" {
		if _, err := fmt.Sscanf(s, "%dx%d", &e.format.Width, &e.format.Height); err != nil {
			t.Fatalf("LENSCAP_V4L2_SIZE=%q: %v", s, err)
		}
	}
	if s := os.Getenv("LENSCAP_V4L2_FORMAT"); len(s) == 4 {
		e.format.PixelFormat = v4l2.Fourcc(s[0], s[1], s[2], s[3])
	}
	e.coded = v4l2.PixFmtH264
	if s := os.Getenv("LENSCAP_V4L2_CODED"); len(s) == 4 {
		e.coded = v4l2.Fourcc(s[0], s[1], s[2], s[3])
	}
	return e
}

// readAndCheck reads n frames: the first a keyframe, capture times increasing.
func readAndCheck(t *testing.T, st device.Stream, n int) []device.Frame {
	t.Helper()
	var out []device.Frame
	var last time.Time
	for i := range n {
		f := mustRead(t, st)
		if i == 0 && !f.Keyframe {
			t.Error("the first frame is not a keyframe")
		}
		if len(f.Data) == 0 || f.CaptureTime.Before(last) {
			t.Errorf("frame %d: %d bytes, capture time %v before %v", i, len(f.Data), f.CaptureTime, last)
		}
		last = f.CaptureTime
		out = append(out, device.Frame{Data: append([]byte(nil), f.Data...), Keyframe: f.Keyframe})
	}
	return out
}

func TestV4L2RealCaptureDeliversFramesOfTheNegotiatedFormat(t *testing.T) {
	e := v4l2Env(t, true, false)
	before := openFDs(t)
	c, err := openCapture(V4L2CameraOptions{Name: "test camera", Device: e.capture, Driver: e.driver,
		Format: e.format, Buffers: 4}, loggerOrDiscard(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("capturing %v from %s (%s, %s), stride %d, multi-planar %v", c.format, c.node.Path, c.node.Driver(), c.node.Card(), c.stride, c.q.Mplane)
	for i := range 10 {
		data, at, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		if want := c.format.frameSize(); want > 0 && len(data) != want {
			t.Errorf("frame %d: %d bytes, want %d", i, len(data), want)
		}
		if time.Since(at) > time.Second || time.Since(at) < 0 {
			t.Errorf("frame %d: capture time %v is not recent", i, at)
		}
	}
	c.close()
	if _, _, err := c.next(); !errors.Is(err, device.ErrStreamClosed) {
		t.Errorf("next after close: %v", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d file descriptors open after close, %d before", after, before)
	}
}

func TestV4L2RealEncoderCodesGeneratedFrames(t *testing.T) {
	e := v4l2Env(t, false, true)
	f := e.format
	if f.PixelFormat == 0 {
		f.PixelFormat = v4l2.PixFmtYUV420
	}
	cam, err := NewSyntheticCamera(SyntheticCameraOptions{Format: f,
		Encoder: EncoderOptions{Kind: EncoderHardware, Device: e.encoder, CodedFormat: e.coded, KeyframePeriod: 10}})
	if err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	st := mustOpen(t, cam)
	t.Log(cam.Describe())
	frames := readAndCheck(t, st, 25)
	keys := 0
	for _, fr := range frames {
		if fr.Keyframe {
			keys++
		}
	}
	if keys < 2 {
		t.Errorf("%d keyframes in 25 frames with a period of 10", keys)
	}
	if e.coded == v4l2.PixFmtH264 {
		if _, err := parseH264Clip(frames[0].Data); err != nil {
			t.Errorf("first frame: %v", err)
		}
		if err := st.(BitrateSetter).SetBitrate(500_000); err != nil {
			t.Errorf("SetBitrate while streaming: %v", err)
		}
		st.RequestKeyframe()
		mustRead(t, st) // may already be queued
		if f := mustRead(t, st); !f.Keyframe {
			t.Error("no keyframe on request")
		}
	}
	st.Close()
	if cam.IsOpen() {
		t.Error("sensor held after Close")
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d file descriptors open after Close, %d before (the encoder's file must be closed)", after, before)
	}
}

func TestV4L2RealCameraWithHardwareEncoder(t *testing.T) {
	e := v4l2Env(t, true, true)
	cam, err := NewV4L2Camera(V4L2CameraOptions{Device: e.capture, Driver: e.driver, Format: e.format,
		Encoder: EncoderOptions{Kind: EncoderHardware, Device: e.encoder, CodedFormat: e.coded}})
	if err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	for range 2 { // open, stream, close, and again
		st := mustOpen(t, cam)
		if d := cam.Describe(); !strings.Contains(d, "hardware encoder") {
			t.Errorf("Describe() = %q", d)
		}
		readAndCheck(t, st, 10)
		start := time.Now()
		st.Close()
		t.Logf("%s; Close took %v", cam.Describe(), time.Since(start))
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d file descriptors open after Close, %d before", after, before)
	}
}

func TestV4L2CameraOpenErrorsNameTheDevice(t *testing.T) {
	before := openFDs(t)
	for _, tc := range []struct {
		dev  string
		want error
		text string
	}{
		{"/dev/video-lenscap-missing", ErrGone, "/dev/video-lenscap-missing"},
		{"/dev/null", nil, "/dev/null"},
	} {
		cam, err := NewV4L2Camera(V4L2CameraOptions{Device: tc.dev})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cam.Open()
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("Open(%s): %v, want an error naming it (wrapping %v)", tc.dev, err, tc.want)
		}
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d file descriptors open after failed Opens, %d before", after, before)
	}
}

// TestV4L2RealCameraVanishEndsTheStream unplugs vivid under an open stream with its
// "Disconnect" control (it unregisters the node as a USB unplug does) and checks that the
// stream ends with ErrGone, that Close still releases every file, and that the camera
// opens again once vivid reconnects (when every handle is closed). It runs only with
// LENSCAP_V4L2_VANISH=1.
func TestV4L2RealCameraVanishEndsTheStream(t *testing.T) {
	e := v4l2Env(t, true, true)
	if os.Getenv("LENSCAP_V4L2_VANISH") != "1" {
		t.Skip("LENSCAP_V4L2_VANISH=1 not set (destroys vivid's capture node)")
	}
	cam, err := NewV4L2Camera(V4L2CameraOptions{Device: e.capture, Driver: e.driver, Format: e.format,
		Encoder: EncoderOptions{Kind: EncoderHardware, Device: e.encoder, CodedFormat: e.coded}})
	if err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	st := mustOpen(t, cam)
	readAndCheck(t, st, 3)
	node := strings.Fields(cam.Describe())[2] // "V4L2 camera /dev/videoN ..."
	ctl, err := v4l2.Open(node)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := ctl.Controls()["Disconnect"]
	if !ok {
		ctl.Close()
		t.Skipf("%s has no Disconnect control (not vivid)", node)
	}
	if err := ctl.SetControl(id, 0); err != nil {
		t.Fatal(err)
	}
	ctl.Close()
	var rerr error
	for range 100 {
		if _, rerr = st.ReadFrame(); rerr != nil {
			break
		}
	}
	if !errors.Is(rerr, ErrGone) {
		t.Errorf("ReadFrame after the camera vanished: %v, want ErrGone", rerr)
	}
	t.Logf("after unplug: %v", rerr)
	st.Close()
	if after := openFDs(t); after != before {
		t.Errorf("%d file descriptors open after Close, %d before", after, before)
	}
	// vivid reconnects once every file handle is closed, as a camera plugged back in: the
	// retry that device makes after a failure opens it again.
	st2, err := cam.Open()
	if err != nil {
		t.Fatalf("Open after vivid reconnected: %v", err)
	}
	readAndCheck(t, st2, 3)
	st2.Close()
}

func TestV4L2RealCameraRefusesWhatItCannotDoAndSaysWhatItCan(t *testing.T) {
	e := v4l2Env(t, true, false)
	before := openFDs(t)
	for _, f := range []RawFormat{
		{PixelFormat: v4l2.Fourcc('H', 'E', 'V', 'C'), Width: 640, Height: 360, FrameRate: 30},
		{PixelFormat: v4l2.PixFmtYUYV, Width: 8000, Height: 6000, FrameRate: 30},
	} {
		cam, err := NewV4L2Camera(V4L2CameraOptions{Device: e.capture, Driver: e.driver, Format: f,
			Encoder: EncoderOptions{Kind: EncoderSoftware}})
		if err != nil {
			t.Logf("%v refused by the constructor: %v", f, err)
			continue
		}
		_, err = cam.Open()
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "YUYV") {
			t.Errorf("Open %v: %v, want ErrFormat listing what the camera offers", f, err)
		}
		t.Logf("Open %v: %v", f, err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d file descriptors open after refused Opens, %d before", after, before)
	}
}
