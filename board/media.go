package board

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/lenscap/lenscap/camera"
	"github.com/lenscap/lenscap/camera/v4l2"
	"github.com/lenscap/lenscap/device"
)

// MediaConfig overrides a profile's camera, encoder and microphone, on every board including
// the simulated one; an empty field takes the profile's. The strings are those of Profile:
// camera "csi-rpicam", "v4l2" (the first capture node), "v4l2:/dev/video0", "sim" (the test
// pattern, or Options.SimClip) or "none"; encoder "v4l2-m2m:auto", "v4l2-m2m:/dev/video11",
// "software" or "auto"; audio "alsa:CARD,DEVICE" ("alsa:default" is card 0, device 0), "tone"
// (the 1 kHz test tone) or "none". "none" makes no driver of that kind: nothing of it is ever
// opened.
type MediaConfig struct {
	Camera, Encoder, Audio string
	// EncoderFormat is the hardware encoder's coded format: "H264" (default) or "FWHT"
	// (vicodec on the emulated board; not playable by browsers).
	EncoderFormat string
	// Width, Height, FrameRate and Bitrate of the video; zero: 1280x720, 30 fps, 2 Mbit/s.
	Width, Height, FrameRate, Bitrate int
}

// buildMedia makes the drivers a profile's media strings (as overridden) describe, and says
// for each whether its hardware is there now. A driver whose device is missing is still made:
// the device package reports its failure and retries with backoff (a camera plugged in later).
func buildMedia(prof Profile, opts Options) (video, audio device.Driver, media []MediaReport, err error) {
	mc := opts.Media
	camSpec, encSpec, audSpec := or(mc.Camera, prof.Camera), or(mc.Encoder, prof.Encoder), or(mc.Audio, prof.Audio)
	enc, encReport, err := encoderOptions(encSpec, mc)
	if err != nil {
		return nil, nil, nil, err
	}
	video, camReport, err := buildCamera(camSpec, enc, opts)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("board: camera %s: %w", camSpec, err)
	}
	if camReport.Off || camSpec == "sim" {
		encReport.Note, encReport.Available = "not used", true
	}
	audio, audReport, err := buildMicrophone(audSpec, opts.AudioCodec)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("board: audio %s: %w", audSpec, err)
	}
	return video, audio, []MediaReport{camReport, encReport, audReport}, nil
}

// buildCamera makes the camera spec's driver (nil for none) and says whether it is there.
func buildCamera(spec string, enc camera.EncoderOptions, opts Options) (device.Driver, MediaReport, error) {
	mc := opts.Media
	format := camera.RawFormat{Width: mc.Width, Height: mc.Height, FrameRate: mc.FrameRate}
	if format.Width == 0 || format.Height == 0 {
		format.Width, format.Height = 1280, 720
	}
	if format.FrameRate == 0 {
		format.FrameRate = 30
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := MediaReport{Role: "camera", Device: spec}
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "none":
		r.Off, r.Note = true, "off (camera: none)"
		return nil, r, nil
	case "sim":
		r.Available, r.Note = true, "the test pattern"
		if opts.SimClip != "" {
			r.Note = "looping " + opts.SimClip
		}
		cam, err := simCamera(opts.SimClip)
		return cam, r, err
	case "csi-rpicam", "rpicam":
		program := "rpicam-vid"
		if _, err := exec.LookPath(program); err != nil {
			if _, err := exec.LookPath("libcamera-vid"); err == nil {
				program = "libcamera-vid"
			}
		}
		r.Available, r.Note = onPath(program, "install rpicam-apps")
		// rpicam-vid encodes H.264 with the SoC's encoder itself; without one (Pi 5) it
		// writes raw frames for lenscap's software encoder.
		cam, err := camera.NewRPiCam(camera.RPiCamOptions{Program: program, Width: format.Width,
			Height: format.Height, FrameRate: format.FrameRate, Raw: enc.Kind == camera.EncoderSoftware,
			Encoder: enc, Logger: log})
		return cam, r, err
	case "v4l2":
		if arg == "auto" {
			arg = ""
		}
		r.Available, r.Note = exists(or(arg, "/dev/video0"), "no such capture device: plug the camera in, or set camera")
		cam, err := camera.NewV4L2Camera(camera.V4L2CameraOptions{Device: arg, Format: format, Encoder: enc, Logger: log})
		return cam, r, err
	}
	return nil, r, errors.New("want csi-rpicam, v4l2[:/dev/videoN], sim or none")
}

