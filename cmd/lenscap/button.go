package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/lenscap/lenscap/board"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/gpio"
	"github.com/lenscap/lenscap/rtc"
	conngpio "periph.io/x/conn/v3/gpio"
)

// boardOptions are the board settings of the configuration.
func boardOptions(cfg Config) board.Options {
	w, h, _ := parseSize(cfg.VideoSize) // validated; zero when unset
	return board.Options{
		AudioCodec: cfg.AudioCodec,
		SimClip:    cfg.SimClip,
		Media: board.MediaConfig{Camera: cfg.Camera, Encoder: cfg.Encoder, EncoderFormat: cfg.EncoderFormat,
			Audio: cfg.Audio, Width: w, Height: h, FrameRate: cfg.VideoFPS, Bitrate: cfg.VideoBitrate},
		GPIO: board.GPIOConfig{Chip: cfg.GPIOChip, Button: cfg.ButtonPin,
			PrivacyLED: cfg.PrivacyLEDPin, LiveLED: cfg.LiveLEDPin,
			CameraPower: cfg.CameraPowerPin, MicPower: cfg.MicPowerPin},
	}
}

// newButton configures the board's privacy input as the configuration says; nil when the
// board has none (button_pin: none). The simulated board's fake button (SimButton) is
// always active low with a pull-up.
func newButton(cfg Config, b *board.Board, log *slog.Logger) (*gpio.Button, error) {
	if b.Button == nil {
		return nil, nil
	}
	pull := map[string]conngpio.Pull{"up": conngpio.PullUp, "down": conngpio.PullDown, "none": conngpio.Float}[cfg.ButtonPull]
	activeLow := cfg.ButtonActive == "low"
	if b.SimButton != nil {
		pull, activeLow = conngpio.PullUp, true
	}
	btn, err := gpio.NewButton(gpio.ButtonConfig{
		Pin:       b.Button,
		Mode:      gpio.Mode(cfg.ButtonMode),
		ActiveLow: activeLow,
		Pull:      pull,
		Debounce:  cfg.ButtonDebounce,
		Hold:      cfg.ButtonHold,
		Logger:    log.With("component", "button"),
	})
	if err != nil {
		return nil, fmt.Errorf("board %s: privacy button: %w (lenscap does not stream with a button it cannot read; lenscap doctor checks the wiring)", b.Name, err)
	}
	return btn, nil
}

// buttonEvents are the gestures of the privacy input, as device names them.
var buttonGestures = map[gpio.EventKind]device.Gesture{
	gpio.Press: device.GesturePress, gpio.Hold: device.GestureHold, gpio.Switch: device.GestureSwitch,
}

// buttonDecided is given each event of the privacy input on the pin's goroutine, as soon as it
// is decided: the device holds back at once what the event may cut (device.Device.Button). The
// handler it returns applies the event on the button's handler goroutine.
func (d *daemon) buttonDecided(ev gpio.Event) func(context.Context) {
	apply := d.dev.Button(device.ButtonEvent{Gesture: buttonGestures[ev.Kind], At: ev.At,
		Private: ev.Private, Initial: ev.Initial})
	return func(ctx context.Context) {
		st, err := apply(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("privacy button", "event", ev.Kind, "err", err)
			}
			return
		}
		d.log.Info("privacy button", "event", ev.Kind, "video_private", st.Video.Private,
			"audio_private", st.Audio.Private, "debounced_after", ev.At.Sub(ev.Edge))
	}
}

// simulatedPress presses the simulated board's button (the API's /api/button, Enter in the
// terminal): a press decided at at, applied at once.
func (d *daemon) simulatedPress(at time.Time) (device.Status, error) {
	return d.dev.Button(device.ButtonEvent{Gesture: device.GesturePress, At: at})(context.Background())
}

// newLights drives the board's LEDs: privacy as the daemon's stateChanged says, live from the
// rtc server.
func newLights(cfg Config, b *board.Board, srv *rtc.Server, log *slog.Logger) (*gpio.Lights, error) {
	var lc gpio.LightsConfig
	lc.Logger = log.With("component", "leds")
	var err error
	if b.PrivacyLED != nil {
		if lc.Privacy, err = gpio.NewLED(b.PrivacyLED, cfg.PrivacyLEDActive == "low"); err != nil {
			return nil, fmt.Errorf("board %s: privacy LED: %w", b.Name, err)
		}
	}
	if b.LiveLED != nil {
		if lc.Live, err = gpio.NewLED(b.LiveLED, cfg.LiveLEDActive == "low"); err != nil {
			return nil, fmt.Errorf("board %s: live LED: %w", b.Name, err)
		}
	}
	lc.Sending = func() bool { return sending(srv, time.Now()) }
	return gpio.NewLights(lc), nil
}

// sendingWindow is how recently a frame must have gone to a viewer for the live LED.
const sendingWindow = time.Second

// sending reports whether media of any kind was sent to a viewer within sendingWindow.
func sending(srv *rtc.Server, now time.Time) bool {
	for _, k := range device.Kinds {
		if t := srv.LastSent(k); !t.IsZero() && now.Sub(t) < sendingWindow {
			return true
		}
	}
	return false
}
