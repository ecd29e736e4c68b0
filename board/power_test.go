package board

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lenscap/lenscap/device"
	conngpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// hardwareDelay is how long the fake hardware takes to make a node go or come back.
const hardwareDelay = 5 * time.Millisecond

// testTimeout bounds the interlocks under test (in a synctest bubble: no wall time).
const testTimeout = 100 * time.Millisecond

// watchedPin is a gpiotest pin that tells the fake hardware each level it is driven to.
type watchedPin struct {
	*gpiotest.Pin
	levels chan conngpio.Level
}

func (p *watchedPin) Out(l conngpio.Level) error {
	if err := p.Pin.Out(l); err != nil {
		return err
	}
	p.levels <- l
	return nil
}

func newWatchedPin() *watchedPin {
	return &watchedPin{Pin: &gpiotest.Pin{N: "GPIO5", Num: 5}, levels: make(chan conngpio.Level, 8)}
}

// hardware runs fake(stop) in a goroutine until the test ends.
func hardware(t *testing.T, fake func(stop <-chan struct{})) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { fake(stop) })
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// loadSwitch is a device behind a load switch on pin: hardwareDelay after the pin goes to
// active its node exists, after it goes inactive the node is gone.
func loadSwitch(t *testing.T, pin *watchedPin, active conngpio.Level, node string) {
	hardware(t, func(stop <-chan struct{}) {
		for {
			select {
			case <-stop:
				return
			case l := <-pin.levels:
				time.Sleep(hardwareDelay)
				setNode(t, node, l == active)
			}
		}
	})
}

// setNode makes the fake device node exist or not.
func setNode(t *testing.T, node string, present bool) {
	if !present {
		if err := os.Remove(node); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Error(err)
		}
		return
	}
	if err := os.MkdirAll(filepath.Dir(node), 0o755); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(node, nil, 0o644); err != nil {
		t.Error(err)
	}
}

func nodeExists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	return err == nil
}

func TestLinePowerOffDrivesTheLineLowAndConfirmsTheNodeIsGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node := filepath.Join(t.TempDir(), "video0")
		setNode(t, node, true)
		pin := newWatchedPin()
		loadSwitch(t, pin, conngpio.High, node)
		p := NewLinePower(pin, false, node, testTimeout)
		start := time.Now()
		if err := p.Off(); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < hardwareDelay || took > hardwareDelay+2*powerPoll {
			t.Errorf("Off returned after %v, the node went after %v", took, hardwareDelay)
		}
		if pin.Read() != conngpio.Low || nodeExists(t, node) {
			t.Errorf("after Off: line %v, node exists %v", pin.Read(), nodeExists(t, node))
		}
	})
}

func TestLinePowerOnWaitsForTheNodeToAppear(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node := filepath.Join(t.TempDir(), "video0")
		pin := newWatchedPin()
		loadSwitch(t, pin, conngpio.High, node)
		p := NewLinePower(pin, false, node, testTimeout)
		start := time.Now()
		if err := p.On(); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < hardwareDelay {
			t.Errorf("On returned after %v, before the node appeared (%v)", took, hardwareDelay)
		}
		if pin.Read() != conngpio.High || !nodeExists(t, node) {
			t.Errorf("after On: line %v, node exists %v", pin.Read(), nodeExists(t, node))
		}
	})
}

func TestLinePowerOffIsNotConfirmedWhileTheNodeStillOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node := filepath.Join(t.TempDir(), "video0")
		setNode(t, node, true) // no hardware: the node stays
		p := NewLinePower(&gpiotest.Pin{N: "GPIO5"}, false, node, testTimeout)
		start := time.Now()
		err := p.Off()
		if !errors.Is(err, ErrPowerNotConfirmed) {
			t.Fatalf("Off: %v, want ErrPowerNotConfirmed", err)
		}
		if want := node + " still opens 100ms after GPIO5 went low"; !strings.Contains(err.Error(), want) {
			t.Errorf("Off: %q does not say %q", err, want)
		}
		if took := time.Since(start); took != testTimeout {
			t.Errorf("Off gave up after %v, want its bound %v", took, testTimeout)
		}
	})
}

func TestLinePowerOnReportsAnAbsentDevice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node := filepath.Join(t.TempDir(), "video0")
		p := NewLinePower(&gpiotest.Pin{N: "GPIO5"}, false, node, testTimeout)
		err := p.On()
		if !errors.Is(err, ErrDeviceAbsent) || !strings.Contains(err.Error(), "does not exist 100ms after GPIO5 went high") {
			t.Fatalf("On: %v, want ErrDeviceAbsent saying the node does not exist", err)
		}
	})
}

