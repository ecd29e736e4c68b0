//go:build linux

package main

import (
	"strings"
	"testing"

	"github.com/lenscap/lenscap/camera/v4l2"
	"gopkg.in/yaml.v3"
)

// The GPIO request numbers are the kernel's, as <linux/gpio.h> gives them on a 64-bit
// architecture (arm64, amd64); the V4L2 ones are camera/v4l2's, checked by its layout test.
func TestGPIOIoctlNumbersMatchTheKernelHeaders(t *testing.T) {
	for name, tc := range map[string]struct{ got, want uintptr }{
		"GPIO_GET_CHIPINFO_IOCTL":    {gpioGetChipinfo, 0x8044b401},
		"GPIO_V2_GET_LINEINFO_IOCTL": {gpioV2GetLineinfo, 0xc100b405},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", name, tc.got, tc.want)
		}
	}
}

// node is a V4L2 node as QUERYCAP and ENUM_FMT describe it.
func node(path, driver string, caps uint32, output, input []uint32) v4l2.Node {
	n := v4l2.Node{Path: path, Caps: caps}
	copy(n.Cap.Driver[:], driver)
	for _, f := range output {
		n.Output = append(n.Output, v4l2.FormatDesc{PixelFormat: f})
	}
	for _, f := range input {
		n.Input = append(n.Input, v4l2.FormatDesc{PixelFormat: f})
	}
	return n
}

// The emulated board's nodes: vivid's capture node, vicodec's encoder and decoders.
var emulatedNodes = []v4l2.Node{
	node("/dev/video0", "vivid", v4l2.CapVideoCapture|v4l2.CapStreaming, nil, []uint32{v4l2.PixFmtYUYV, v4l2.PixFmtNV12}),
	node("/dev/video1", "vicodec", v4l2.CapVideoM2M|v4l2.CapStreaming,
		[]uint32{v4l2.PixFmtYUV420, v4l2.PixFmtNV12}, []uint32{v4l2.PixFmtFWHT}),
	node("/dev/video2", "vicodec", v4l2.CapVideoM2M|v4l2.CapStreaming,
		[]uint32{v4l2.PixFmtFWHT}, []uint32{v4l2.PixFmtYUV420, v4l2.PixFmtNV12}),
}

func TestFindCaptureTakesTheDriversCaptureNodeNotAMemoryToMemoryOne(t *testing.T) {
	if n, ok := findCapture(emulatedNodes, "vivid"); !ok || n.Path != "/dev/video0" {
		t.Errorf("vivid: %v %v, want /dev/video0", n.Path, ok)
	}
	if n, ok := findCapture(emulatedNodes, "vicodec"); ok {
		t.Errorf("vicodec: found %s, a memory-to-memory node", n.Path)
	}
}

func TestFindEncoderTakesTheNodeCodingRawFramesNotTheDecoder(t *testing.T) {
	if n, ok := findEncoder(emulatedNodes, v4l2.PixFmtFWHT); !ok || n.Path != "/dev/video1" {
		t.Errorf("FWHT: %v %v, want the encoder /dev/video1", n.Path, ok)
	}
	if n, ok := findEncoder(emulatedNodes, v4l2.PixFmtH264); ok {
		t.Errorf("H264: found %s", n.Path)
	}
}

func TestBoardTemplateIsYAMLWithAndWithoutTheCamera(t *testing.T) {
	for _, p := range []boardParams{
		{Board: "generic", WithGPIO: true, Camera: "/dev/video0", Encoder: "/dev/video1", CodedFormat: "FWHT", ChipLabel: "lenscap-hil",
			Button: "button", LEDPrivacy: "led-privacy", LEDLive: "led-live", Listen: "127.0.0.1:0",
			StateDir: "/tmp/s", MQTT: "mqtt://127.0.0.1:1883", ID: "hil-cam", WithCamera: true},
		{Board: "generic", WithGPIO: true, ChipLabel: "lenscap-hil", Button: "button", LEDPrivacy: "led-privacy", LEDLive: "led-live",
			Listen: "127.0.0.1:0", StateDir: "/tmp/s", MQTT: "mqtt://127.0.0.1:1883", ID: "hil-cam", Latching: true},
	} {
		out, err := renderBoard(p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, out)
		}
		if m["board"] != p.Board || m["gpio_chip"] != "lenscap-hil" || m["button_pin"] != "button" {
			t.Errorf("board, gpio_chip or button_pin wrong: %v", m)
		}
		if _, has := m["camera"]; has != p.WithCamera {
			t.Errorf("camera key present %v, want %v", has, p.WithCamera)
		}
		if want := map[bool]string{true: "latching", false: "momentary"}[p.Latching]; m["button_mode"] != want {
			t.Errorf("button_mode %v, want %s", m["button_mode"], want)
		}
		if _, has := m["button_pin"]; !has && p.WithGPIO {
			t.Error("no button_pin with WithGPIO")
		}
		if strings.Contains(out, "<no value>") {
			t.Errorf("unfilled parameter:\n%s", out)
		}
	}
}
