package main

import (
	"strings"
	"testing"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
)

func TestOneSwitchForBothKindsIsRefused(t *testing.T) {
	two := map[device.Kind]device.Power{
		device.KindVideo: devicetest.NewPower(devicetest.NewDriver(device.KindVideo, devicetest.Options{})),
		device.KindAudio: devicetest.NewPower(devicetest.NewDriver(device.KindAudio, devicetest.Options{})),
	}
	err := sharedInterlock(Config{CameraPowerPin: "GPIO5", MicPowerPin: "GPIO5"}, two)
	if err == nil || !strings.Contains(err.Error(), "same line") {
		t.Errorf("one line for both: %v", err)
	}
	if err := sharedInterlock(Config{CameraPowerPin: "GPIO5", MicPowerPin: "GPIO6"}, two); err != nil {
		t.Errorf("two lines: %v", err)
	}
	if err := sharedInterlock(Config{CameraPowerPin: "GPIO5", MicPowerPin: "GPIO5"}, map[device.Kind]device.Power{device.KindVideo: two[device.KindVideo]}); err != nil {
		t.Errorf("one kind only: %v", err)
	}
}
