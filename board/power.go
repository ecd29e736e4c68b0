package board

// The power interlock (device.Power): on a privacy cut, once the source is closed, the
// device's power goes off and its absence is read back (its /dev node is gone), so that "the
// camera is off" is something the device has seen, not something it assumes; on a lift the
// power comes back and the node is awaited before the source opens. Two implementations: a
// load switch on the supply driven by an output line (LinePower), and, for USB cameras and
// microphones with no wiring, the USB device's authorization (USBPower).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/atomicfile"
	conngpio "periph.io/x/conn/v3/gpio"
)

// Errors of the interlocks' Off and On, which callers check with errors.Is.
var (
	// ErrPowerNotConfirmed: the power was switched off but the device was still there when
	// the interlock's bound ran out.
	ErrPowerNotConfirmed = errors.New("board: power off not confirmed")
	// ErrDeviceAbsent: the power was switched on but the device did not appear (or could not
	// be opened) within the bound; also a USB device that cannot be found at all.
	ErrDeviceAbsent = errors.New("board: device absent")
)

// powerPoll is how often an interlock looks at the node while it waits.
const powerPoll = 10 * time.Millisecond

// nodeState is what one look at a device node saw.
type nodeState int

const (
	nodeGone    nodeState = iota // no node, or a node whose driver is gone (ENODEV, ENXIO)
	nodeOpens                    // the node opens: the device is there
	nodeBusy                     // the node exists and is in use (EBUSY): the device is there
	nodeRefused                  // the node exists but opening it fails otherwise (EACCES...)
)

// probeNode opens node (read-only, non-blocking, closed at once) and says what it saw, in
// words for an error ("still opens", "does not exist").
func probeNode(node string) (nodeState, string) {
	f, err := os.OpenFile(node, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err == nil {
		f.Close()
		return nodeOpens, "still opens"
	}
	why := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		why = pe.Err
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nodeGone, "does not exist"
	case errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		return nodeGone, fmt.Sprintf("exists without a device (%v)", why)
	case errors.Is(err, syscall.EBUSY):
		return nodeBusy, fmt.Sprintf("still exists, in use (%v)", why)
	}
	return nodeRefused, fmt.Sprintf("exists but does not open (%v)", why)
}

// waitNode looks at node every powerPoll until it is gone (gone) or there (!gone: it opens,
// or is in use), up to timeout. ok says whether it got there; seen is the last look.
func waitNode(node string, gone bool, timeout time.Duration) (ok bool, seen string) {
	deadline := time.Now().Add(timeout)
	for {
		st, seen := probeNode(node)
		if gone && st == nodeGone || !gone && (st == nodeOpens || st == nodeBusy) {
			return true, seen
		}
		if !time.Now().Before(deadline) {
			return false, seen
		}
		time.Sleep(min(powerPoll, time.Until(deadline)))
	}
}

// LinePower is a load switch on a device's supply, driven by an output line: off is the
// line's inactive level. Off and On are serialized.
type LinePower struct {
	pin     conngpio.PinOut
	active  conngpio.Level
	node    string
	timeout time.Duration

	mu sync.Mutex
}

// NewLinePower returns the interlock of the device whose node (/dev/video0) goes away when
// pin is inactive (low, or high with activeLow); timeout bounds each confirmation. It drives
// nothing until Off or On.
func NewLinePower(pin conngpio.PinOut, activeLow bool, node string, timeout time.Duration) *LinePower {
	return &LinePower{pin: pin, active: conngpio.Level(!activeLow), node: node, timeout: timeout}
}

// Off drives the line inactive, then waits up to the timeout until the node is gone (or its
// open fails with "no such device"). An error wraps ErrPowerNotConfirmed and says what was seen.
func (p *LinePower) Off() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	level := !p.active
	if err := p.drive(level); err != nil {
		return err
	}
	if ok, seen := waitNode(p.node, true, p.timeout); !ok {
		return fmt.Errorf("%w: %s %s %v after %s went %s", ErrPowerNotConfirmed, p.node, seen, p.timeout, p.pinName(), levelName(level))
	}
	return nil
}

