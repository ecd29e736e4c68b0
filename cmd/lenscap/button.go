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

// testHookRun, when set by a test, is given the board and the rtc server run made (to press
// the board's SimButton and read the capture times of what viewers received).
var testHookRun func(*board.Board, *rtc.Server)

// boardOptions are the board settings of the configuration.
func boardOptions(cfg Config) board.Options {
	w, h, _ := parseSize(cfg.VideoSize) // validated; zero when unset
	return board.Options{
		AudioCodec: cfg.AudioCodec,
		SimClip:    cfg.SimClip,
		Media: board.MediaConfig{Camera: cfg.Camera, Encoder: cfg.Encoder, EncoderFormat: cfg.EncoderFormat,
			Audio: cfg.Audio, Width: w, Height: h, FrameRate: cfg.VideoFPS, Bitrate: cfg.VideoBitrate},
		GPIO: board.GPIOConfig{Chip: cfg.GPIOChip, Button: cfg.ButtonPin,
			PrivacyLED: cfg.PrivacyLEDPin, LiveLED: cfg.LiveLEDPin},
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

// bootChange applies a latching switch's position at boot, before any source opens.
func bootChange(btn *gpio.Button, p device.Policy) func(device.State) *device.Change {
	if btn == nil || btn.Mode() != gpio.Latching {
		return nil
	}
	return func(st device.State) *device.Change {
		// Only the safe direction before the debounce: a switch read on "private" keeps the
		// camera closed at once; "public" waits for the debounced first reading at Run.
		if !btn.Active() {
			return nil
		}
		return p.SwitchChange(st, true, true, time.Now())
	}
}

// buttonGate is the button's early gate: as soon as the input loop decides an event that may
// cut (a press, a hold, a switch moved to private), the kinds it may cut stop reaching viewers,
// even while the handler is still busy with an earlier event (a slow lift); the device lets
// them through again once the event has been applied.
func buttonGate(dev *device.Device, kinds []device.Kind) func(gpio.Event) func() {
	return func(ev gpio.Event) func() {
		switch {
		case ev.Kind == gpio.Press, ev.Kind == gpio.Switch && ev.Private:
			return dev.Hold(ev.At, kinds...)
		case ev.Kind == gpio.Hold:
			return dev.Hold(ev.At, device.KindAudio)
		}
		return nil
	}
}

// buttonEvents applies the privacy input's events to the device: a press toggles the
// button's kinds, a hold the microphone only, a switch sets its position. It runs on the
// button's handler goroutine, never on the one reading the pin.
func buttonEvents(ctx context.Context, dev *device.Device, log *slog.Logger) func(gpio.Event) {
	return func(ev gpio.Event) {
		var st device.Status
		var err error
		switch ev.Kind {
		case gpio.Press:
			st, err = dev.PressButton(ctx, ev.At)
		case gpio.Hold:
			st, err = dev.PressButtonKinds(ctx, ev.At, device.KindAudio)
		case gpio.Switch:
			st, err = dev.SetSwitch(ctx, ev.At, ev.Private, ev.Initial)
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Error("privacy button", "event", ev.Kind, "err", err)
			}
			return
		}
		log.Info("privacy button", "event", ev.Kind, "video_private", st.Video.Private,
			"audio_private", st.Audio.Private, "debounced_after", ev.At.Sub(ev.Edge))
	}
}

// newLights drives the board's LEDs: privacy from the device, live from the rtc server.
func newLights(cfg Config, b *board.Board, dev *device.Device, srv *rtc.Server, log *slog.Logger) (*gpio.Lights, error) {
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
	l := gpio.NewLights(lc)
	dev.Watch(func(st device.Status) { l.SetPrivate(st.Video.Private || st.Audio.Private) })
	return l, nil
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