// buildMicrophone makes the audio spec's driver (nil for none) and says whether it is there.
func buildMicrophone(spec, codec string) (device.Driver, MediaReport, error) {
	r := MediaReport{Role: "audio", Device: spec}
	enc, err := audioEncoding(codec)
	if err != nil {
		return nil, r, err
	}
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "none":
		r.Off, r.Note = true, "off (audio: none)"
		return nil, r, nil
	case "tone":
		r.Available, r.Note = true, "the 1 kHz test tone"
		tone, err := camera.NewTestTone(camera.TestToneOptions{Encoding: enc})
		return tone, r, err
	case "alsa":
		card, dev, err := alsaDevice(arg)
		if err != nil {
			return nil, r, err
		}
		r.Available, r.Note = exists(fmt.Sprintf("/dev/snd/pcmC%dD%dc", card, dev), "no such ALSA capture device (arecord -l lists them)")
		mic, err := camera.NewMicrophone(camera.MicrophoneOptions{Card: card, Device: dev, Encoding: enc})
		return mic, r, err
	}
	return nil, r, errors.New("want alsa:CARD,DEVICE, tone or none")
}

// simCamera is the simulated camera: the embedded test pattern, or the Annex-B H.264 file
// clip looped.
func simCamera(clip string) (*camera.TestPattern, error) {
	var o camera.TestPatternOptions
	if clip != "" {
		b, err := os.ReadFile(clip)
		if err != nil {
			return nil, fmt.Errorf("sim_clip: %w", err)
		}
		o.Clip = b
	}
	return camera.NewTestPattern(o)
}

// audioEncoding reads an audio codec name: "opus" (also the default) or "pcmu".
func audioEncoding(codec string) (camera.AudioEncoding, error) {
	switch strings.ToLower(codec) {
	case "", "opus":
		return camera.AudioOpus, nil
	case "pcmu":
		return camera.AudioPCMU, nil
	}
	return camera.AudioOpus, fmt.Errorf("board: unknown audio codec %q (opus or pcmu)", codec)
}

// encoderOptions reads an encoder string.
func encoderOptions(spec string, mc MediaConfig) (camera.EncoderOptions, MediaReport, error) {
	r := MediaReport{Role: "encoder", Device: spec}
	o := camera.EncoderOptions{Bitrate: mc.Bitrate}
	switch strings.ToUpper(mc.EncoderFormat) {
	case "", "H264":
		o.CodedFormat = v4l2.PixFmtH264
	case "FWHT":
		o.CodedFormat = v4l2.PixFmtFWHT
	default:
		return o, r, fmt.Errorf("board: encoder_format %q: want H264 or FWHT", mc.EncoderFormat)
	}
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "v4l2-m2m":
		o.Kind = camera.EncoderHardware
		if arg != "auto" {
			o.Device = arg
		}
		r.Available, r.Note = true, "found by its capabilities when the camera opens"
		if o.Device != "" {
			r.Available, r.Note = exists(o.Device, "no such encoder node")
		}
	case "software":
		o.Kind = camera.EncoderSoftware
		r.Available, r.Note = onPath("ffmpeg", "install ffmpeg")
	case "auto", "":
		o.Kind = camera.EncoderAuto
		r.Available, r.Note = true, "hardware if one is found, else ffmpeg"
	default:
		return o, r, fmt.Errorf("board: encoder %q: want v4l2-m2m:auto, v4l2-m2m:/dev/videoN, software or auto", spec)
	}
	return o, r, nil
}

// alsaDevice reads "default", "hw:C,D", "C,D" or "C" into a card and device.
func alsaDevice(s string) (card, dev uint, err error) {
	s = strings.TrimPrefix(s, "hw:")
	if s == "" || s == "default" {
		return 0, 0, nil
	}
	cs, ds, _ := strings.Cut(s, ",")
	c, err := strconv.ParseUint(cs, 10, 8)
	if err != nil {
		return 0, 0, fmt.Errorf("card %q: want a number", cs)
	}
	var d uint64
	if ds != "" {
		if d, err = strconv.ParseUint(ds, 10, 8); err != nil {
			return 0, 0, fmt.Errorf("device %q: want a number", ds)
		}
	}
	return uint(c), uint(d), nil
}

func exists(path, why string) (bool, string) {
	if _, err := os.Stat(path); err != nil {
		return false, why
	}
	return true, ""
}

func onPath(program, why string) (bool, string) {
	if _, err := exec.LookPath(program); err != nil {
		return false, program + " not found: " + why
	}
	return true, ""
}