func TestActiveLowLinePowerDrivesHighForOffAndLowForOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node := filepath.Join(t.TempDir(), "video0")
		setNode(t, node, true)
		pin := newWatchedPin()
		loadSwitch(t, pin, conngpio.Low, node)
		p := NewLinePower(pin, true, node, testTimeout)
		if got, want := p.String(), "line GPIO5 (active low) for "+node; got != want {
			t.Errorf("String: %q, want %q", got, want)
		}
		if err := p.Off(); err != nil || pin.Read() != conngpio.High {
			t.Fatalf("Off: %v, line %v", err, pin.Read())
		}
		if err := p.On(); err != nil || pin.Read() != conngpio.Low || !nodeExists(t, node) {
			t.Fatalf("On: %v, line %v", err, pin.Read())
		}
	})
}

// usbBoard is a fake sysfs and /dev: a USB camera-and-microphone 1-1 (046d:0825) under the
// root hub usb1, with its interface 1-1:1.0 holding video0 and sound card 1, and a platform
// device vivid.0 holding video9.
type usbBoard struct {
	sys, dev string
	usb      string // the USB device's directory, symbolic links resolved
}

func newUSBBoard(t *testing.T) usbBoard {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := usbBoard{sys: filepath.Join(root, "sys"), dev: filepath.Join(root, "dev")}
	hub := filepath.Join(b.sys, "devices/pci0000:00/0000:00:02.0/usb1")
	b.usb = filepath.Join(hub, "1-1")
	intf := filepath.Join(b.usb, "1-1:1.0")
	write := func(dir, name, content string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	write(hub, "authorized", "1\n")
	write(hub, "idVendor", "1d6b\n")
	write(b.usb, "authorized", "1\n")
	write(b.usb, "idVendor", "046d\n")
	write(b.usb, "idProduct", "0825\n")
	write(intf, "authorized", "1\n") // an interface: authorized, but no idVendor
	for _, c := range []struct{ class, name, parent string }{
		{"video4linux", "video0", intf}, {"sound", "card1", intf},
		{"video4linux", "video9", filepath.Join(b.sys, "devices/platform/vivid.0")},
	} {
		dir := filepath.Join(c.parent, c.class, c.name)
		write(dir, "uevent", "")
		link("../../../"+filepath.Base(c.parent), filepath.Join(dir, "device"))
		rel, _ := filepath.Rel(filepath.Join(b.sys, "class", c.class), dir)
		link(rel, filepath.Join(b.sys, "class", c.class, c.name))
	}
	write(filepath.Join(b.sys, "bus/platform"), "uevent", "")
	link("../../../bus/platform", filepath.Join(b.sys, "devices/platform/vivid.0/subsystem"))
	for _, n := range []string{"video0", "video9", "snd/pcmC1D0c", "snd/controlC1"} {
		setNode(t, filepath.Join(b.dev, n), true)
	}
	return b
}

// authorizing is the USB device's reaction to its "authorized" file: hardwareDelay after a
// 0 the nodes are gone, after a 1 they are back.
func (b usbBoard) authorizing(t *testing.T, nodes ...string) {
	hardware(t, func(stop <-chan struct{}) {
		present := true
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			v, err := os.ReadFile(filepath.Join(b.usb, "authorized"))
			if err != nil || strings.TrimSpace(string(v)) == "1" == present {
				continue
			}
			present = !present
			time.Sleep(hardwareDelay)
			for _, n := range nodes {
				setNode(t, n, present)
			}
		}
	})
}

func TestUSBPowerFindsTheUSBDeviceOfAVideoNodeNotItsInterface(t *testing.T) {
	b := newUSBBoard(t)
	p, err := NewUSBPower(filepath.Join(b.dev, "video0"), b.sys, "", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p.dir != b.usb {
		t.Errorf("found %s, want %s", p.dir, b.usb)
	}
	if got, want := p.String(), "usb 1-1 (046d:0825) authorized"; got != want {
		t.Errorf("String: %q, want %q", got, want)
	}
}

func TestUSBPowerFindsTheUSBDeviceOfALSANodes(t *testing.T) {
	b := newUSBBoard(t)
	for _, n := range []string{"snd/pcmC1D0c", "snd/controlC1"} {
		p, err := NewUSBPower(filepath.Join(b.dev, n), b.sys, "", time.Second)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if p.dir != b.usb {
			t.Errorf("%s: found %s, want %s", n, p.dir, b.usb)
		}
	}
}

func TestUSBPowerRefusesAPlatformDeviceSayingWhatToUse(t *testing.T) {
	b := newUSBBoard(t)
	_, err := NewUSBPower(filepath.Join(b.dev, "video9"), b.sys, "", time.Second)
	want := "video9 is not a USB device (platform vivid.0): usb_authorize needs a USB camera; use camera_power_pin"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("NewUSBPower: %v, want %q", err, want)
	}
}

