package board

import (
	"errors"
	"strings"
	"testing"

	"github.com/lenscap/lenscap/camera"
	"github.com/lenscap/lenscap/device"
)

func TestSimBoardHasACameraAndAMicrophone(t *testing.T) {
	for _, codec := range []string{"", "opus", "pcmu", "PCMU"} {
		b, err := Open("sim", Options{AudioCodec: codec})
		if err != nil {
			t.Fatalf("%q: %v", codec, err)
		}
		if !b.Simulated || b.Name != "sim" || len(b.Drivers()) != 2 {
			t.Fatalf("%q: %+v", codec, b)
		}
		if b.Video.Kind() != device.KindVideo || b.Audio.Kind() != device.KindAudio {
			t.Errorf("%q: kinds %s %s", codec, b.Video.Kind(), b.Audio.Kind())
		}
		want := "audio/opus"
		if codec == "pcmu" || codec == "PCMU" {
			want = "audio/PCMU"
		}
		if got := b.Audio.Codec().MimeType; got != want {
			t.Errorf("%q: audio codec %s, want %s", codec, got, want)
		}
	}
}

func TestUnknownBoardsAndCodecsAreRefused(t *testing.T) {
	if _, err := Open("rpi9", Options{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("rpi9: %v, want ErrUnsupported", err)
	}
	if _, err := Open("sim", Options{AudioCodec: "mp3"}); err == nil {
		t.Error("sim with mp3 audio: no error")
	}
}

func TestSimCameraLoopsAGivenClip(t *testing.T) {
	b, err := Open("sim", Options{SimClip: "../camera/testdata/testpattern.h264"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Video.Codec().MimeType != "video/H264" {
		t.Errorf("codec %+v", b.Video.Codec())
	}
	if _, err := Open("sim", Options{SimClip: "testdata/no-such-clip.h264"}); err == nil {
		t.Error("a missing clip: no error")
	}
}

func TestSimBoardMakesNoDriverOfAKindConfiguredNone(t *testing.T) {
	for _, tc := range []struct {
		camera, audio string
		video, mic    bool
	}{
		{"", "none", true, false},
		{"none", "", false, true},
		{"none", "none", false, false},
		{"sim", "tone", true, true},
	} {
		b, err := Open("sim", Options{Media: MediaConfig{Camera: tc.camera, Audio: tc.audio}})
		if err != nil {
			t.Fatalf("camera %q audio %q: %v", tc.camera, tc.audio, err)
		}
		if (b.Video != nil) != tc.video || (b.Audio != nil) != tc.mic {
			t.Errorf("camera %q audio %q: video %v, audio %v; want a driver: %v, %v", tc.camera, tc.audio, b.Video, b.Audio, tc.video, tc.mic)
		}
		want := 0
		for _, has := range []bool{tc.video, tc.mic} {
			if has {
				want++
			}
		}
		if n := len(b.Drivers()); n != want {
			t.Errorf("camera %q audio %q: %d drivers, want %d", tc.camera, tc.audio, n, want)
		}
		// A kind configured none is off, not missing; both off is nothing to stream.
		if wantMissing := !tc.video && !tc.mic; (len(b.Missing) != 0) != wantMissing {
			t.Errorf("camera %q audio %q: Missing says %q", tc.camera, tc.audio, b.Missing)
		}
	}
}

func TestSimBoardTakesTheConfiguredMedia(t *testing.T) {
	b, err := Open("sim", Options{AudioCodec: "pcmu", Media: MediaConfig{Camera: "v4l2:/dev/no-such-video"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Video.(*camera.V4L2Camera); !ok {
		t.Errorf("camera v4l2 on the sim board: driver %T", b.Video)
	}
	if b.Audio == nil || b.Audio.Codec().MimeType != "audio/PCMU" {
		t.Errorf("audio %v", b.Audio)
	}
	if len(b.Missing) != 1 || !strings.Contains(b.Missing[0], "/dev/no-such-video") {
		t.Errorf("Missing %q, want the absent camera", b.Missing)
	}
	if _, err := Open("sim", Options{Media: MediaConfig{Audio: "pulse"}}); err == nil || !strings.Contains(err.Error(), "want") {
		t.Errorf("audio pulse on the sim board: %v", err)
	}
	r := Inspect("sim", Options{Media: MediaConfig{Audio: "none"}})
	if len(r.Media) != 3 || r.Media[2].Device != "none" || r.Media[2].Available {
		t.Errorf("report of audio none: %+v", r.Media)
	}
}
