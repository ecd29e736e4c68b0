package rtc

import (
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// streamID is the id of the camera-and-microphone MediaStream every viewer receives: both
// kinds are in one stream, so a viewer sees removetrack/addtrack on it.
const streamID = "lenscap"

// fanout is one kind's media for all viewers: a webrtc.TrackLocal bound to every viewer's
// sender. Each frame is packetized once and written to every binding; a binding receives
// nothing until a keyframe, so a viewer's first video frame is one it can decode.
type fanout struct {
	kind  device.Kind
	codec webrtc.RTPCodecCapability
	pion  webrtc.RTPCodecType
	epoch time.Time // RTP timestamps count from here, so they carry the capture time
	base  uint32    // the RTP timestamp at epoch

	lastSent atomic.Int64  // when a frame was last written to a viewer, Unix nanoseconds
	packets  atomic.Uint64 // RTP packets written, all viewers together
	bytes    atomic.Uint64 // their bytes, header and payload

	mu       sync.Mutex // guards the fields below; held while a frame is written
	track    *device.Track
	bindings []*binding
	pk       packetizer
	// lastSeq keeps the sequence number of an unbound sender: a WHEP sender rebound after
	// privacy keeps its SSRC, and SRTP's replay window would drop packets whose sequence
	// jumped. Bounded: a forgotten entry only costs a new random start.
	lastSeq map[webrtc.SSRC]uint16
}

// rtpHeaderSize is the size of the RTP headers the fan-out writes (no CSRC, no extension).
const rtpHeaderSize = 12

// maxLastSeq bounds fanout.lastSeq.
const maxLastSeq = 1024

// binding is one viewer's sender bound to the fanout.
type binding struct {
	id      string
	w       webrtc.TrackLocalWriter
	hdr     rtp.Header // reused for every packet, so writing allocates nothing here
	waitKey bool
}

func newFanout(kind device.Kind, c device.Codec, epoch time.Time) *fanout {
	typ := webrtc.RTPCodecTypeVideo
	if kind == device.KindAudio {
		typ = webrtc.RTPCodecTypeAudio
	}
	return &fanout{
		kind:    kind,
		pion:    typ,
		codec:   Capability(c),
		epoch:   epoch,
		base:    rand.Uint32(),
		pk:      packetizer{h264: strings.EqualFold(c.MimeType, webrtc.MimeTypeH264)},
		lastSeq: make(map[webrtc.SSRC]uint16),
	}
}

// Capability is the pion codec capability of a device codec, with the RTCP feedback lenscap
// answers for video (NACK, PLI, FIR); rtc/livekit publishes with it too.
func Capability(c device.Codec) webrtc.RTPCodecCapability {
	cap := webrtc.RTPCodecCapability{
		MimeType:    c.MimeType,
		ClockRate:   c.ClockRate,
		Channels:    c.Channels,
		SDPFmtpLine: c.SDPFmtpLine,
	}
	if strings.HasPrefix(strings.ToLower(c.MimeType), "video/") {
		cap.RTCPFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	}
	return cap
}

// ID, StreamID, RID and Kind implement webrtc.TrackLocal.
func (f *fanout) ID() string                { return string(f.kind) }
func (f *fanout) StreamID() string          { return streamID }
func (f *fanout) RID() string               { return "" }
func (f *fanout) Kind() webrtc.RTPCodecType { return f.pion }

// Bind implements webrtc.TrackLocal: a viewer's sender starts receiving, from a keyframe.
func (f *fanout) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var codec *webrtc.RTPCodecParameters
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, f.codec.MimeType) {
			if codec == nil || c.SDPFmtpLine == f.codec.SDPFmtpLine {
				codec = &c
			}
		}
	}
	if codec == nil {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	b := &binding{
		id:      ctx.ID(),
		w:       ctx.WriteStream(),
		waitKey: f.pion == webrtc.RTPCodecTypeVideo,
		hdr: rtp.Header{
			Version:        2,
			PayloadType:    uint8(codec.PayloadType),
			SSRC:           uint32(ctx.SSRC()),
			SequenceNumber: uint16(rand.Uint32()),
		},
	}
	f.mu.Lock()
	if seq, ok := f.lastSeq[ctx.SSRC()]; ok {
		b.hdr.SequenceNumber = seq
		delete(f.lastSeq, ctx.SSRC())
	}
	f.bindings = append(f.bindings, b)
	t, wait := f.track, b.waitKey // write may clear waitKey once the lock is let go
	f.mu.Unlock()
	if t != nil && wait {
		t.RequestKeyframe()
	}
	return *codec, nil
}

