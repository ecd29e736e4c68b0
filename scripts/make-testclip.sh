#!/bin/sh
# make-testclip.sh regenerates camera/testdata/testpattern.h264, the clip the simulated camera
# (camera.NewTestPattern) loops. It is an Annex-B H.264 elementary stream, as a hardware encoder
# would produce it for WebRTC:
#   - ffmpeg testsrc2 (a test pattern with a moving frame counter), 640x360, 30 fps, 4 s;
#   - libx264 constrained baseline, tune zerolatency, no B-frames;
#   - an IDR every 30 frames (closed GOP, no scene-cut keyframes), SPS/PPS before every IDR;
#   - one slice per frame (one encoder thread), no SEI or AUD NAL units, as the Pi's hardware
#     encoder writes it;
#   - ~400 kbit/s so the file stays small (< 300 KB).
# It prints the profile-level-id read back from the SPS it wrote. The driver reads the same
# value from the clip for its SDP; camera/h264clip_test.go records it in wantProfileLevelID
# (update that and the doc comment of testPatternClip if it changes).
#
# Usage: scripts/make-testclip.sh   (from anywhere; needs ffmpeg with libx264)
# Other clips, e.g. 720p for the memory benchmark (--sim-clip):
#   OUT=/tmp/720p.h264 SIZE=1280x720 BITRATE=2500k scripts/make-testclip.sh
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-"$root/camera/testdata/testpattern.h264"}
size=${SIZE:-640x360}
bitrate=${BITRATE:-400k}
mkdir -p "$(dirname "$out")"

ffmpeg=${FFMPEG:-ffmpeg}
command -v "$ffmpeg" >/dev/null 2>&1 || { echo "make-testclip: ffmpeg not found" >&2; exit 1; }

tmp="$out.tmp"
trap 'rm -f "$tmp"' EXIT

"$ffmpeg" -hide_banner -loglevel error -y \
	-f lavfi -i "testsrc2=size=$size:rate=30:duration=4" \
	-an -c:v libx264 -preset veryfast -profile:v baseline -level:v 3.1 -tune zerolatency \
	-pix_fmt yuv420p -bf 0 -g 30 -keyint_min 30 -sc_threshold 0 -threads 1 \
	-b:v "$bitrate" -maxrate "$bitrate" -bufsize "$bitrate" \
	-x264-params "repeat-headers=1:scenecut=0:open-gop=0" \
	-bsf:v "filter_units=remove_types=6|9" \
	-f h264 "$tmp"
mv "$tmp" "$out"
trap - EXIT

# The profile-level-id is the three bytes after the first SPS NAL header (type 7):
# profile_idc, constraint flags, level_idc.
plid=$(od -An -v -tx1 "$out" | tr -d ' \n' |
	sed -n 's/^\(\(..\)*\)\(00000001\|000001\)\(67\|27\|47\)\(......\).*/\5/p')
[ -n "$plid" ] || { echo "make-testclip: no SPS found in $out" >&2; exit 1; }

bytes=$(wc -c <"$out")
echo "wrote $out ($bytes bytes)"
echo "profile-level-id=$plid"
