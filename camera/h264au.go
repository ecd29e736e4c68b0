package camera

import (
	"encoding/hex"
	"errors"
	"io"
)

// auAssembler turns the coded buffers of an H.264 encoder or camera (V4L2 buffers, each one
// access unit or a header-only buffer of SPS and PPS) into access units that satisfy
// device.Frame: Annex-B, with SPS and PPS before every IDR. It remembers the latest SPS and
// PPS and puts them before an IDR that lacks them (an encoder without REPEAT_SEQ_HEADER,
// or a UVC camera that sends them once). Its buffers are reused: after the first frames it
// allocates nothing.
type auAssembler struct {
	sps, pps       []byte // the latest parameter sets, NAL only (no start code)
	profileLevelID string // of the first SPS seen
	out            []byte // an access unit with parameter sets prepended; reused
}

// errNoParameterSets is an IDR before any SPS/PPS: a decoder cannot start there.
var errNoParameterSets = errors.New("IDR picture without SPS and PPS (the encoder sent none yet)")

// assemble scans one coded buffer. It returns the access unit to send (buf itself, or the
// reused out buffer with SPS and PPS prepended), whether it is a keyframe, and ok=false
// for a buffer with no picture (parameter sets only: they are remembered, nothing is sent).
// The result is valid until the next call and until buf is reused.
func (a *auAssembler) assemble(buf []byte) (au []byte, key, ok bool, err error) {
	var hasSPS, hasPPS, hasVCL, idr bool
	start, hdr := nextStartCode(buf, 0)
	for start >= 0 {
		next, nextHdr := nextStartCode(buf, hdr)
		end := next
		if end < 0 {
			end = len(buf)
		}
		if hdr < end {
			switch buf[hdr] & 0x1f {
			case nalSPS:
				hasSPS = true
				a.sps = append(a.sps[:0], trimTrailingZeros(buf[hdr:end])...)
				if a.profileLevelID == "" && end-hdr >= 4 {
					a.profileLevelID = hex.EncodeToString(buf[hdr+1 : hdr+4])
				}
			case nalPPS:
				hasPPS = true
				a.pps = append(a.pps[:0], trimTrailingZeros(buf[hdr:end])...)
			case nalIDR:
				idr, hasVCL = true, true
			case nalSlice:
				hasVCL = true
			}
		}
		start, hdr = next, nextHdr
	}
	if !hasVCL {
		return nil, false, false, nil
	}
	if !idr || (hasSPS && hasPPS) {
		return buf, idr, true, nil
	}
	if a.sps == nil || a.pps == nil {
		return nil, false, false, errNoParameterSets
	}
	a.out = append(a.out[:0], 0, 0, 0, 1)
	a.out = append(a.out, a.sps...)
	a.out = append(a.out, 0, 0, 0, 1)
	a.out = append(a.out, a.pps...)
	a.out = append(a.out, buf...)
	return a.out, true, true, nil
}

// trimTrailingZeros drops the zero bytes that may follow a NAL before the next start code
// (trailing_zero_8bits).
func trimTrailingZeros(nal []byte) []byte {
	for len(nal) > 1 && nal[len(nal)-1] == 0 {
		nal = nal[:len(nal)-1]
	}
	return nal
}

// annexBSplitter reads an Annex-B byte stream (a pipe from rpicam-vid) and returns it one
// access unit at a time, by the rules of parseH264Clip: an access unit ends where the next
// one's first NAL (AUD, SPS, PPS, SEI, or a slice with first_mb_in_slice 0 after a picture)
// begins. So an access unit is returned when the next one starts arriving: one frame of
// latency on a byte stream that carries no framing. Its buffer is reused.
type annexBSplitter struct {
	r    io.Reader
	buf  []byte // unread stream bytes: [0:n) hold data; an AU in progress starts at 0
	n    int
	scan int  // offset from which to look for the next start code
	vcl  bool // the access unit at buf[0:] has a slice already
	out  []byte
	eof  bool
}

func newAnnexBSplitter(r io.Reader) *annexBSplitter {
	return &annexBSplitter{r: r, buf: make([]byte, 1<<20)}
}

// next returns the next complete access unit, valid until the following call, or the
// reader's error (io.EOF at the end, after the last access unit).
func (s *annexBSplitter) next() ([]byte, error) {
	for {
		// Look for the start of the next access unit in what has been read.
		for {
			start, hdr := nextStartCode(s.buf[:s.n], s.scan)
			if start < 0 {
				// Keep the last 4 bytes scannable: a start code may straddle reads.
				s.scan = max(s.scan, s.n-4, 0)
				break
			}
			if hdr >= s.n {
				s.scan = start // find it again once its NAL header has arrived
				break
			}
			s.scan = hdr
			typ := s.buf[hdr] & 0x1f
			vcl := typ == nalSlice || typ == nalIDR
			if vcl && hdr+1 >= s.n {
				s.scan = start // need the slice header's first byte
				break
			}
			firstSlice := vcl && s.buf[hdr+1]&0x80 != 0
			prefix := typ == nalAUD || typ == nalSPS || typ == nalPPS || typ == nalSEI || (typ >= 14 && typ <= 18)
			if s.vcl && (prefix || firstSlice) && start > 0 {
				s.out = append(s.out[:0], s.buf[:start]...)
				copy(s.buf, s.buf[start:s.n])
				s.n -= start
				s.scan = 0
				s.vcl = false
				return s.out, nil
			}
			s.vcl = s.vcl || vcl
		}
		if s.eof {
			if s.n > 0 && s.vcl {
				s.out = append(s.out[:0], s.buf[:s.n]...)
				s.n, s.vcl, s.scan = 0, false, 0
				return s.out, nil
			}
			return nil, io.EOF
		}
		if s.n == len(s.buf) {
			s.buf = append(s.buf, make([]byte, len(s.buf))...)
		}
		k, err := s.r.Read(s.buf[s.n:])
		s.n += k
		if err == io.EOF {
			s.eof = true
		} else if err != nil {
			return nil, err
		}
	}
}