// Unbind implements webrtc.TrackLocal.
func (f *fanout) Unbind(ctx webrtc.TrackLocalContext) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, b := range f.bindings {
		if b.id == ctx.ID() {
			f.bindings = append(f.bindings[:i:i], f.bindings[i+1:]...)
			if len(f.lastSeq) >= maxLastSeq {
				clear(f.lastSeq)
			}
			f.lastSeq[webrtc.SSRC(b.hdr.SSRC)] = b.hdr.SequenceNumber
			return nil
		}
	}
	return webrtc.ErrUnbindFailed
}

// attach makes t the source of the fanout's frames.
func (f *fanout) attach(t *device.Track) {
	f.mu.Lock()
	f.track = t
	for _, b := range f.bindings {
		b.waitKey = f.pion == webrtc.RTPCodecTypeVideo
	}
	f.mu.Unlock()
	t.SetSink(func(fr device.Frame) { f.write(t, fr) })
	if f.pion == webrtc.RTPCodecTypeVideo {
		t.RequestKeyframe()
	}
}

// detach stops writing t's frames; when it returns no frame of t is being written.
func (f *fanout) detach(t *device.Track) {
	f.mu.Lock()
	if f.track == t {
		f.track = nil
	}
	f.mu.Unlock()
}

// writeFrame writes one frame's packets to a binding; false when pion dropped them unsent. A
// binding's writes are dropped (0 bytes, no error) until its connection's SRTP is up, though
// pion binds when the answer is applied: a keyframe dropped so is not the viewer's first
// frame, it still waits for one (watchState asks for it once connected).
func (f *fanout) writeFrame(b *binding, payloads [][]byte) bool {
	for i, p := range payloads {
		b.hdr.Marker = f.pion == webrtc.RTPCodecTypeVideo && i == len(payloads)-1 // end of frame
		b.hdr.SequenceNumber++
		// A write error is a viewer going away; its session notices and ends.
		n, err := b.w.WriteRTP(&b.hdr, p)
		if i == 0 && n == 0 && err == nil {
			b.hdr.SequenceNumber-- // nothing left: no gap for the viewer to ask after
			return false
		}
	}
	b.waitKey = false
	return true
}

// waiting reports whether a binding waits for a keyframe to start with.
func (f *fanout) waiting() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.bindings {
		if b.waitKey {
			return true
		}
	}
	return false
}

// current returns the attached track, or nil.
func (f *fanout) current() *device.Track {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.track
}

// timestamp is the RTP timestamp of a capture time.
func (f *fanout) timestamp(at time.Time) uint32 {
	return f.base + uint32(at.Sub(f.epoch).Nanoseconds()*int64(f.codec.ClockRate)/int64(time.Second))
}

// CaptureTime inverts timestamp, for a timestamp within 2^31 ticks of now.
func (f *fanout) captureTime(ts uint32) time.Time {
	ticks := int64(int32(ts - f.base))
	return f.epoch.Add(time.Duration(ticks * int64(time.Second) / int64(f.codec.ClockRate)))
}

// write sends one frame to every binding: packetized once, written to each.
func (f *fanout) write(t *device.Track, fr device.Frame) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.track != t || len(f.bindings) == 0 {
		return
	}
	payloads := f.pk.packetize(fr.Data)
	if len(payloads) == 0 {
		return
	}
	ts := f.timestamp(fr.CaptureTime)
	sent := 0
	for _, b := range f.bindings {
		if b.waitKey && !fr.Keyframe {
			continue
		}
		b.hdr.Timestamp = ts
		if f.writeFrame(b, payloads) {
			sent++
		}
	}
	if sent > 0 {
		f.lastSent.Store(time.Now().UnixNano())
		size := 0
		for _, p := range payloads {
			size += rtpHeaderSize + len(p)
		}
		f.packets.Add(uint64(sent * len(payloads)))
		f.bytes.Add(uint64(sent * size))
	}
}