// On drives the line active, then waits up to the timeout until the node is there and opens.
// An error wraps ErrDeviceAbsent.
func (p *LinePower) On() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.drive(p.active); err != nil {
		return err
	}
	if ok, seen := waitNode(p.node, false, p.timeout); !ok {
		return fmt.Errorf("%w: %s %s %v after %s went %s", ErrDeviceAbsent, p.node, seen, p.timeout, p.pinName(), levelName(p.active))
	}
	return nil
}

// String describes the interlock: "line GPIO5 (active high) for /dev/video0".
func (p *LinePower) String() string {
	return fmt.Sprintf("line %s (active %s) for %s", p.pinName(), levelName(p.active), p.node)
}

func (p *LinePower) drive(l conngpio.Level) error {
	if p.pin == nil {
		return fmt.Errorf("board: power %s: no line", p.node)
	}
	if err := p.pin.Out(l); err != nil {
		return fmt.Errorf("board: power %s: drive %s %s: %w", p.node, p.pinName(), levelName(l), err)
	}
	return nil
}

func (p *LinePower) pinName() string {
	if p.pin == nil {
		return "(no line)"
	}
	return p.pin.Name()
}

func levelName(l conngpio.Level) string {
	if l == conngpio.High {
		return "high"
	}
	return "low"
}

// USBPower switches a USB camera or microphone by its authorization (sysfs "authorized"):
// deauthorized, the kernel unconfigures the device and unbinds its drivers, so the sensor or
// microphone stops and its node goes away; it needs no wiring. The device stays on the bus
// (VBUS is not cut). Off and On are serialized.
type USBPower struct {
	node    string
	dir     string // the USB device's sysfs directory (…/usb1/1-1)
	id      string // idVendor:idProduct
	timeout time.Duration

	mu sync.Mutex
}

// rememberedUSB is the content of NewUSBPower's remember file.
type rememberedUSB struct {
	Node string `json:"node"`
	USB  string `json:"usb"`
	// ID is the device's identity (idVendor:idProduct:serial): another device plugged into
	// the same port while the camera is away has the same sysfs path, and must not be switched.
	ID string `json:"id"`
}

// usbIdentity is a USB device's idVendor:idProduct:serial, as sysfs gives them.
func usbIdentity(dir string) string {
	var parts []string
	for _, f := range []string{"idVendor", "idProduct", "serial"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		parts = append(parts, strings.TrimSpace(string(b)))
	}
	return strings.Join(parts, ":")
}

// NewUSBPower finds the USB device of node (/dev/videoN, /dev/snd/pcmCcDd[cp] or
// /dev/snd/controlCc) under the sysfs root sys ("" is /sys): the first ancestor of the node's
// class device that has both "authorized" and "idVendor" (a USB device; its interfaces have
// "authorized" only). The class device disappears once the device is deauthorized, so the
// device's sysfs path is saved in the file remember (when not empty) and read back from it when
// node is absent: a restart while private still finds the device. timeout bounds each
// confirmation of Off and On.
func NewUSBPower(node, sys, remember string, timeout time.Duration) (*USBPower, error) {
	if sys == "" {
		sys = "/sys"
	}
	dir, err := findUSB(node, sys, remember)
	if err != nil {
		return nil, err
	}
	p := &USBPower{node: node, dir: dir, timeout: timeout}
	vendor, _ := os.ReadFile(filepath.Join(p.dir, "idVendor"))
	product, _ := os.ReadFile(filepath.Join(p.dir, "idProduct"))
	p.id = strings.TrimSpace(string(vendor)) + ":" + strings.TrimSpace(string(product))
	return p, nil
}

