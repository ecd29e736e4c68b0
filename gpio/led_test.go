package gpio

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

func TestLEDActiveLevels(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		p := &gpiotest.Pin{N: "GPIO27", L: gpio.Level(!activeLow)}
		led, err := NewLED(p, activeLow)
		if err != nil {
			t.Fatal(err)
		}
		if p.Read() != gpio.Level(activeLow) {
			t.Errorf("activeLow=%t: a new LED is not off: %s", activeLow, p.Read())
		}
		_ = led.Set(true)
		if p.Read() != gpio.Level(!activeLow) || !led.On() {
			t.Errorf("activeLow=%t: lit LED at %s", activeLow, p.Read())
		}
	}
}

func TestLightsFollowTheState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		privPin, livePin := &gpiotest.Pin{N: "GPIO27"}, &gpiotest.Pin{N: "GPIO22"}
		priv, _ := NewLED(privPin, false)
		live, _ := NewLED(livePin, true) // active low: lit at Low
		var sending atomic.Bool
		l := NewLights(LightsConfig{Privacy: priv, Live: live, Sending: sending.Load, Poll: 100 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()

		l.SetPrivate(true)
		synctest.Wait()
		if privPin.Read() != gpio.High {
			t.Error("privacy LED off while private")
		}
		l.SetPrivate(false)
		synctest.Wait()
		if privPin.Read() != gpio.Low {
			t.Error("privacy LED lit while nothing is private")
		}
		if livePin.Read() != gpio.High {
			t.Error("live LED lit before anything is sent")
		}
		sending.Store(true)
		time.Sleep(150 * time.Millisecond)
		if livePin.Read() != gpio.Low {
			t.Error("live LED off while sending")
		}
		sending.Store(false)
		time.Sleep(150 * time.Millisecond)
		if livePin.Read() != gpio.High {
			t.Error("live LED lit after sending stopped")
		}
		sending.Store(true)
		l.SetPrivate(true)
		time.Sleep(150 * time.Millisecond)
		cancel()
		<-done
		if livePin.Read() != gpio.High || privPin.Read() != gpio.High {
			t.Errorf("after Run: live %s (want off), privacy %s (want lit)", livePin.Read(), privPin.Read())
		}
	})
}

func TestThePrivacyLEDBlinksWhileACutIsNotConfirmedInHardware(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		privPin := &gpiotest.Pin{N: "GPIO27"}
		priv, _ := NewLED(privPin, false)
		l := NewLights(LightsConfig{Privacy: priv})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		l.SetPrivate(true)
		l.SetWarning(true)
		synctest.Wait()
		var levels []gpio.Level
		for range 8 { // one sample in each half-period, off its edges
			time.Sleep(blinkEvery)
			synctest.Wait()
			levels = append(levels, privPin.Read())
		}
		for i := 1; i < len(levels); i++ {
			if levels[i] == levels[i-1] {
				t.Fatalf("levels %v: want the LED toggling every %s", levels, blinkEvery)
			}
		}
		l.SetWarning(false) // confirmed after all: steady "private"
		time.Sleep(time.Second)
		if privPin.Read() != gpio.High {
			t.Error("privacy LED not steady on once the warning cleared")
		}
		cancel()
		<-done
	})
}
