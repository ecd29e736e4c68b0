//go:build linux

package camera

import (
	"os"
	"testing"

	"github.com/lenscap/lenscap/camera/v4l2"
)

// BenchmarkHardwareEncoder720p30 is BenchmarkSoftwareEncoder720p30 through the
// memory-to-memory encoder named by LENSCAP_V4L2_ENCODER (and LENSCAP_V4L2_CODED).
func BenchmarkHardwareEncoder720p30(b *testing.B) {
	dev := os.Getenv("LENSCAP_V4L2_ENCODER")
	if dev == "" {
		b.Skip("LENSCAP_V4L2_ENCODER not set (a Pi: /dev/video11)")
	}
	if dev == "auto" {
		dev = ""
	}
	coded := v4l2.PixFmtH264
	if s := os.Getenv("LENSCAP_V4L2_CODED"); len(s) == 4 {
		coded = v4l2.Fourcc(s[0], s[1], s[2], s[3])
	}
	benchEncoder(b, EncoderOptions{Kind: EncoderHardware, Device: dev, CodedFormat: coded})
}
