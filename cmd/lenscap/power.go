package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/lenscap/lenscap/board"
	"github.com/lenscap/lenscap/device"
	conngpio "periph.io/x/conn/v3/gpio"
)

// newPower builds the power interlocks the configuration asks for (device.Config.Power): a
// load switch for a kind whose power line is wired, else, with usb_authorize, the USB
// device's authorization. A wired line that cannot work (no such device to watch) is an error:
// the owner asked for the interlock. With usb_authorize, a kind whose device is not on USB is
// left to the software cut, and said so.
func newPower(cfg Config, b *board.Board, log *slog.Logger) (map[device.Kind]device.Power, error) {
	power := make(map[device.Kind]device.Power)
	for _, k := range []struct {
		kind       device.Kind
		drv        device.Driver
		pin        conngpio.PinOut
		activeLow  bool
		spec, key  string
		configured string
	}{
		{device.KindVideo, b.Video, b.CameraPower, cfg.CameraPowerActive == "low", orDefault(cfg.Camera, b.Profile.Camera), "camera_power_pin", cfg.CameraPowerPin},
		{device.KindAudio, b.Audio, b.MicPower, cfg.MicPowerActive == "low", orDefault(cfg.Audio, b.Profile.Audio), "mic_power_pin", cfg.MicPowerPin},
	} {
		if k.pin == nil && !cfg.USBAuthorize {
			continue
		}
		if k.drv == nil {
			if k.pin != nil {
				return nil, fmt.Errorf("%s %s: the board has no %s to power (%s)", k.key, k.configured, k.kind, k.spec)
			}
			continue
		}
		node, err := board.PowerNode(k.kind, k.spec)
		if k.pin != nil {
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", k.key, k.configured, err)
			}
			power[k.kind] = board.NewLinePower(k.pin, k.activeLow, node, cfg.PowerTimeout)
			continue
		}
		var p *board.USBPower
		if err == nil {
			p, err = board.NewUSBPower(node, "", filepath.Join(cfg.StateDir, "usb-"+string(k.kind)+".json"), cfg.PowerTimeout)
		}
		if err != nil {
			log.Warn("usb_authorize: not switched: the software cut only", "kind", k.kind, "device", k.spec, "err", err)
			continue
		}
		power[k.kind] = p
	}
	if cfg.USBAuthorize && len(power) == 0 && b.CameraPower == nil && b.MicPower == nil {
		return nil, errors.New("usb_authorize: neither the camera nor the microphone is a USB device lenscap can deauthorize (lenscap doctor says why)")
	}
	if err := sharedInterlock(cfg, power); err != nil {
		return nil, err
	}
	for k, p := range power {
		log.Info("power interlock", "kind", k, "power", p.String())
	}
	return power, nil
}

// sharedInterlock refuses one switch for both kinds (a webcam with its own microphone, or one
// load switch): cutting the camera alone would take the microphone with it, and lifting the
// microphone would power a private camera while the state says it is off.
func sharedInterlock(cfg Config, power map[device.Kind]device.Power) error {
	v, a := power[device.KindVideo], power[device.KindAudio]
	if v == nil || a == nil {
		return nil
	}
	vu, vok := v.(*board.USBPower)
	au, aok := a.(*board.USBPower)
	if vok && aok && vu.Device() == au.Device() {
		return fmt.Errorf("usb_authorize: the camera and the microphone are one USB device (%s): one interlock cannot switch them apart; "+
			"use a separate microphone, or leave usb_authorize off", vu.Device())
	}
	if cfg.CameraPowerPin != "" && cfg.CameraPowerPin == cfg.MicPowerPin {
		return fmt.Errorf("camera_power_pin and mic_power_pin are the same line (%s): one switch cannot power them apart", cfg.CameraPowerPin)
	}
	return nil
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
