// Package board says what a board is: which camera, encoder, microphone and button lenscap
// uses on it. It detects the board (/proc/device-tree/model), knows each board's profile
// (GPIO chip, default pins, which camera, encoder and microphone), and finds the GPIO lines
// through a PinDriver: the GPIO character device (periph's gpioioctl) on real boards, periph's
// gpiotest fakes on the simulated one. The button's edges are read from the character device
// by board itself (edgeline_linux.go), with the direction and time the kernel recorded, so a
// press shorter than a stall of lenscap still counts (gpio.EdgeReader). It is the only package that may import periph.io/x/host.
//
// Import rules: board imports gpio, camera and device (and periph.io/x/host, periph.io/x/conn).
package board

import (
	"errors"
	"log/slog"

	"github.com/lenscap/lenscap/device"
	conngpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// Board is the hardware lenscap runs on.
type Board struct {
	// Name is the board's name ("sim", "rpi4", ...).
	Name string
	// Video and Audio are the capture drivers; nil when the board has none of that kind.
	Video device.Driver
	Audio device.Driver
	// Simulated is true for the simulated board, whose button is pressed through the API
	// and the terminal.
	Simulated bool

	// Profile is what the board is; Model its device-tree model string when detected.
	Profile Profile
	Model   string
	// Button is the privacy button's (or switch's) line; nil when configured "none".
	Button conngpio.PinIn
	// PrivacyLED and LiveLED are the LEDs' lines; nil when not wired ("none").
	PrivacyLED, LiveLED conngpio.PinOut
	// CameraPower and MicPower drive the load switches of the power interlock (NewLinePower);
	// nil when not wired (the default).
	CameraPower, MicPower conngpio.PinOut
	// SimButton is the simulated board's button line, a gpiotest pin: send levels on its
	// EdgesChan to press it like a real contact (through the same debouncer).
	SimButton *gpiotest.Pin
	// Missing says which of the board's media is not there now, or not wired ("camera
	// v4l2:/dev/video0: no such capture device: ...", "audio none: not wired (audio: none)").
	Missing []string
}

// Drivers returns the board's drivers, video first.
func (b *Board) Drivers() []device.Driver {
	var ds []device.Driver
	if b.Video != nil {
		ds = append(ds, b.Video)
	}
	if b.Audio != nil {
		ds = append(ds, b.Audio)
	}
	return ds
}

// Options choose among what a board offers.
type Options struct {
	// AudioCodec is "opus" (the default) or "pcmu".
	AudioCodec string
	// SimClip is an Annex-B H.264 file for the simulated camera to loop instead of its test
	// pattern; empty: the test pattern.
	SimClip string
	// ModelPath is the device-tree model file for "auto"; empty: DefaultModelPath.
	ModelPath string
	// GPIO overrides the profile's chip and pins (required on the generic board).
	GPIO GPIOConfig
	// Pins finds the lines; nil: the GPIO character device (CharDev).
	Pins PinDriver
	// Media overrides the profile's camera, encoder and microphone.
	Media MediaConfig
	// Logger receives the media drivers' choices; nil discards.
	Logger *slog.Logger
}

// GPIOConfig is the configured GPIO chip and lines. An empty field takes the profile's;
// a pin "none" is not wired. The power interlock's lines have no profile default: empty is
// not wired.
type GPIOConfig struct {
	Chip                        string
	Button, PrivacyLED, LiveLED string
	CameraPower, MicPower       string
}

// NoPin is the pin setting for "not wired".
const NoPin = "none"

// ErrUnsupported is returned for a board name lenscap does not know.
var ErrUnsupported = errors.New("board: not supported")

// Open returns the named board: "sim" is the simulated board, "auto" the one detected from
// the device tree, or a profile's name. A real board's GPIO lines are found (an error says
// what is missing: the chip, a line, the permission), and its camera and microphone drivers
// made; Missing says which hardware is not there now.
func Open(name string, opts Options) (*Board, error) {
	if name == "sim" {
		return Sim(opts)
	}
	b, r := inspect(name, opts)
	if err := r.Err(); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Close releases the board's GPIO lines. It is idempotent.
func (b *Board) Close() {
	if b == nil {
		return
	}
	for _, p := range []any{b.Button, b.PrivacyLED, b.LiveLED, b.CameraPower, b.MicPower} {
		if c, ok := p.(interface{ Close() }); ok {
			c.Close()
		}
	}
}

// Sim is the simulated board: a test-pattern camera (pre-encoded H.264, or opts.SimClip), a
// test-tone microphone, and a button pressed through the API or the terminal. opts.Media
// overrides its media as on any board: camera or audio "none" makes no driver of that kind (so
// nothing of it ever opens: no test tone runs with audio "none"), and a real camera or
// microphone ("v4l2", "alsa:default") may stand in for the simulated one. Its button and LEDs
// are gpiotest pins (SimButton), unless opts.GPIO names a chip: then they are real lines found
// by opts.Pins (the GPIO character device by default), e.g. on the kernel's gpio-sim, with the
// button at opts.GPIO.Button and the LEDs not wired unless configured.
func Sim(opts Options) (*Board, error) {
	b, _, err := sim(opts)
	return b, err
}

// sim is Sim, with the reports of its media.
func sim(opts Options) (*Board, []MediaReport, error) {
	video, audio, media, err := buildMedia(simProfile, opts)
	if err != nil {
		return nil, nil, err
	}
	b := &Board{Name: "sim", Video: video, Audio: audio, Simulated: true, Missing: missingMedia(media)}
	if opts.GPIO.Chip != "" {
		b.Profile = simLinesProfile
		var r Report
		findPins(b, &r, opts)
		if err := r.Err(); err != nil {
			b.Close()
			return nil, nil, err
		}
		return b, media, nil
	}
	// The button idles high (a pull-up, active low); the LEDs are fakes too.
	btn := &gpiotest.Pin{N: "SIM_BUTTON", L: conngpio.High, EdgesChan: make(chan conngpio.Level, 64)}
	b.Profile, b.Button, b.SimButton = simProfile, btn, btn
	b.PrivacyLED, b.LiveLED = &gpiotest.Pin{N: "SIM_PRIVACY_LED"}, &gpiotest.Pin{N: "SIM_LIVE_LED"}
	return b, media, nil
}

// simLinesProfile is the simulated board with real GPIO lines: the chip and button from
// config, the LEDs not wired unless configured.
var simLinesProfile = Profile{Name: "sim", Description: "simulated board, GPIO lines from config",
	PrivacyLED: NoPin, LiveLED: NoPin,
	Camera: simProfile.Camera, Encoder: simProfile.Encoder, Audio: simProfile.Audio}

// simProfile is the simulated board: camera "sim" (the test pattern, or sim_clip: H.264
// already, so the encoder is not used unless a real camera is configured) and audio "tone".
var simProfile = Profile{Name: "sim", Description: "simulated board", Chip: "gpiotest",
	Button: "SIM_BUTTON", PrivacyLED: "SIM_PRIVACY_LED", LiveLED: "SIM_LIVE_LED",
	Camera: "sim", Encoder: "auto", Audio: "tone"}
