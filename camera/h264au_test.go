package camera

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/lenscap/lenscap/camera/v4l2"
)

// splitNALs returns the clip's first IDR access unit's parameter sets and picture apart.
func firstKeyParts(t *testing.T) (sps, pps, idr []byte) {
	t.Helper()
	clip, err := parseH264Clip(testPatternClip)
	if err != nil {
		t.Fatal(err)
	}
	au := clip.aus[0].data
	start, hdr := nextStartCode(au, 0)
	for start >= 0 {
		next, nextHdr := nextStartCode(au, hdr)
		end := next
		if end < 0 {
			end = len(au)
		}
		switch au[hdr] & 0x1f {
		case nalSPS:
			sps = au[start:end]
		case nalPPS:
			pps = au[start:end]
		case nalIDR:
			idr = au[start:]
		}
		if idr != nil {
			break
		}
		start, hdr = next, nextHdr
	}
	if sps == nil || pps == nil || idr == nil {
		t.Fatal("the clip's first access unit lacks SPS, PPS or IDR")
	}
	return sps, pps, idr
}

func TestAssemblerPutsRememberedParameterSetsBeforeABareIDR(t *testing.T) {
	sps, pps, idr := firstKeyParts(t)
	var a auAssembler
	if _, _, ok, err := a.assemble(idr); ok || !errors.Is(err, errNoParameterSets) {
		t.Fatalf("IDR before any SPS: ok %v err %v, want errNoParameterSets", ok, err)
	}
	header := append(bytes.Clone(sps), pps...)
	if _, _, ok, err := a.assemble(header); ok || err != nil {
		t.Fatalf("header-only buffer: ok %v err %v, want nothing to send", ok, err)
	}
	au, key, ok, err := a.assemble(idr)
	if err != nil || !ok || !key {
		t.Fatalf("IDR: key %v ok %v err %v", key, ok, err)
	}
	if _, err := parseH264Clip(bytes.Clone(au)); err != nil {
		t.Errorf("assembled IDR access unit is not decodable from: %v", err)
	}
	if a.profileLevelID != "42c01f" {
		t.Errorf("profile-level-id %q, want 42c01f", a.profileLevelID)
	}
	// A complete IDR access unit and a P frame pass through untouched.
	clip, _ := parseH264Clip(testPatternClip)
	for _, i := range []int{0, 1} {
		got, key, ok, err := a.assemble(clip.aus[i].data)
		if err != nil || !ok || key != clip.aus[i].key || &got[0] != &clip.aus[i].data[0] {
			t.Errorf("access unit %d: key %v ok %v err %v, copied %v", i, key, ok, err, &got[0] != &clip.aus[i].data[0])
		}
	}
	allocs := testing.AllocsPerRun(100, func() { a.assemble(idr) })
	if allocs != 0 {
		t.Errorf("assemble allocates %v times per access unit", allocs)
	}
}

func TestSplitterReturnsTheClipsAccessUnitsFromAByteStream(t *testing.T) {
	clip, err := parseH264Clip(testPatternClip)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]io.Reader{
		"whole":      bytes.NewReader(testPatternClip),
		"half reads": iotest.HalfReader(bytes.NewReader(testPatternClip)),
		"7 bytes":    &chunkReader{b: testPatternClip, n: 7},
	} {
		t.Run(name, func(t *testing.T) {
			s := newAnnexBSplitter(r)
			for i, want := range clip.aus {
				got, err := s.next()
				if err != nil {
					t.Fatalf("access unit %d: %v", i, err)
				}
				if !bytes.Equal(got, want.data) {
					t.Fatalf("access unit %d: %d bytes, want %d", i, len(got), len(want.data))
				}
			}
			if _, err := s.next(); err != io.EOF {
				t.Errorf("after the last access unit: %v, want io.EOF", err)
			}
		})
	}
}

type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[k:]
	return k, nil
}

func TestCopyRawAndPackRawRoundTripThroughPaddedStrides(t *testing.T) {
	for _, pix := range []uint32{v4l2.PixFmtYUV420, v4l2.PixFmtNV12, v4l2.PixFmtYUYV} {
		f := RawFormat{PixelFormat: pix, Width: 38, Height: 22, FrameRate: 30}
		frame := make([]byte, f.frameSize())
		for i := range frame {
			frame[i] = byte(i * 7)
		}
		row := 38
		if pix == v4l2.PixFmtYUYV {
			row = 76
		}
		stride, planeH := row+26, 32
		dev := make([]byte, stride*planeH*2)
		n := copyRaw(dev, frame, f, stride, planeH)
		if n <= len(frame) {
			t.Errorf("%s: %d bytes used of a padded buffer, want more than %d", v4l2.FourccString(pix), n, len(frame))
		}
		back := packRaw(make([]byte, len(frame)), dev, f, stride, planeH)
		if !bytes.Equal(back, frame) {
			t.Errorf("%s: the frame did not survive padding and packing", v4l2.FourccString(pix))
		}
		if got := copyRaw(dev, frame, f, row, 22); got != len(frame) {
			t.Errorf("%s: unpadded copy used %d bytes, want %d", v4l2.FourccString(pix), got, len(frame))
		}
	}
}

func TestH264LevelFitsSizeAndRate(t *testing.T) {
	for _, tc := range []struct{ w, h, fps, idc int }{
		{640, 480, 30, 30}, {1280, 720, 30, 31}, {1280, 720, 60, 32}, {1920, 1080, 30, 40}, {320, 240, 30, 30},
	} {
		if idc, _ := h264Level(tc.w, tc.h, tc.fps); idc != tc.idc {
			t.Errorf("%dx%d@%d: level %d, want %d", tc.w, tc.h, tc.fps, idc, tc.idc)
		}
	}
}
