package board

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	conngpio "periph.io/x/conn/v3/gpio"
)

// Report is what lenscap doctor shows: the board, its pins and media, and what is missing.
type Report struct {
	// Board is the board's name ("rpi4"), Model its device-tree model string if detected.
	Board, Model string
	Profile      Profile
	// Chip is the GPIO chip used.
	Chip string
	Pins []PinReport
	// Camera, Encoder and Audio describe the media the board would use, with whether they
	// are available.
	Media []MediaReport
	// Errs are what stops the daemon from starting (a board not detected, a pin it cannot
	// read). Missing media is in Media, not here.
	Errs []error
}

// PinReport is one pin: its role, the line asked for and what was found.
type PinReport struct {
	Role string // "button", "privacy LED", "live LED"
	Line string // as configured or from the profile; "none" when not wired
	Err  error  // why it cannot be used
}

// MediaReport is one piece of media hardware the board should have.
type MediaReport struct {
	Role      string // "camera", "encoder", "audio"
	Device    string // the profile's description
	Available bool
	// Off is media configured "none": nothing of it opens, and it is not missing.
	Off  bool
	Note string // why not, when not
}

// Err is what stops the daemon: every error, joined; nil when the GPIO side is usable.
func (r Report) Err() error { return errors.Join(r.Errs...) }

// Missing lists what is needed and absent: errors and unavailable media.
func (r Report) Missing() []string {
	var m []string
	for _, e := range r.Errs {
		m = append(m, e.Error())
	}
	return append(m, missingMedia(r.Media)...)
}

// Inspect finds out what the named board is and has, without failing at the first problem
// and without starting anything: for lenscap doctor.
func Inspect(name string, opts Options) Report {
	if name == "sim" {
		prof := simProfile
		if opts.GPIO.Chip != "" {
			prof = simLinesProfile
		}
		r := Report{Board: "sim", Profile: prof, Chip: prof.Chip}
		mopts := opts
		mopts.GPIO = GPIOConfig{}
		_, media, err := sim(mopts)
		if err != nil {
			r.Errs = append(r.Errs, err)
		}
		if opts.GPIO.Chip != "" {
			b := &Board{Name: "sim", Profile: prof}
			findPins(b, &r, opts)
			b.Close()
		} else {
			for _, p := range [][2]string{{"button", prof.Button}, {"privacy LED", prof.PrivacyLED}, {"live LED", prof.LiveLED}} {
				r.Pins = append(r.Pins, PinReport{Role: p[0], Line: p[1]})
			}
		}
		r.Media = media // none when sim failed: its error says why
		return r
	}
	b, r := inspect(name, opts)
	b.Close()
	return r
}

// inspect builds a real board and its report; the board holds the lines that were found.
func inspect(name string, opts Options) (*Board, Report) {
	var r Report
	b := &Board{}
	var prof Profile
	switch name {
	case "auto", "":
		p, model, err := Detect(opts.ModelPath)
		if err != nil {
			r.Errs = append(r.Errs, err)
			return b, r
		}
		prof, r.Model = p, model
	default:
		p, ok := Profiles[name]
		if !ok {
			r.Errs = append(r.Errs, fmt.Errorf("%w: %q (boards: sim, auto, %s)", ErrUnsupported, name, strings.Join(ProfileNames(), ", ")))
			return b, r
		}
		prof = p
	}
	r.Board = prof.Name
	b.Name, b.Profile, b.Model = prof.Name, prof, r.Model
	findPins(b, &r, opts)
	video, audio, media, err := buildMedia(prof, opts)
	if err != nil {
		r.Errs = append(r.Errs, err)
		return b, r
	}
	b.Video, b.Audio, r.Media = video, audio, media
	b.Missing = missingMedia(media)
	return b, r
}

// missingMedia lists the media that is not available, as Report.Missing does.
func missingMedia(media []MediaReport) []string {
	var m []string
	off := 0
	for _, md := range media {
		switch {
		case md.Off:
			off++
		case !md.Available:
			m = append(m, fmt.Sprintf("%s %s: %s", md.Role, md.Device, md.Note))
		}
	}
	if off > 0 && off == countRoles(media, "camera", "audio") {
		m = append(m, "camera and audio are both none: nothing to stream")
	}
	return m
}

// findPins finds the board's button and LED lines (the profile's, overridden by opts.GPIO)
// and records them in b and r; a line it cannot find is an error in r.
func findPins(b *Board, r *Report, opts Options) {
	prof, g := b.Profile, opts.GPIO
	r.Profile = prof
	r.Chip = or(g.Chip, prof.Chip)
	pins := opts.Pins
	if pins == nil {
		pins = CharDev{}
	}
	// A board detected as none lenscap knows says so: the missing lines are then no surprise.
	unknown := ""
	if prof.Name == "generic" && b.Model != "" {
		unknown = fmt.Sprintf(" (detected from the model %q, a board lenscap has no profile for: configure its lines)", b.Model)
	}
	find := func(role, line string) conngpio.PinIO {
		pr := PinReport{Role: role, Line: line}
		defer func() { r.Pins = append(r.Pins, pr) }()
		switch {
		case line == NoPin:
			return nil
		case line == "":
			pr.Err = fmt.Errorf("board %s%s: %s: no line configured (set %s)", prof.Name, unknown, role, configKey(role))
			unknown = ""
		case r.Chip == "":
			pr.Err = fmt.Errorf("board %s: %s: no GPIO chip configured (set gpio_chip)", prof.Name, role)
		default:
			p, err := pins.Pin(r.Chip, line)
			if err == nil {
				return p
			}
			pr.Err = fmt.Errorf("board %s: %s (%s): %w", prof.Name, role, configKey(role), err)
		}
		r.Errs = append(r.Errs, pr.Err)
		return nil
	}
	if p := find("button", or(g.Button, prof.Button)); p != nil {
		b.Button = p
	}
	if p := find("privacy LED", or(g.PrivacyLED, prof.PrivacyLED)); p != nil {
		b.PrivacyLED = p
	}
	if p := find("live LED", or(g.LiveLED, prof.LiveLED)); p != nil {
		b.LiveLED = p
	}
	if g.CameraPower != "" {
		if p := find("camera power", g.CameraPower); p != nil {
			b.CameraPower = p
		}
	}
	if g.MicPower != "" {
		if p := find("microphone power", g.MicPower); p != nil {
			b.MicPower = p
		}
	}
}

func configKey(role string) string {
	switch role {
	case "button":
		return "button_pin"
	case "privacy LED":
		return "privacy_led_pin"
	case "camera power":
		return "camera_power_pin"
	case "microphone power":
		return "mic_power_pin"
	default:
		return "live_led_pin"
	}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// countRoles counts the media of the given roles.
func countRoles(media []MediaReport, roles ...string) int {
	n := 0
	for _, md := range media {
		if slices.Contains(roles, md.Role) {
			n++
		}
	}
	return n
}