// findUSB finds node's USB device from sysfs and remembers it, or, while node is absent,
// recalls it.
func findUSB(node, sys, remember string) (string, error) {
	if st, _ := probeNode(node); st == nodeGone && remember != "" {
		dir, err := recallUSB(remember, node)
		if err != nil {
			if d, err2 := usbDeviceOf(node, sys); err2 == nil {
				return d, nil // not remembered, but still in sysfs
			}
		}
		return dir, err
	}
	dir, err := usbDeviceOf(node, sys)
	if err != nil {
		return "", err
	}
	if remember != "" {
		if err := rememberUSB(remember, rememberedUSB{Node: node, USB: dir, ID: usbIdentity(dir)}); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// Device is the USB device's sysfs directory: two interlocks on one device switch each
// other's kind.
func (p *USBPower) Device() string { return p.dir }

// Off deauthorizes the device, then waits up to the timeout until the node is gone. An
// error wraps ErrPowerNotConfirmed, or says which write failed.
func (p *USBPower) Off() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.authorize("0"); err != nil {
		return err
	}
	if ok, seen := waitNode(p.node, true, p.timeout); !ok {
		return fmt.Errorf("%w: %s %s %v after usb %s was deauthorized", ErrPowerNotConfirmed, p.node, seen, p.timeout, filepath.Base(p.dir))
	}
	return nil
}

// On authorizes the device, then waits up to the timeout until the node is there and opens.
// An error wraps ErrDeviceAbsent, or says which write failed.
func (p *USBPower) On() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.authorize("1"); err != nil {
		return err
	}
	if ok, seen := waitNode(p.node, false, p.timeout); !ok {
		return fmt.Errorf("%w: %s %s %v after usb %s was authorized", ErrDeviceAbsent, p.node, seen, p.timeout, filepath.Base(p.dir))
	}
	return nil
}

// String describes the device and its authorization now: "usb 1-1 (046d:0825) authorized".
func (p *USBPower) String() string {
	state := "authorization unknown"
	if b, err := os.ReadFile(filepath.Join(p.dir, "authorized")); err == nil {
		switch strings.TrimSpace(string(b)) {
		case "1":
			state = "authorized"
		case "0":
			state = "deauthorized"
		}
	}
	return fmt.Sprintf("usb %s (%s) %s", filepath.Base(p.dir), p.id, state)
}

// authorize writes v to the device's "authorized" file.
func (p *USBPower) authorize(v string) error {
	path := filepath.Join(p.dir, "authorized")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err == nil {
		_, err = f.WriteString(v)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("board: power %s: write %s to %s: %w", p.node, v, path, err)
	}
	return nil
}

var (
	videoNode = regexp.MustCompile(`^video([0-9]+)$`)
	soundNode = regexp.MustCompile(`^(?:pcmC([0-9]+)D[0-9]+[cp]|controlC([0-9]+))$`)
)

// classDevice is the sysfs link to the device of node: <sys>/class/video4linux/videoN/device
// or <sys>/class/sound/cardC/device.
func classDevice(node, sys string) (string, error) {
	base := filepath.Base(node)
	if m := videoNode.FindStringSubmatch(base); m != nil {
		return filepath.Join(sys, "class", "video4linux", base, "device"), nil
	}
	if m := soundNode.FindStringSubmatch(base); m != nil {
		return filepath.Join(sys, "class", "sound", "card"+m[1]+m[2], "device"), nil
	}
	return "", fmt.Errorf("board: power %s: want a node /dev/videoN, /dev/snd/pcmC<card>D<device>[cp] or /dev/snd/controlC<card>", node)
}

// usbDeviceOf finds the USB device of node from sysfs (see NewUSBPower).
func usbDeviceOf(node, sys string) (string, error) {
	link, err := classDevice(node, sys)
	if err != nil {
		return "", err
	}
	dev, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", fmt.Errorf("%w: %s: no device in sysfs (%v)", ErrDeviceAbsent, node, err)
	}
	root, err := filepath.EvalSymlinks(sys)
	if err != nil {
		root = sys
	}
	for d := dev; strings.HasPrefix(d, root) && d != root; d = filepath.Dir(d) {
		if isUSBDevice(d) {
			return d, nil
		}
	}
	use := "usb_authorize needs a USB camera; use camera_power_pin"
	if strings.Contains(link, "sound") {
		use = "usb_authorize needs a USB microphone; wire its power to a GPIO line instead"
	}
	return "", fmt.Errorf("board: %s is not a USB device (%s): %s", node, describeDevice(dev), use)
}

