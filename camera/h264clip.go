package camera

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
)

// H.264 NAL unit types (ITU-T H.264 table 7-1) the clip parser tells apart.
const (
	nalSlice = 1 // coded slice of a non-IDR picture
	nalIDR   = 5 // coded slice of an IDR picture
	nalSEI   = 6 // supplemental enhancement information
	nalSPS   = 7 // sequence parameter set
	nalPPS   = 8 // picture parameter set
	nalAUD   = 9 // access unit delimiter
)

// accessUnit is one coded picture of an Annex-B clip with its parameter sets and SEI.
type accessUnit struct {
	data []byte // Annex-B, from its first start code to the next access unit's; capacity capped
	key  bool   // an IDR picture, SPS and PPS before it in data
}

// h264Clip is an Annex-B H.264 elementary stream split into access units.
type h264Clip struct {
	aus []accessUnit
	// profileLevelID is the SDP profile-level-id of the clip's first SPS: profile_idc,
	// the constraint flags and level_idc, in hex (RFC 6184 section 8.1).
	profileLevelID string
}

// parseH264Clip splits an Annex-B stream into access units (H.264 section 7.4.1.2.3): a new
// one starts at an AUD, SPS, PPS, SEI or NAL types 14-18 following a picture's slices, or at
// a slice whose first_mb_in_slice is 0. The access units are sub-slices of clip. It checks
// that the clip starts with an IDR and that every IDR access unit carries SPS and PPS before
// its first slice, so a decoder can start at any keyframe.
func parseH264Clip(clip []byte) (h264Clip, error) {
	p := clipSplitter{clip: clip, auStart: -1}
	start, hdr := nextStartCode(clip, 0)
	for start >= 0 {
		next, nextHdr := nextStartCode(clip, hdr)
		end := next
		if end < 0 {
			end = len(clip)
		}
		if err := p.nal(start, hdr, end); err != nil {
			return h264Clip{}, err
		}
		start, hdr = next, nextHdr
	}
	return p.done()
}

// clipSplitter is parseH264Clip's state between NAL units: the access units so far and
// what the current one holds.
type clipSplitter struct {
	clip     []byte
	c        h264Clip
	auStart  int   // offset of the current access unit; -1 before the first NAL
	hasVCL   bool  // the current access unit has a slice
	sps, pps bool  // seen in the current access unit before its first slice
	key      bool  // the current access unit is an IDR picture
	idrErr   error // an IDR without parameter sets, reported once
}

// nal takes the NAL unit from start code start to end, its header byte at hdr.
func (p *clipSplitter) nal(start, hdr, end int) error {
	clip := p.clip
	if hdr >= end {
		return fmt.Errorf("camera: h264 clip: empty NAL unit at offset %d", start)
	}
	if clip[hdr]&0x80 != 0 {
		return fmt.Errorf("camera: h264 clip: forbidden_zero_bit set at offset %d", hdr)
	}
	typ := clip[hdr] & 0x1f
	vcl := typ == nalSlice || typ == nalIDR
	firstSlice := vcl && hdr+1 < end && clip[hdr+1]&0x80 != 0 // ue(v) first_mb_in_slice == 0
	prefix := typ == nalAUD || typ == nalSPS || typ == nalPPS || typ == nalSEI ||
		(typ >= 14 && typ <= 18)
	if p.auStart < 0 || (p.hasVCL && (prefix || firstSlice)) {
		if p.auStart >= 0 {
			p.finish(start)
		}
		p.auStart, p.hasVCL, p.sps, p.pps, p.key = start, false, false, false, false
	}
	switch {
	case typ == nalSPS && !p.hasVCL:
		p.sps = true
		if p.c.profileLevelID == "" && hdr+4 <= end {
			p.c.profileLevelID = hex.EncodeToString(clip[hdr+1 : hdr+4])
		}
	case typ == nalPPS && !p.hasVCL:
		p.pps = true
	case typ == nalIDR:
		p.key = true
		if !p.hasVCL && !(p.sps && p.pps) && p.idrErr == nil {
			p.idrErr = fmt.Errorf("camera: h264 clip: IDR access unit %d has no SPS and PPS before it", len(p.c.aus))
		}
	}
	p.hasVCL = p.hasVCL || vcl
	return nil
}

// finish ends the current access unit at end.
func (p *clipSplitter) finish(end int) {
	p.c.aus = append(p.c.aus, accessUnit{data: p.clip[p.auStart:end:end], key: p.key})
}

// done ends the last access unit and checks the clip as a whole: it must hold a picture,
// start with an IDR and carry an SPS (whose profile-level-id the SDP gives).
func (p *clipSplitter) done() (h264Clip, error) {
	if p.auStart < 0 {
		return h264Clip{}, errors.New("camera: h264 clip: no NAL unit (not Annex-B?)")
	}
	if !p.hasVCL {
		return h264Clip{}, errors.New("camera: h264 clip: ends with an access unit without a picture")
	}
	p.finish(len(p.clip))
	switch {
	case p.idrErr != nil:
		return h264Clip{}, p.idrErr
	case !p.c.aus[0].key:
		return h264Clip{}, errors.New("camera: h264 clip: does not start with an IDR picture")
	case p.c.profileLevelID == "":
		return h264Clip{}, errors.New("camera: h264 clip: no SPS")
	}
	return p.c, nil
}

// nextStartCode returns the offset of the first Annex-B start code (00 00 01, or 00 00 00 01
// counted from its first zero) at or after from, or -1, and the offset where its NAL begins.
func nextStartCode(b []byte, from int) (int, int) {
	i := bytes.Index(b[from:], []byte{0, 0, 1})
	if i < 0 {
		return -1, -1
	}
	i += from
	if i > from && b[i-1] == 0 {
		return i - 1, i + 3
	}
	return i, i + 3
}

// nextKey returns the index of the first keyframe at or after i, wrapping around; the clip
// starts with one.
func (c *h264Clip) nextKey(i int) int {
	for j := range c.aus {
		k := (i + j) % len(c.aus)
		if c.aus[k].key {
			return k
		}
	}
	return 0
}
