package camera

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4/pkg/media/h264reader"
)

// wantProfileLevelID is what scripts/make-testclip.sh reports for the embedded clip: libx264's
// constrained baseline sets constraint_set0 and constraint_set1 (0xc0), not set2, at level 3.1.
const wantProfileLevelID = "42c01f"

// nalTypes lists the NAL unit types of an Annex-B buffer, in order.
func nalTypes(t *testing.T, annexB []byte) []byte {
	t.Helper()
	var types []byte
	for start, hdr := nextStartCode(annexB, 0); start >= 0; start, hdr = nextStartCode(annexB, hdr) {
		types = append(types, annexB[hdr]&0x1f)
	}
	return types
}

func TestEmbeddedClipSplitsIntoValidAccessUnits(t *testing.T) {
	c, err := parseH264Clip(testPatternClip)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.aus) != 120 {
		t.Fatalf("clip has %d access units, want 120 (4 s at 30 fps)", len(c.aus))
	}
	var joined []byte
	for i, au := range c.aus {
		joined = append(joined, au.data...)
		if cap(au.data) != len(au.data) {
			t.Errorf("AU %d: capacity %d beyond its length %d: an append would overwrite the next AU", i, cap(au.data), len(au.data))
		}
		if !bytes.HasPrefix(au.data, []byte{0, 0, 1}) && !bytes.HasPrefix(au.data, []byte{0, 0, 0, 1}) {
			t.Fatalf("AU %d does not start with a start code", i)
		}
		types := nalTypes(t, au.data)
		var sps, pps, slices, idr int
		for _, typ := range types {
			switch typ {
			case nalSPS:
				sps++
				if slices > 0 {
					t.Errorf("AU %d: SPS after a slice: %v", i, types)
				}
			case nalPPS:
				pps++
				if slices > 0 {
					t.Errorf("AU %d: PPS after a slice: %v", i, types)
				}
			case nalIDR:
				idr++
				slices++
			case nalSlice:
				slices++
			case nalSEI:
			default:
				t.Errorf("AU %d: unexpected NAL type %d in %v", i, typ, types)
			}
		}
		if slices == 0 {
			t.Errorf("AU %d has no slice: %v", i, types)
		}
		if idr > 0 && idr != slices {
			t.Errorf("AU %d mixes IDR and non-IDR slices: %v", i, types)
		}
		wantKey := i%30 == 0
		if au.key != wantKey || (idr > 0) != wantKey {
			t.Errorf("AU %d: key=%v, IDR slices %d; want an IDR exactly every 30 frames", i, au.key, idr)
		}
		if au.key && (sps != 1 || pps != 1) {
			t.Errorf("AU %d is an IDR with %d SPS and %d PPS, want 1 and 1 before it: %v", i, sps, pps, types)
		}
	}
	if !bytes.Equal(joined, testPatternClip) {
		t.Error("access units joined are not the clip: bytes were lost or reordered")
	}
	if c.profileLevelID != wantProfileLevelID {
		t.Errorf("profile-level-id %q, want %q (rerun scripts/make-testclip.sh and update)", c.profileLevelID, wantProfileLevelID)
	}
}

// TestEmbeddedClipAgreesWithPionReader counts the clip's NAL units with pion's Annex-B
// reader, an independent parser, and compares with the access units.
func TestEmbeddedClipAgreesWithPionReader(t *testing.T) {
	c, err := parseH264Clip(testPatternClip)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h264reader.NewReaderWithOptions(bytes.NewReader(testPatternClip), h264reader.WithIncludeSEI(true))
	if err != nil {
		t.Fatal(err)
	}
	count := map[h264reader.NalUnitType]int{}
	pictures := 0
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) || (err == nil && nal == nil) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		count[nal.UnitType]++
		if (nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr) &&
			len(nal.Data) > 1 && nal.Data[1]&0x80 != 0 { // first_mb_in_slice == 0
			pictures++
		}
	}
	keys := 0
	for _, au := range c.aus {
		if au.key {
			keys++
		}
	}
	if pictures != len(c.aus) {
		t.Errorf("pion sees %d pictures, the parser %d access units", pictures, len(c.aus))
	}
	if count[h264reader.NalUnitTypeSPS] != keys || count[h264reader.NalUnitTypePPS] != keys {
		t.Errorf("pion counts %d SPS and %d PPS for %d keyframes: want one each per keyframe",
			count[h264reader.NalUnitTypeSPS], count[h264reader.NalUnitTypePPS], keys)
	}
}

func TestParseH264ClipRejectsInvalidClips(t *testing.T) {
	sps := []byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xda}
	pps := []byte{0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80}
	idr := []byte{0, 0, 1, 0x65, 0x88, 0x84}
	p := []byte{0, 0, 1, 0x41, 0x9a, 0x21}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name, clip, want string
	}{
		{"empty", "", "no NAL unit"},
		{"not annex-b", "\x67\x42\xc0\x1f", "no NAL unit"},
		{"starts with P", string(cat(p, sps, pps, idr)), "does not start with an IDR"},
		{"IDR without SPS", string(cat(pps, idr, p)), "no SPS and PPS"},
		{"second IDR without PPS", string(cat(sps, pps, idr, p, sps, idr)), "IDR access unit 2"},
		{"trailing parameter sets", string(cat(sps, pps, idr, sps)), "without a picture"},
		{"forbidden bit", string(cat(sps, pps, []byte{0, 0, 1, 0xe5, 0x88})), "forbidden_zero_bit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseH264Clip([]byte(tc.clip))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parse error %v, want one saying %q", err, tc.want)
			}
		})
	}
	c, err := parseH264Clip(cat(sps, pps, idr, p, p, sps, pps, idr, p))
	if err != nil {
		t.Fatalf("a valid clip: %v", err)
	}
	if len(c.aus) != 5 || !c.aus[0].key || c.aus[1].key || !c.aus[3].key || c.profileLevelID != "42c01f" {
		t.Errorf("valid clip parsed as %d AUs, keys %v/%v, profile-level-id %q", len(c.aus), c.aus[0].key, c.aus[3].key, c.profileLevelID)
	}
}

// TestFFprobeDecodesEmbeddedClip decodes every frame of the clip with ffmpeg's decoder.
func TestFFprobeDecodesEmbeddedClip(t *testing.T) {
	ffprobe := lookFFmpegTool(t, "ffprobe")
	cmd := exec.Command(ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=profile,width,height,r_frame_rate,has_b_frames,nb_read_frames",
		"-of", "default=noprint_wrappers=1", "-f", "h264", "-i", "pipe:0")
	cmd.Stdin = bytes.NewReader(testPatternClip)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"profile=Constrained Baseline", "width=640", "height=360",
		"r_frame_rate=30/1", "has_b_frames=0", "nb_read_frames=120"} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("ffprobe says\n%s\nwant %s", out, want)
		}
	}
}

// lookFFmpegTool returns the path of an ffmpeg tool, skipping the test when ffmpeg is not
// installed.
func lookFFmpegTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed: %v", name, err)
	}
	return path
}