func TestUSBPowerOffDeauthorizesAndOnAuthorizesAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newUSBBoard(t)
		node := filepath.Join(b.dev, "snd/pcmC1D0c")
		b.authorizing(t, node)
		p, err := NewUSBPower(node, b.sys, "", testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Off(); err != nil {
			t.Fatal(err)
		}
		if a, _ := os.ReadFile(filepath.Join(b.usb, "authorized")); string(a) != "0" || nodeExists(t, node) {
			t.Errorf("after Off: authorized %q, node exists %v", a, nodeExists(t, node))
		}
		if got := p.String(); got != "usb 1-1 (046d:0825) deauthorized" {
			t.Errorf("String after Off: %q", got)
		}
		if err := p.On(); err != nil {
			t.Fatal(err)
		}
		if a, _ := os.ReadFile(filepath.Join(b.usb, "authorized")); string(a) != "1" || !nodeExists(t, node) {
			t.Errorf("after On: authorized %q, node exists %v", a, nodeExists(t, node))
		}
	})
}

func TestUSBPowerTimesOutWhenTheDeviceIgnoresItsAuthorization(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newUSBBoard(t)
		node := filepath.Join(b.dev, "video0")
		p, err := NewUSBPower(node, b.sys, "", testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Off(); !errors.Is(err, ErrPowerNotConfirmed) || !strings.Contains(err.Error(), "still opens 100ms after usb 1-1 was deauthorized") {
			t.Errorf("Off: %v, want ErrPowerNotConfirmed", err)
		}
		setNode(t, node, false)
		if err := p.On(); !errors.Is(err, ErrDeviceAbsent) || !strings.Contains(err.Error(), "does not exist 100ms after usb 1-1 was authorized") {
			t.Errorf("On: %v, want ErrDeviceAbsent", err)
		}
	})
}

func TestUSBPowerSaysWhichWriteFailed(t *testing.T) {
	b := newUSBBoard(t)
	p, err := NewUSBPower(filepath.Join(b.dev, "video0"), b.sys, "", testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(b.usb, "authorized")) // unplugged
	if err := p.Off(); err == nil || !strings.Contains(err.Error(), "write 0 to "+filepath.Join(b.usb, "authorized")) {
		t.Errorf("Off: %v, want the failed write", err)
	}
}

func TestUSBPowerRemembersItsDeviceForARestartWhilePrivate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newUSBBoard(t)
		node := filepath.Join(b.dev, "video0")
		remember := filepath.Join(t.TempDir(), "state", "power-video.json")
		b.authorizing(t, node)
		p, err := NewUSBPower(node, b.sys, remember, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(remember); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("remember file: %v %v", fi, err)
		}
		if err := p.Off(); err != nil {
			t.Fatal(err)
		}
		// Deauthorized, the kernel removed the class device: only the file knows the device.
		os.Remove(filepath.Join(b.sys, "class/video4linux/video0"))
		if _, err := NewUSBPower(node, b.sys, "", testTimeout); !errors.Is(err, ErrDeviceAbsent) {
			t.Errorf("without the remember file: %v, want ErrDeviceAbsent", err)
		}
		p, err = NewUSBPower(node, b.sys, remember, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.On(); err != nil {
			t.Fatal(err)
		}
		if _, err := NewUSBPower(filepath.Join(b.dev, "video1"), b.sys, remember, testTimeout); !errors.Is(err, ErrDeviceAbsent) {
			t.Errorf("another absent node with this remember file: %v, want ErrDeviceAbsent", err)
		}
		// The camera away, another device in its port: same sysfs path, not the camera.
		if err := p.Off(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p.Device(), "idVendor"), []byte("0bda\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := NewUSBPower(node, b.sys, remember, testTimeout); !errors.Is(err, ErrDeviceAbsent) {
			t.Errorf("another device at the remembered path: %v, want ErrDeviceAbsent", err)
		}
	})
}

func TestPowerNodeIsTheNodeTheMediaSpecOpens(t *testing.T) {
	for _, tc := range []struct {
		kind       device.Kind
		spec, want string
	}{
		{device.KindVideo, "v4l2:/dev/video2", "/dev/video2"},
		{device.KindAudio, "alsa:default", "/dev/snd/pcmC0D0c"},
		{device.KindAudio, "alsa:hw:1,2", "/dev/snd/pcmC1D2c"},
		{device.KindVideo, "v4l2", "error: v4l2:/dev/videoN"},
		{device.KindVideo, "csi-rpicam", "error: rpicam-vid"},
		{device.KindVideo, "sim", "error: no hardware to power"},
		{device.KindAudio, "tone", "error: no hardware to power"},
		{device.KindAudio, "none", "error: no hardware to power"},
		{device.KindAudio, "alsa:x", "error: card"},
	} {
		got, err := PowerNode(tc.kind, tc.spec)
		if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s %q: %q, %v; want an error saying %q", tc.kind, tc.spec, got, err, want)
			}
		} else if got != tc.want || err != nil {
			t.Errorf("%s %q: %q, %v; want %q", tc.kind, tc.spec, got, err, tc.want)
		}
	}
}
