package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// ensurePC makes the peer connection at the first offer, with the ICE servers of the
// camera's config message.
func (v *viewer) ensurePC() error {
	if v.pc != nil {
		return nil
	}
	cfg := webrtc.Configuration{ICEServers: iceServers(v.ice)}
	if v.inv.relay {
		if !hasTURN(v.ice) {
			return errors.New("--relay: the camera gave no TURN server for the session (its ice_servers)")
		}
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := v.api.NewPeerConnection(cfg)
	if err != nil {
		return fmt.Errorf("peer connection with the camera's ICE servers: %w", err)
	}
	pc.OnTrack(v.onTrack)
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) { v.events.push(pcEvent{ice: s}) })
	if sctp := pc.SCTP(); sctp != nil && sctp.Transport() != nil && sctp.Transport().ICETransport() != nil {
		sctp.Transport().ICETransport().OnSelectedCandidatePairChange(func(*webrtc.ICECandidatePair) {
			v.events.push(pcEvent{pair: true})
		})
	}
	v.pc = pc
	return nil
}

func hasTURN(servers []iceServerJSON) bool {
	for _, u := range serverURLs(servers) {
		if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
			return true
		}
	}
	return false
}

// onTrack is pion's: it starts the track's reader and returns.
func (v *viewer) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	v.readMu.Lock()
	defer v.readMu.Unlock()
	if v.closing {
		return
	}
	v.readers.Add(1)
	go v.readTrack(tr)
}

func (v *viewer) isClosing() bool {
	v.readMu.Lock()
	defer v.readMu.Unlock()
	return v.closing
}

// readTrack reads a track's RTP until it stops, recording every packet.
func (v *viewer) readTrack(tr *webrtc.TrackRemote) {
	defer v.readers.Done()
	kind, codec := tr.Kind().String(), codecName(tr.Codec().MimeType)
	add := v.rec.trackAdded(kind, codec, time.Now())
	v.out.emit("track", kind, kv("codec", codec), kv("ssrc", uint32(tr.SSRC())), kv("add", add))
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			break
		}
		ff, ok := v.rec.packet(kind, add, p.Timestamp, p.SequenceNumber, p.Marker, p.Payload, time.Now())
		if ok {
			sinceOffer := optionalMS{}
			if !ff.offered.IsZero() {
				sinceOffer = optionalMS{ms: ff.at.Sub(ff.offered).Milliseconds(), ok: true}
			}
			v.out.emit("first-frame", kind, videoOnly(kind, kv("keyframe", ff.key),
				kv("after", ff.at.Sub(v.start).Milliseconds()), kv("since-offer", sinceOffer), kv("add", ff.add))...)
		}
	}
	if !v.isClosing() {
		v.out.emit("ended", kind, kv("add", add))
	}
}

// pcEvents prints the ICE state changes and the selected pair on each connect.
func (v *viewer) pcEvents() {
	evs, _ := v.events.drain() // at most a few per second: an overflow would only lose lines
	for _, e := range evs {
		if e.pair {
			if v.connected {
				v.printPair(false)
			}
			continue
		}
		switch e.ice {
		case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
			v.connected = true
			v.fail.Stop()
			v.printPair(true)
		case webrtc.ICEConnectionStateFailed:
			v.connected = false
			v.fail.Reset(failGrace)
			v.out.emit("ice", "", bare("state", e.ice.String()))
		case webrtc.ICEConnectionStateNew:
		default:
			v.connected = false
			v.out.emit("ice", "", bare("state", e.ice.String()))
		}
	}
}

// printPair prints the selected pair: always on a connect, else only when it changed.
func (v *viewer) printPair(connect bool) {
	if v.pc == nil {
		return
	}
	p := describePair(selectedPair(v.pc))
	if p.typ == "" || (!connect && p == v.pair) {
		return
	}
	v.pair = p
	v.out.emit("connected", "", kv("pair", p.typ), kv("local", p.local), kv("remote", p.remote),
		kv("local-type", p.localType), kv("remote-type", p.remoteType), kv("protocol", p.protocol))
}

// tick prints the stats of the kinds whose packets flowed in the last second.
func (v *viewer) tick() {
	for _, kind := range v.kinds {
		if v.rec.flowing(kind) {
			v.printStats(v.rec.summary(kind, false))
		}
	}
}

func (v *viewer) printStats(s kindSummary) {
	v.out.emit("stats", s.Kind, videoOnly(s.Kind, kv("packets", s.Packets), kv("frames", s.Frames), kv("keyframes", s.Keyframes))...)
}

// videoOnly drops the keyframe fields (keyframe, keyframes, first-keyframes) from the events
// of a kind other than video: every audio frame decodes alone.
func videoOnly(kind string, fields ...field) []field {
	if kind == "video" {
		return fields
	}
	out := fields[:0]
	for _, f := range fields {
		if !strings.Contains(f.key, "keyframe") {
			out = append(out, f)
		}
	}
	return out
}

// finish ends the session: bye to the camera (unless it said bye), the connection closed,
// the readers stopped, then the final stats and the summary of each kind.
func (v *viewer) finish(ctx context.Context, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		v.out.emit("error", "", bare("error", err.Error()))
	}
	v.readMu.Lock()
	v.closing = true // the camera's reaction to the bye is no "ended"
	v.readMu.Unlock()
	if byeErr := v.link.bye(ctx, !v.byeRecv); byeErr != nil && err == nil {
		v.out.emit("error", "", bare("error", "bye: "+byeErr.Error()))
	}
	if v.pc != nil {
		_ = v.pc.Close()
	}
	v.readers.Wait()
	for _, kind := range v.kinds {
		s := v.rec.summary(kind, true)
		v.printStats(s)
		first := optionalMS{}
		if !s.FirstFrame.IsZero() {
			first = optionalMS{ms: s.FirstFrame.Sub(v.start).Milliseconds(), ok: true}
		}
		v.out.emit("summary", kind, videoOnly(kind, kv("packets", s.Packets), kv("frames", s.Frames), kv("keyframes", s.Keyframes),
			kv("first-frame-ms", first), kv("adds", s.Adds), kv("first-keyframes", s.FirstKeyframes))...)
	}
}

// optionalMS is milliseconds, or none: -1 in text, null in JSON.
type optionalMS struct {
	ms int64
	ok bool
}

func (o optionalMS) String() string {
	if !o.ok {
		return "-1"
	}
	return fmt.Sprint(o.ms)
}

func (o optionalMS) MarshalJSON() ([]byte, error) {
	if !o.ok {
		return []byte("null"), nil
	}
	return []byte(fmt.Sprint(o.ms)), nil
}
