package devicetest

import (
	"encoding/binary"
	"time"

	"github.com/lenscap/lenscap/device"
)

// stampLen is a stamped payload's length: a header byte and the capture time.
const stampLen = 9

// stamped is a frame whose payload carries its capture time (Options.Stamp): for H.264 one NAL
// unit (an IDR slice, with SPS and PPS before it, for a keyframe; a non-IDR slice otherwise)
// whose 8 bytes after the NAL header are the Unix nanoseconds; for Opus a TOC byte then the
// same 8 bytes. Each fits one RTP packet, so a receiver reads the stamp from the packet.
func (d *Driver) stamped(key bool, at time.Time) []byte {
	var stamp [stampLen]byte
	binary.BigEndian.PutUint64(stamp[1:], uint64(at.UnixNano()))
	if d.kind == device.KindAudio {
		stamp[0] = 0xf8 // Opus TOC: CELT-only fullband 20 ms, one frame
		return stamp[:]
	}
	if !key {
		stamp[0] = 0x41 // non-IDR slice
		return append([]byte{0, 0, 0, 1}, stamp[:]...)
	}
	stamp[0] = 0x65                            // IDR slice
	sps := h264Keyframe[:len(h264Keyframe)-18] // SPS and PPS, each with its start code
	return append(append(append([]byte(nil), sps...), 0, 0, 0, 1), stamp[:]...)
}

// Stamped reads the capture time of a stamped frame from an RTP packet's payload: a single
// NAL unit packet of a slice, or an Opus packet. ok is false for anything else (SPS, PPS, an
// aggregation or fragmentation unit).
func Stamped(payload []byte) (at time.Time, ok bool) {
	if len(payload) != stampLen {
		return time.Time{}, false
	}
	switch payload[0] {
	case 0x41, 0x65, 0xf8:
		return time.Unix(0, int64(binary.BigEndian.Uint64(payload[1:]))), true
	}
	return time.Time{}, false
}
