package board

import (
	"strings"
	"testing"

	"github.com/lenscap/lenscap/device"
)

func TestMediaStringsMakeDrivers(t *testing.T) {
	for _, tc := range []struct {
		camera, encoder, audio string
		video, mic             bool
	}{
		{"v4l2:/dev/video0", "v4l2-m2m:auto", "alsa:default", true, true},
		{"v4l2", "software", "alsa:hw:1,0", true, true},
		{"csi-rpicam", "v4l2-m2m:auto", "none", true, false},
		{"csi-rpicam", "software", "tone", true, true},
		{"sim", "auto", "tone", true, true},
		{"none", "auto", "alsa:2", false, true},
	} {
		v, a, media, err := buildMedia(Profiles["generic"], Options{Media: MediaConfig{Camera: tc.camera, Encoder: tc.encoder, Audio: tc.audio}})
		if err != nil {
			t.Errorf("%+v: %v", tc, err)
			continue
		}
		if (v != nil) != tc.video || (a != nil) != tc.mic {
			t.Errorf("%+v: video %v audio %v", tc, v, a)
		}
		if v != nil && v.Kind() != device.KindVideo || a != nil && a.Kind() != device.KindAudio {
			t.Errorf("%+v: kinds", tc)
		}
		if len(media) != 3 {
			t.Errorf("%+v: %d media reports", tc, len(media))
		}
	}
}

func TestBadMediaStringsAreRefusedClearly(t *testing.T) {
	for _, mc := range []MediaConfig{
		{Camera: "webcam"},
		{Encoder: "gpu"},
		{Audio: "pulse"},
		{Audio: "alsa:x,1"},
		{EncoderFormat: "VP8"},
	} {
		_, _, _, err := buildMedia(Profiles["generic"], Options{Media: mc})
		if err == nil || !strings.Contains(err.Error(), "want") {
			t.Errorf("%+v: %v, want an error saying what is accepted", mc, err)
		}
	}
}

func TestMissingHardwareIsReportedNotFatal(t *testing.T) {
	_, _, media, err := buildMedia(Profiles["generic"], Options{Media: MediaConfig{
		Camera: "v4l2:/dev/no-such-video", Encoder: "v4l2-m2m:/dev/no-such-encoder", Audio: "alsa:9,9"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range media {
		if m.Available || m.Note == "" {
			t.Errorf("%+v: want unavailable with a note", m)
		}
	}
}
