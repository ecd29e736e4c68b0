package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/board"
	"github.com/lenscap/lenscap/board/boardtest"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/rtc"
	"github.com/lenscap/lenscap/rtc/rtctest"
	conngpio "periph.io/x/conn/v3/gpio"
)

// startDaemonWithHardware starts the daemon on the simulated board and returns its board and
// rtc server too.
func startDaemonWithHardware(t *testing.T, extra ...string) (*testDaemon, *board.Board, *rtc.Server) {
	t.Helper()
	d := startDaemon(t, t.TempDir(), extra...)
	return d, d.board, d.srv
}

// bouncyPress presses the simulated button like a real contact: bounces, held, bounces.
func bouncyPress(p chan<- conngpio.Level) {
	for _, l := range []conngpio.Level{conngpio.Low, conngpio.High, conngpio.Low, conngpio.High, conngpio.Low} {
		p <- l
		time.Sleep(time.Millisecond)
	}
	time.Sleep(80 * time.Millisecond)
	for _, l := range []conngpio.Level{conngpio.High, conngpio.Low, conngpio.High} {
		p <- l
		time.Sleep(time.Millisecond)
	}
}

func TestAPinEdgeCutsAViewersMediaThroughTheDebouncer(t *testing.T) {
	d, b, srv := startDaemonWithHardware(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := rtctest.Dial(ctx, "ws"+strings.TrimPrefix(d.url, "http")+"/ws", rtctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, k := range []string{"video", "audio"} {
		if err := v.WaitFor(ctx, k, rtctest.Receiving(k, time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	privacyLED := b.PrivacyLED.(interface{ Read() conngpio.Level })
	liveLED := b.LiveLED.(interface{ Read() conngpio.Level })
	waitLevel := func(what string, pin interface{ Read() conngpio.Level }, l conngpio.Level) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); pin.Read() != l; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s LED is %s, want %s", what, pin.Read(), l)
			}
		}
	}
	waitLevel("live", liveLED, conngpio.High)
	if privacyLED.Read() != conngpio.Low {
		t.Error("privacy LED lit while nothing is private")
	}

	n := v.OfferCount()
	edge := time.Now()
	bouncyPress(b.SimButton.EdgesChan)
	if err := v.WaitFor(ctx, "renegotiation", rtctest.NothingSent(n)); err != nil {
		t.Fatal(err)
	}
	if got := v.OfferCount() - n; got != 1 {
		t.Errorf("%d offers after one bouncing press, want 1", got)
	}
	st := d.state(t)
	if !st.Video.Private || st.Video.By != "button" || !st.Audio.Private || st.Video.Live || st.Audio.Live {
		t.Fatalf("after the press: %+v", st)
	}
	var full struct{ Video, Audio device.KindStatus }
	_, body := d.do(t, "GET", "/api/state", "", nil)
	if err := json.Unmarshal(body, &full); err != nil {
		t.Fatal(err)
	}
	cut := full.Video.Since
	if cut.Sub(edge) < 30*time.Millisecond {
		t.Errorf("cut %s after the first edge: sooner than the debounce time", cut.Sub(edge))
	}
	time.Sleep(300 * time.Millisecond) // anything in flight has arrived
	for _, p := range v.Packets() {
		if ct := srv.CaptureTime(device.Kind(p.Kind), p.Timestamp); !ct.Before(cut) {
			t.Fatalf("%s packet of a frame captured %s after the cut", p.Kind, ct.Sub(cut))
		}
	}
	waitLevel("privacy", privacyLED, conngpio.High)
	waitLevel("live", liveLED, conngpio.Low)

	// A second press lifts it, through the same path.
	lift := time.Now()
	bouncyPress(b.SimButton.EdgesChan)
	if err := v.WaitFor(ctx, "video after the lift", rtctest.Receiving("video", lift)); err != nil {
		t.Fatal(err)
	}
	if st := d.state(t); st.Video.Private || st.Audio.Private {
		t.Fatalf("after the second press: %+v", st)
	}
	waitLevel("privacy", privacyLED, conngpio.Low)
}

func TestHoldGestureTogglesTheMicrophoneOnly(t *testing.T) {
	d, b, _ := startDaemonWithHardware(t, "--button-hold", "200ms")
	b.SimButton.EdgesChan <- conngpio.Low
	time.Sleep(400 * time.Millisecond)
	b.SimButton.EdgesChan <- conngpio.High
	deadline := time.Now().Add(5 * time.Second)
	for st := d.state(t); !st.Audio.Private; st = d.state(t) {
		if time.Now().After(deadline) {
			t.Fatalf("audio not cut by the hold: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := d.state(t); st.Video.Private || st.Audio.By != "button" {
		t.Fatalf("after the hold: %+v", st)
	}
}

func TestLatchingSwitchOnPrivateAtBootIsAppliedBeforeAnythingOpens(t *testing.T) {
	pins := boardtest.NewPins("chip", 32)
	pins.Line(17).L = conngpio.Low // on "private" before the daemon starts
	b := &board.Board{Name: "test", Button: pins.Line(17)}
	bootState := func(mode string) device.Status {
		t.Helper()
		cfg := mustLoad(t, testPlatform(), []string{"--button-mode", mode, "--button-pull", "none", "--state-dir", t.TempDir()}, env(nil))
		log := slog.New(slog.DiscardHandler)
		btn, err := newButton(cfg, b, log)
		if err != nil {
			t.Fatal(err)
		}
		dev, err := newDevice(cfg, b, btn, newCutMetrics(), nil, log)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- dev.Run(ctx) }()
		<-dev.Ready()
		st := dev.Status()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return st
	}
	// (device's tests show that a switch read on private at boot keeps every driver closed.)
	if st := bootState("latching"); !st.Video.Private || !st.Audio.Private || st.Video.By != device.ByButton {
		t.Fatalf("a switch on private at boot: %+v, want both private by the button", st)
	}
	if st := bootState("momentary"); st.Video.Private || st.Audio.Private {
		t.Errorf("a momentary button changed the state at boot: %+v", st)
	}
}

func TestLatchingSwitchFollowsItsPosition(t *testing.T) {
	d, b, _ := startDaemonWithHardware(t, "--button-mode", "latching")
	wait := func(private bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for st := d.state(t); st.Video.Private != private || st.Audio.Private != private; st = d.state(t) {
			if time.Now().After(deadline) {
				t.Fatalf("state %+v, want private=%t", st, private)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait(false) // the simulated switch starts on "public"
	b.SimButton.EdgesChan <- conngpio.Low
	wait(true)
	if st := d.state(t); st.Video.By != "button" {
		t.Fatalf("switched private by %q", st.Video.By)
	}
	b.SimButton.EdgesChan <- conngpio.High
	wait(false)
}

func TestDoctorOnTheSimulatedBoardFindsNothingMissing(t *testing.T) {
	var out bytes.Buffer
	if err := runDoctor([]string{"--board", "sim", "--state-dir", t.TempDir()}, env(nil), &out); err != nil {
		t.Fatalf("doctor: %v\n%s", err, &out)
	}
	for _, want := range []string{"board", "sim", "button", "SIM_BUTTON", "camera", "test pattern", "nothing missing"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, &out)
		}
	}
}

func TestDoctorOnARealBoardSaysWhatIsMissing(t *testing.T) {
	cfg := mustLoad(t, testPlatform(), []string{"--board", "rpi4", "--button-pin", "GPIO40", "--state-dir", t.TempDir()}, env(nil))
	opts := boardOptions(cfg)
	opts.Pins = boardtest.NewPins("pinctrl-bcm2711", 28)
	var out bytes.Buffer
	err := doctor(cfg, opts, &out)
	if !errors.Is(err, errMissing) {
		t.Fatalf("doctor: %v, want errMissing", err)
	}
	for _, want := range []string{"rpi4", "GPIO40", "MISSING", "GPIO27", "csi-rpicam", "v4l2-m2m:auto", "alsa:default", "rpicam-vid not found", "no such ALSA capture device", "button_pin"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, &out)
		}
	}
}

func TestDoctorWithoutADeviceTreeSaysSo(t *testing.T) {
	cfg := mustLoad(t, testPlatform(), []string{"--board", "auto", "--state-dir", t.TempDir()}, env(nil))
	opts := boardOptions(cfg)
	opts.ModelPath = t.TempDir() + "/model"
	var out bytes.Buffer
	if err := doctor(cfg, opts, &out); !errors.Is(err, errMissing) || !strings.Contains(out.String(), "cannot detect the board") {
		t.Fatalf("doctor: %v\n%s", err, &out)
	}
}

func TestARealBoardWithoutCameraDriversDoesNotStart(t *testing.T) {
	// This machine has no device tree (or no GPIO): auto fails clearly either way.
	err := run(context.Background(), []string{"--board", "auto", "--listen", "127.0.0.1:0", "--state-dir", t.TempDir()}, env(nil), nil, &bytes.Buffer{})
	if err == nil {
		t.Fatal("started on --board auto without a board")
	}
	if !strings.Contains(err.Error(), "board") {
		t.Errorf("err %v does not say what is wrong with the board", err)
	}
}
