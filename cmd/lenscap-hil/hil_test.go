package main

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The request numbers are the kernel's, as <linux/videodev2.h> and <linux/gpio.h> give them on
// a 64-bit architecture (arm64, amd64).
func TestIoctlNumbersMatchTheKernelHeaders(t *testing.T) {
	for name, tc := range map[string]struct{ got, want uintptr }{
		"VIDIOC_QUERYCAP":            {vidiocQuerycap, 0x80685600},
		"VIDIOC_ENUM_FMT":            {vidiocEnumFmt, 0xc0405602},
		"VIDIOC_S_FMT":               {vidiocSFmt, 0xc0d05605},
		"VIDIOC_REQBUFS":             {vidiocReqbufs, 0xc0145608},
		"VIDIOC_QUERYBUF":            {vidiocQuerybuf, 0xc0585609},
		"VIDIOC_QBUF":                {vidiocQbuf, 0xc058560f},
		"VIDIOC_DQBUF":               {vidiocDqbuf, 0xc0585611},
		"VIDIOC_STREAMON":            {vidiocStreamon, 0x40045612},
		"VIDIOC_STREAMOFF":           {vidiocStreamoff, 0x40045613},
		"VIDIOC_S_CTRL":              {vidiocSCtrl, 0xc008561c},
		"VIDIOC_QUERYCTRL":           {vidiocQueryctrl, 0xc0445624},
		"GPIO_GET_CHIPINFO_IOCTL":    {gpioGetChipinfo, 0x8044b401},
		"GPIO_V2_GET_LINEINFO_IOCTL": {gpioV2GetLineinfo, 0xc100b405},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", name, tc.got, tc.want)
		}
	}
}

func TestFourccRoundTripsAndHidesBigEndianFlag(t *testing.T) {
	if got := fourccString(fourcc("FWHT")); got != "FWHT" {
		t.Errorf("FWHT -> %q", got)
	}
	if got := fourccString(fourcc("Y16 ") | 1<<31); got != "Y16?" {
		t.Errorf("Y16 big-endian -> %q, want Y16?", got)
	}
}

func TestFWHTKeyframeIsReadFromTheHeader(t *testing.T) {
	hdr := make([]byte, 64)
	if isFWHTKeyframe(hdr) {
		t.Error("a P-frame header reads as a keyframe")
	}
	hdr[22] = 0x04 // flags, big-endian at 20: bit 10
	if !isFWHTKeyframe(hdr) {
		t.Error("an I-frame header does not read as a keyframe")
	}
	if isFWHTKeyframe(hdr[:10]) {
		t.Error("a short buffer reads as a keyframe")
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
