// Package board says what a board is: which camera, encoder, microphone and button lenscap
// uses on it. It is the only package that may import periph.io/x/host.
//
// Import rules: board imports gpio, camera and device (and periph.io/x/host).
package board

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/lenscap/lenscap/camera"
	"github.com/lenscap/lenscap/device"
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
}

// ErrUnsupported is returned for a board lenscap cannot drive yet.
var ErrUnsupported = errors.New("board: not supported")

// Open returns the named board: "sim" is the simulated board; real boards come with the
// board issue and are refused with ErrUnsupported until then.
func Open(name string, opts Options) (*Board, error) {
	switch name {
	case "sim":
		return Sim(opts)
	default:
		return nil, fmt.Errorf("%w: %q (only the simulated board, --board sim, is available in this build)", ErrUnsupported, name)
	}
}

// Sim is the simulated board: a test-pattern camera with its H.264 encoder, a test-tone
// microphone, and a button pressed through the API or the terminal.
func Sim(opts Options) (*Board, error) {
	var topts camera.TestPatternOptions
	if opts.SimClip != "" {
		clip, err := os.ReadFile(opts.SimClip)
		if err != nil {
			return nil, fmt.Errorf("board: sim camera clip: %w", err)
		}
		topts.Clip = clip
	}
	video, err := camera.NewTestPattern(topts)
	if err != nil {
		return nil, fmt.Errorf("board: sim camera: %w", err)
	}
	enc := camera.AudioOpus
	switch strings.ToLower(opts.AudioCodec) {
	case "", "opus":
	case "pcmu":
		enc = camera.AudioPCMU
	default:
		return nil, fmt.Errorf("board: unknown audio codec %q (opus or pcmu)", opts.AudioCodec)
	}
	audio, err := camera.NewTestTone(camera.TestToneOptions{Encoding: enc})
	if err != nil {
		return nil, fmt.Errorf("board: sim microphone: %w", err)
	}
	return &Board{Name: "sim", Video: video, Audio: audio, Simulated: true}, nil
}
