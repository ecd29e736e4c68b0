package board

import (
	"errors"
	"testing"

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