// isUSBDevice says whether dir is a USB device's sysfs directory, not one of its interfaces.
func isUSBDevice(dir string) bool {
	for _, f := range []string{"authorized", "idVendor"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// describeDevice names a sysfs device by its bus and name: "platform vivid.0".
func describeDevice(dir string) string {
	if bus, err := filepath.EvalSymlinks(filepath.Join(dir, "subsystem")); err == nil {
		return filepath.Base(bus) + " " + filepath.Base(dir)
	}
	return filepath.Base(dir)
}

// rememberUSB saves where node's USB device is, unless the file says so already.
func rememberUSB(path string, r rememberedUSB) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("board: remember %s: %w", r.Node, err)
	}
	b = append(b, '\n')
	if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
		return nil // nothing changed: spare the flash a write and two fsyncs
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("board: remember the USB device of %s: %w", r.Node, err)
	}
	return nil
}

// recallUSB reads back the USB device remembered for node, and checks it is still there.
func recallUSB(path, node string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not there and no USB device is remembered for it: %v", ErrDeviceAbsent, node, err)
	}
	var r rememberedUSB
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("board: power %s: read %s: %w", node, path, err)
	}
	if r.Node != node {
		return "", fmt.Errorf("%w: %s is not there, and %s remembers the USB device of %s, not of it", ErrDeviceAbsent, node, path, r.Node)
	}
	if !isUSBDevice(r.USB) {
		return "", fmt.Errorf("%w: %s is not there, and its remembered USB device %s is gone (unplugged?)", ErrDeviceAbsent, node, r.USB)
	}
	if id := usbIdentity(r.USB); id != r.ID {
		return "", fmt.Errorf("%w: %s is not there, and %s now holds another device (%s, not %s)", ErrDeviceAbsent, node, r.USB, id, r.ID)
	}
	return r.USB, nil
}

// PowerNode is the /dev node whose presence shows the power of the device a media spec
// opens (Profile's strings, as in MediaConfig): camera "v4l2:/dev/videoN" is that node, audio
// "alsa:C,D" is /dev/snd/pcmC<C>D<D>c. Specs with no single node that comes and goes with
// the device's power are refused with what to configure instead.
func PowerNode(kind device.Kind, spec string) (string, error) {
	name, arg, _ := strings.Cut(spec, ":")
	switch {
	case name == "sim" || name == "none" || name == "tone":
		return "", fmt.Errorf("board: power interlock for %s %q: no hardware to power", kind, spec)
	case kind == device.KindVideo && name == "v4l2":
		if arg == "" || arg == "auto" {
			return "", fmt.Errorf("board: power interlock for camera %q: name the node, camera v4l2:/dev/videoN (the first capture node is found only when it opens, and a camera without power has none)", spec)
		}
		return arg, nil
	case kind == device.KindVideo && (name == "csi-rpicam" || name == "rpicam"):
		return "", fmt.Errorf("board: power interlock for camera %q: rpicam-vid reaches the sensor through libcamera, and no /dev node comes and goes with its power; use a V4L2 or USB camera (v4l2:/dev/videoN)", spec)
	case kind == device.KindAudio && name == "alsa":
		card, dev, err := alsaDevice(arg)
		if err != nil {
			return "", fmt.Errorf("board: power interlock for audio %q: %w", spec, err)
		}
		return fmt.Sprintf("/dev/snd/pcmC%dD%dc", card, dev), nil
	}
	return "", fmt.Errorf("board: power interlock for %s %q: want camera v4l2:/dev/videoN or audio alsa:CARD,DEVICE", kind, spec)
}
