package rtc

import "bytes"

// The RTP payload size: leaves room for the RTP header, SRTP's tag and IP/UDP within a 1,200
// byte datagram, which crosses any path without fragmentation.
const maxPayload = 1160

// packetizer turns one frame into RTP payloads, reusing its buffers: after the first frames
// it allocates nothing.
type packetizer struct {
	h264     bool
	buf      []byte   // payload bytes of the current frame
	ends     []int    // end offset of each payload in buf
	payloads [][]byte // views into buf, rebuilt per frame
	sps, pps []byte   // copies kept until the next NAL unit, sent as one STAP-A
}

// packetize splits a frame into payloads: an audio frame is one payload; an H.264 access unit
// in Annex-B form becomes single NAL unit packets, FU-A fragments for large NAL units, and
// SPS and PPS aggregated in a STAP-A before the NAL unit that follows them (RFC 6184).
func (p *packetizer) packetize(frame []byte) [][]byte {
	p.buf = p.buf[:0]
	p.ends = p.ends[:0]
	if !p.h264 {
		p.add(frame)
	} else {
		forEachNAL(frame, p.nal)
	}
	p.payloads = p.payloads[:0]
	start := 0
	for _, end := range p.ends {
		p.payloads = append(p.payloads, p.buf[start:end:end])
		start = end
	}
	return p.payloads
}

func (p *packetizer) add(parts ...[]byte) {
	for _, b := range parts {
		p.buf = append(p.buf, b...)
	}
	p.ends = append(p.ends, len(p.buf))
}

const (
	nalSPS   = 7
	nalPPS   = 8
	nalAUD   = 9
	nalSTAPA = 24
	nalFUA   = 28
)

func (p *packetizer) nal(n []byte) {
	typ := n[0] & 0x1f
	switch typ {
	case nalAUD: // access unit delimiters carry nothing a viewer needs
		return
	case nalSPS:
		p.sps = append(p.sps[:0], n...)
		return
	case nalPPS:
		p.pps = append(p.pps[:0], n...)
		return
	}
	if len(p.sps) > 0 && len(p.pps) > 0 {
		nri := (p.sps[0] | p.pps[0]) & 0x60
		p.add([]byte{nri | nalSTAPA},
			[]byte{byte(len(p.sps) >> 8), byte(len(p.sps))}, p.sps,
			[]byte{byte(len(p.pps) >> 8), byte(len(p.pps))}, p.pps)
		p.sps, p.pps = p.sps[:0], p.pps[:0]
	}
	if len(n) <= maxPayload {
		p.add(n)
		return
	}
	// FU-A: the NAL header becomes an indicator and a header on each fragment.
	ind := n[0]&0xe0 | nalFUA
	data := n[1:]
	for first := true; len(data) > 0; first = false {
		size := min(len(data), maxPayload-2)
		hdr := typ
		if first {
			hdr |= 0x80
		}
		if size == len(data) {
			hdr |= 0x40
		}
		p.buf = append(p.buf, ind, hdr)
		p.add(data[:size])
		data = data[size:]
	}
}

var startCode = []byte{0, 0, 1}

// forEachNAL calls f with each NAL unit of an Annex-B byte stream, without start codes.
func forEachNAL(b []byte, f func([]byte)) {
	i := bytes.Index(b, startCode)
	if i < 0 {
		if len(b) > 0 {
			f(b)
		}
		return
	}
	b = b[i+3:]
	for len(b) > 0 {
		j := bytes.Index(b, startCode)
		n := b
		if j >= 0 {
			n = b[:j]
			b = b[j+3:]
		} else {
			b = nil
		}
		// A four-byte start code leaves a zero at the end of the previous unit.
		for len(n) > 0 && n[len(n)-1] == 0 {
			n = n[:len(n)-1]
		}
		if len(n) > 0 {
			f(n)
		}
	}
}
