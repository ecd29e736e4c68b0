package board_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lenscap/lenscap/board"
	"github.com/lenscap/lenscap/board/boardtest"
)

func TestDetectFromDeviceTreeModels(t *testing.T) {
	for _, tc := range []struct {
		file, profile, model, chip, encoder string
	}{
		{"rpi4-model-b", "rpi4", "Raspberry Pi 4 Model B Rev 1.4", "pinctrl-bcm2711", "v4l2-m2m:auto"},
		{"rpi400", "rpi4", "Raspberry Pi 400 Rev 1.0", "pinctrl-bcm2711", "v4l2-m2m:auto"},
		{"rpi5-model-b", "rpi5", "Raspberry Pi 5 Model B Rev 1.0", "pinctrl-rp1", "software"},
		{"rpi-zero-2-w", "rpizero2w", "Raspberry Pi Zero 2 W Rev 1.0", "pinctrl-bcm2835", "v4l2-m2m:auto"},
		{"cm4", "cm4", "Raspberry Pi Compute Module 4 Rev 1.1", "pinctrl-bcm2711", "v4l2-m2m:auto"},
		{"unknown-rock5b", "generic", "Radxa ROCK 5B", "", "software"},
		{"rpi3-unsupported", "generic", "Raspberry Pi 3 Model B Plus Rev 1.3", "", "software"},
	} {
		p, model, err := board.Detect(filepath.Join("testdata", "model", tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if p.Name != tc.profile || model != tc.model || p.Chip != tc.chip || p.Encoder != tc.encoder {
			t.Errorf("%s: profile %+v, model %q; want %s on %q with encoder %s", tc.file, p, model, tc.profile, tc.chip, tc.encoder)
		}
		if tc.profile != "generic" && (p.Button != "GPIO17" || p.PrivacyLED != "GPIO27" || p.LiveLED != "GPIO22" || p.Camera != "csi-rpicam" || p.Audio != "alsa:default") {
			t.Errorf("%s: pins or media %+v", tc.file, p)
		}
	}
}

func TestNoDeviceTreeIsNotDetected(t *testing.T) {
	_, _, err := board.Detect(filepath.Join(t.TempDir(), "model"))
	if !errors.Is(err, board.ErrNotDetected) || !strings.Contains(err.Error(), "--board sim") {
		t.Fatalf("err %v, want ErrNotDetected with what to do", err)
	}
	if _, err := board.Open("auto", board.Options{ModelPath: filepath.Join(t.TempDir(), "model")}); !errors.Is(err, board.ErrNotDetected) {
		t.Fatalf("Open auto: %v", err)
	}
}

func TestRealBoardFindsItsPinsAndMakesItsMediaDrivers(t *testing.T) {
	pins := boardtest.NewPins("pinctrl-rp1", 28)
	b, err := board.Open("auto", board.Options{ModelPath: "testdata/model/rpi5-model-b", Pins: pins})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name != "rpi5" || b.Simulated || b.Model != "Raspberry Pi 5 Model B Rev 1.0" {
		t.Errorf("board %+v", b)
	}
	if b.Button != pins.Line(17) || b.PrivacyLED != pins.Line(27) || b.LiveLED != pins.Line(22) {
		t.Errorf("pins %v %v %v", b.Button, b.PrivacyLED, b.LiveLED)
	}
	// The Pi 5's camera goes through rpicam-vid and lenscap's software encoder; on this
	// machine neither rpicam-vid nor a sound card is there, which Missing says.
	if len(b.Drivers()) != 2 || len(b.Missing) != 2 || !strings.Contains(b.Missing[0], "camera csi-rpicam: rpicam-vid not found") {
		t.Errorf("drivers %d, missing %q", len(b.Drivers()), b.Missing)
	}
	// Pins by offset, and LEDs not wired.
	b, err = board.Open("rpi5", board.Options{Pins: pins, GPIO: board.GPIOConfig{Button: "5", PrivacyLED: "none", LiveLED: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Button != pins.Line(5) || b.PrivacyLED != nil || b.LiveLED != nil {
		t.Errorf("configured pins %v %v %v", b.Button, b.PrivacyLED, b.LiveLED)
	}
}

func TestGenericBoardTakesChipAndLinesFromConfig(t *testing.T) {
	pins := boardtest.NewPins("gpiochip1", 8)
	_, err := board.Open("auto", board.Options{ModelPath: "testdata/model/unknown-rock5b", Pins: pins})
	if err == nil || !strings.Contains(err.Error(), "button_pin") {
		t.Fatalf("generic board without config: %v, want a hint at button_pin", err)
	}
	b, err := board.Open("generic", board.Options{Pins: pins,
		GPIO: board.GPIOConfig{Chip: "gpiochip1", Button: "GPIO3", PrivacyLED: "GPIO4", LiveLED: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "generic" || b.Button != pins.Line(3) || b.PrivacyLED != pins.Line(4) || b.LiveLED != nil {
		t.Errorf("board %+v", b)
	}
}

func TestStartUpErrorsSayWhatIsMissing(t *testing.T) {
	pins := boardtest.NewPins("pinctrl-bcm2711", 28)
	_, err := board.Open("rpi4", board.Options{Pins: pins, GPIO: board.GPIOConfig{Button: "GPIO99"}})
	if !errors.Is(err, board.ErrNoPin) || !strings.Contains(err.Error(), "GPIO99") || !strings.Contains(err.Error(), "button_pin") {
		t.Errorf("missing pin: %v", err)
	}
	_, err = board.Open("rpi4", board.Options{Pins: pins, GPIO: board.GPIOConfig{Chip: "gpiochip9"}})
	if !errors.Is(err, board.ErrNoChip) || !strings.Contains(err.Error(), "gpiochip9") {
		t.Errorf("missing chip: %v", err)
	}
	r := board.Inspect("rpi4", board.Options{Pins: pins, GPIO: board.GPIOConfig{Button: "GPIO99", LiveLED: "none"}})
	if len(r.Errs) != 1 || len(r.Pins) != 3 || r.Pins[0].Err == nil || r.Pins[1].Err != nil || r.Pins[2].Line != "none" {
		t.Errorf("report %+v", r)
	}
	// On this machine: no rpicam-vid, no sound card; the encoder is found when the camera
	// opens, so it is not missing yet.
	if m := r.Missing(); len(m) != 3 {
		t.Errorf("missing %q, want the button, the camera and the microphone", m)
	}
}

func TestCharDevWithoutChipsSaysSo(t *testing.T) {
	_, err := board.CharDev{Dev: t.TempDir()}.Pin("gpiochip0", "GPIO17")
	if !errors.Is(err, board.ErrNoGPIO) || !strings.Contains(err.Error(), "--board sim") {
		t.Fatalf("err %v, want ErrNoGPIO", err)
	}
}

func TestCharDevWithoutPermissionSaysWhatToDo(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may open anything")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gpiochip0"), nil, 0); err != nil {
		t.Fatal(err)
	}
	_, err := board.CharDev{Dev: dir}.Pin("gpiochip0", "GPIO17")
	if !errors.Is(err, board.ErrPermission) || !strings.Contains(err.Error(), "group") {
		t.Fatalf("err %v, want ErrPermission naming a group", err)
	}
}

func TestSimBoardHasAFakeButtonAndLEDs(t *testing.T) {
	b, err := board.Open("sim", board.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b.SimButton == nil || b.Button != b.SimButton || b.PrivacyLED == nil || b.LiveLED == nil || b.SimButton.EdgesChan == nil {
		t.Fatalf("sim board %+v", b)
	}
	r := board.Inspect("sim", board.Options{})
	if r.Err() != nil || len(r.Missing()) != 0 {
		t.Errorf("sim report %+v", r)
	}
}

func TestSimBoardCanUseRealLinesFromAPinDriver(t *testing.T) {
	// As the emulated board does with gpio-sim's chips: the simulated media, real lines.
	pins := boardtest.NewPins("gpio-sim.0-node0", 8)
	opts := board.Options{Pins: pins, GPIO: board.GPIOConfig{Chip: "gpio-sim.0-node0", Button: "3", LiveLED: "GPIO5"}}
	b, err := board.Open("sim", opts)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Simulated || len(b.Drivers()) != 2 || b.SimButton != nil || b.Button != pins.Line(3) || b.PrivacyLED != nil || b.LiveLED != pins.Line(5) {
		t.Fatalf("board %+v", b)
	}
	if r := board.Inspect("sim", opts); r.Err() != nil || len(r.Pins) != 3 || r.Pins[1].Line != "none" {
		t.Errorf("report %+v", r)
	}
	opts.GPIO.Button = ""
	if _, err := board.Open("sim", opts); err == nil || !strings.Contains(err.Error(), "button_pin") {
		t.Errorf("no button line: %v", err)
	}
}
