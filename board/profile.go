package board

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// Profile is what lenscap knows about a kind of board: its GPIO chip, the default pins of the
// privacy button and LEDs, and which camera, encoder and microphone it uses. Open makes the
// drivers its media strings (as MediaConfig overrides them) describe; Inspect reports on them.
type Profile struct {
	// Name is the board's name, as --board takes it ("rpi4").
	Name string
	// Description is the board's human name.
	Description string
	// Chip is the GPIO chip of the header pins: a label ("pinctrl-bcm2711"), a name
	// ("gpiochip0") or a path ("/dev/gpiochip0"). Empty on the generic board: from config.
	Chip string
	// Button, PrivacyLED and LiveLED are the default lines, by name ("GPIO17") or offset
	// ("17") on Chip. Empty on the generic board: from config.
	Button, PrivacyLED, LiveLED string
	// Camera, Encoder and Audio say which capture device, H.264 encoder and microphone the
	// board uses, as MediaConfig's strings: "csi-rpicam" (a CSI camera through libcamera),
	// "v4l2:/dev/video0", "sim"; "v4l2-m2m:auto" (the SoC's hardware encoder), "software",
	// "auto"; "alsa:default", "tone".
	Camera, Encoder, Audio string
}

// Default header pins on every Raspberry Pi: the button on GPIO17 (physical pin 11, with a
// ground at pin 9), the privacy LED on GPIO27 (pin 13) and the live LED on GPIO22 (pin 15).
const (
	piButton     = "GPIO17"
	piPrivacyLED = "GPIO27"
	piLiveLED    = "GPIO22"
)

// Profiles are the boards lenscap knows, by name.
var Profiles = map[string]Profile{
	"rpi4": {Name: "rpi4", Description: "Raspberry Pi 4 Model B / 400", Chip: "pinctrl-bcm2711",
		Button: piButton, PrivacyLED: piPrivacyLED, LiveLED: piLiveLED,
		Camera: "csi-rpicam", Encoder: "v4l2-m2m:auto", Audio: "alsa:default"},
	"cm4": {Name: "cm4", Description: "Raspberry Pi Compute Module 4", Chip: "pinctrl-bcm2711",
		Button: piButton, PrivacyLED: piPrivacyLED, LiveLED: piLiveLED,
		Camera: "csi-rpicam", Encoder: "v4l2-m2m:auto", Audio: "alsa:default"},
	"rpizero2w": {Name: "rpizero2w", Description: "Raspberry Pi Zero 2 W", Chip: "pinctrl-bcm2835",
		Button: piButton, PrivacyLED: piPrivacyLED, LiveLED: piLiveLED,
		Camera: "csi-rpicam", Encoder: "v4l2-m2m:auto", Audio: "alsa:default"},
	// The Pi 5 has no hardware H.264 encoder, and its header is on the RP1's chip.
	"rpi5": {Name: "rpi5", Description: "Raspberry Pi 5 / 500 / Compute Module 5", Chip: "pinctrl-rp1",
		Button: piButton, PrivacyLED: piPrivacyLED, LiveLED: piLiveLED,
		Camera: "csi-rpicam", Encoder: "software", Audio: "alsa:default"},
	// A Linux board lenscap has no profile for: its chip and lines come from config.
	"generic": {Name: "generic", Description: "generic Linux board (GPIO chip and lines from config)",
		Camera: "v4l2:/dev/video0", Encoder: "software", Audio: "alsa:default"},
}

// ProfileNames lists the profiles, sorted.
func ProfileNames() []string {
	var ns []string
	for n := range Profiles {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

// DefaultModelPath is where Linux shows the device tree's model string.
const DefaultModelPath = "/proc/device-tree/model"

// ErrNotDetected is returned by Detect when the machine says nothing about its model.
var ErrNotDetected = errors.New("board: cannot detect the board")

// models maps the start of a device-tree model string to a profile, most specific first.
var models = []struct{ prefix, profile string }{
	{"Raspberry Pi Compute Module 5", "rpi5"},
	{"Raspberry Pi Compute Module 4", "cm4"},
	{"Raspberry Pi 5", "rpi5"}, // and the 500
	{"Raspberry Pi 4", "rpi4"}, // and the 400
	{"Raspberry Pi Zero 2", "rpizero2w"},
}

// Detect reads the model string at path (DefaultModelPath when empty) and returns the
// profile of that board, and the model string. A model it has no profile for is the generic
// board; no model at all (not a device-tree machine) is ErrNotDetected.
func Detect(path string) (Profile, string, error) {
	if path == "" {
		path = DefaultModelPath
	}
	b, err := os.ReadFile(path)
	if err != nil {
		hint := ""
		if errors.Is(err, fs.ErrNotExist) {
			hint = " (not a device-tree board)"
		}
		return Profile{}, "", fmt.Errorf("%w: %v%s: use --board sim, a board name (%s) or --board generic with gpio_chip and button_pin",
			ErrNotDetected, err, hint, strings.Join(ProfileNames(), ", "))
	}
	model := strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
	if model == "" {
		return Profile{}, "", fmt.Errorf("%w: %s is empty", ErrNotDetected, path)
	}
	return ProfileForModel(model), model, nil
}

// ProfileForModel returns the profile of a device-tree model string: generic when unknown.
func ProfileForModel(model string) Profile {
	for _, m := range models {
		if strings.HasPrefix(model, m.prefix) {
			return Profiles[m.profile]
		}
	}
	return Profiles["generic"]
}
