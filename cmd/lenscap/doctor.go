package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/lenscap/lenscap/board"
	"github.com/lenscap/lenscap/device"
)

// errMissing is doctor's exit: something the daemon needs is missing.
var errMissing = errors.New("doctor: something lenscap needs is missing")

// runDoctor is `lenscap doctor [flags]`: with the daemon's configuration (the same flags,
// file and environment), it prints the board, its pins, the camera, encoder and microphone
// it would use and what is missing, without streaming. It returns errMissing (exit status 1)
// when something needed is missing.
func runDoctor(args []string, getenv func(string) string, out io.Writer) error {
	cfg, err := loadCommandConfig(hostPlatform(), doctorUsage, args, getenv, nil)
	if err != nil {
		return err
	}
	return doctor(cfg, boardOptions(cfg), out)
}

// doctorUsage is the head of `lenscap doctor -h`.
func doctorUsage(board string) string {
	return `usage: lenscap doctor [flags]

Doctor prints the board lenscap would use, its pins, camera, encoder and microphone, and what
is missing, without streaming; it exits 1 when something needed is missing. It reads the
daemon's configuration: the same flags, file and environment.

` + configHelp(board)
}

// doctor prints the report of the configured board.
func doctor(cfg Config, opts board.Options, out io.Writer) error {
	r := board.Inspect(cfg.Board, opts)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	name := r.Board
	if name == "" {
		name = cfg.Board + " (unknown)"
	}
	fmt.Fprintf(w, "board\t%s\t%s\n", name, r.Profile.Description)
	if r.Model != "" {
		fmt.Fprintf(w, "model\t%q\t(detected from the device tree)\n", r.Model)
	}
	if r.Chip != "" {
		fmt.Fprintf(w, "gpio chip\t%s\t\n", r.Chip)
	}
	for _, p := range r.Pins {
		fmt.Fprintf(w, "%s\t%s\t%s\n", p.Role, p.Line, pinText(cfg, r.Profile, p))
	}
	for _, m := range r.Media {
		status := "ok"
		switch {
		case m.Off:
			status = m.Note
		case !m.Available:
			status = "MISSING: " + m.Note
		case m.Note != "":
			status = "ok (" + m.Note + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", m.Role, m.Device, status)
	}
	fmt.Fprintf(w, "https\t%s\t%s\n", cfg.Listen, tlsDoctorLine(cfg, cfg.Board == boardSim))
	fmt.Fprintf(w, "journal\t%s\t%s\n", cfg.StateDir, journalDoctorLine(cfg.StateDir))
	missing := append(r.Missing(), doctorServices(w, cfg, r.Profile)...)
	w.Flush()
	if len(missing) == 0 {
		fmt.Fprintln(out, "nothing missing")
		return nil
	}
	fmt.Fprintln(out, "missing:")
	for _, m := range missing {
		fmt.Fprintln(out, "  -", strings.ReplaceAll(m, "\n", "\n    "))
	}
	return fmt.Errorf("%w: %d problem(s)", errMissing, len(missing))
}

// doctorServices prints the lines of what lenscap uses beyond the board: the USB devices
// usb_authorize would switch, and the LiveKit server; it returns what is missing.
func doctorServices(w io.Writer, cfg Config, prof board.Profile) (missing []string) {
	if cfg.USBAuthorize {
		for _, k := range []struct {
			kind device.Kind
			spec string
		}{{device.KindVideo, orDefault(cfg.Camera, prof.Camera)}, {device.KindAudio, orDefault(cfg.Audio, prof.Audio)}} {
			fmt.Fprintf(w, "usb authorize\t%s\t%s\n", k.kind, usbDoctorLine(cfg, k.kind, k.spec))
		}
	}
	if cfg.LiveKit.URL != "" {
		line, err := livekitDoctorLine(cfg)
		fmt.Fprintf(w, "livekit\t%s\t%s\n", cfg.LiveKit.URL, line)
		if err != nil {
			missing = append(missing, "livekit "+cfg.LiveKit.URL+": "+err.Error())
		}
	}
	return missing
}

// pinText is a pin's status and how it is configured: "ok (active high)".
func pinText(cfg Config, prof board.Profile, p board.PinReport) string {
	status := "ok"
	switch {
	case p.Err != nil:
		status = "MISSING"
	case p.Line == board.NoPin:
		status = "not wired"
	}
	detail := ""
	switch p.Role {
	case "button":
		detail = fmt.Sprintf("%s, active %s, pull %s, debounce %s, hold %s", cfg.ButtonMode, cfg.ButtonActive,
			cfg.ButtonPull, cfg.ButtonDebounce, holdText(cfg))
	case "privacy LED":
		detail = "active " + cfg.PrivacyLEDActive
	case "live LED":
		detail = "active " + cfg.LiveLEDActive
	case "camera power":
		detail = "active " + cfg.CameraPowerActive + ", " + powerNodeText(device.KindVideo, orDefault(cfg.Camera, prof.Camera))
	case "microphone power":
		detail = "active " + cfg.MicPowerActive + ", " + powerNodeText(device.KindAudio, orDefault(cfg.Audio, prof.Audio))
	}
	return status + " (" + detail + ")"
}

// powerNodeText says which device node a power line's interlock reads back.
func powerNodeText(k device.Kind, spec string) string {
	node, err := board.PowerNode(k, spec)
	if err != nil {
		return "cannot confirm: " + err.Error()
	}
	return "confirms " + node + " gone"
}

// usbDoctorLine says which USB device usb_authorize would switch for a kind, or why none.
func usbDoctorLine(cfg Config, k device.Kind, spec string) string {
	node, err := board.PowerNode(k, spec)
	if err != nil {
		return "not switched: " + err.Error()
	}
	p, err := board.NewUSBPower(node, "", "", cfg.PowerTimeout)
	if err != nil {
		return "not switched: " + err.Error()
	}
	return "ok (" + p.String() + ")"
}

func holdText(cfg Config) string {
	if cfg.ButtonHold == 0 {
		return "off"
	}
	return cfg.ButtonHold.String() + " (toggles the microphone)"
}
