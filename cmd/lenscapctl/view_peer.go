package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// gatherWait bounds the wait for the viewer's own candidates before an answer (TURN
// allocations included); the answer then carries what was gathered.
const gatherWait = 5 * time.Second

// newViewAPI is the viewer's pion: default codecs, a receiver's interceptors (NACKs and
// receiver reports), loopback candidates included (harmless, and needed when the camera is on
// this machine), no mDNS, host candidates only on the addresses of nets when given.
func newViewAPI(nets []*net.IPNet) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("webrtc codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		return nil, fmt.Errorf("webrtc nack: %w", err)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, fmt.Errorf("webrtc rtcp reports: %w", err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if len(nets) > 0 {
		se.SetIPFilter(func(ip net.IP) bool {
			for _, n := range nets {
				if n.Contains(ip) {
					return true
				}
			}
			return false
		})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// parseNets reads "127.0.0.1/8,192.168.1.0/24" (an address alone is its own /32 or /128).
func parseNets(s string) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			ip := net.ParseIP(part)
			if ip == nil {
				return nil, fmt.Errorf("%q is not an address or a CIDR network", part)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			nets = append(nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or a CIDR network", part)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// mediaSection is one m-section of an offer.
type mediaSection struct {
	kind, mid string
	sending   bool // the camera sends on it (sendonly or sendrecv, port not 0)
}

// offerInfo is what an offer says: its media sections and its ICE credentials' ufrag.
type offerInfo struct {
	sections []mediaSection
	ufrag    string
}

// parseOffer reads an offer's media sections and ufrag.
func parseOffer(s string) (offerInfo, error) {
	var d sdp.SessionDescription
	if err := d.Unmarshal([]byte(s)); err != nil {
		return offerInfo{}, fmt.Errorf("offer: %w", err)
	}
	var info offerInfo
	info.ufrag, _ = d.Attribute("ice-ufrag")
	for _, m := range d.MediaDescriptions {
		sec := mediaSection{kind: m.MediaName.Media, sending: true}
		sec.mid, _ = m.Attribute("mid")
		for _, dir := range []string{"recvonly", "inactive"} {
			if _, ok := m.Attribute(dir); ok {
				sec.sending = false
			}
		}
		if m.MediaName.Port.Value == 0 {
			sec.sending = false
		}
		if u, ok := m.Attribute("ice-ufrag"); ok && info.ufrag == "" {
			info.ufrag = u
		}
		info.sections = append(info.sections, sec)
	}
	return info, nil
}

// direction is what the offer carries for kind: "sendonly" (a track is sent), "inactive"
// (an m-section, no track sent) or "absent" (no m-section of that kind).
func (o offerInfo) direction(kind string) string {
	dir := "absent"
	for _, s := range o.sections {
		if s.kind != kind {
			continue
		}
		if s.sending {
			return "sendonly"
		}
		dir = "inactive"
	}
	return dir
}

// addReceivers adds a recvonly transceiver, with the offer's mid, for each audio or video
// m-section the connection has none for. pion would otherwise make one of the direction the
// offer implies (sendonly for the camera's recvonly m-section of a source not yet open), which
// could never receive once the camera adds its track there.
func addReceivers(pc *webrtc.PeerConnection, info offerInfo) error {
	have := map[string]bool{}
	for _, t := range pc.GetTransceivers() {
		have[t.Mid()] = true
	}
	for _, s := range info.sections {
		if have[s.mid] || s.mid == "" || (s.kind != "video" && s.kind != "audio") {
			continue
		}
		t, err := pc.AddTransceiverFromKind(webrtc.NewRTPCodecType(s.kind),
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		if err != nil {
			return fmt.Errorf("add a %s receiver: %w", s.kind, err)
		}
		if err := t.SetMid(s.mid); err != nil {
			return fmt.Errorf("add a %s receiver: %w", s.kind, err)
		}
		have[s.mid] = true
	}
	return nil
}

// answerOffer applies the camera's offer and returns the viewer's answer with the candidates
// gathered (all of them, unless gathering takes longer than gatherWait).
func answerOffer(ctx context.Context, pc *webrtc.PeerConnection, offer string) (string, error) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("apply the camera's offer: %w", err)
	}
	a, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("create answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(a); err != nil {
		return "", fmt.Errorf("apply the answer: %w", err)
	}
	timer := time.NewTimer(gatherWait)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	ld := pc.LocalDescription()
	if ld == nil {
		return "", errors.New("no local description after the answer")
	}
	return ld.SDP, nil
}

// pairInfo describes the selected candidate pair: its type (the most indirect of its two
// candidates: relay, srflx, prflx, host) and addresses.
type pairInfo struct {
	typ, local, remote, localType, remoteType, protocol string
}

func describePair(p *webrtc.ICECandidatePair) pairInfo {
	if p == nil || p.Local == nil || p.Remote == nil {
		return pairInfo{}
	}
	addr := func(c *webrtc.ICECandidate) string {
		return net.JoinHostPort(c.Address, fmt.Sprint(c.Port))
	}
	info := pairInfo{local: addr(p.Local), remote: addr(p.Remote), localType: p.Local.Typ.String(),
		remoteType: p.Remote.Typ.String(), protocol: p.Local.Protocol.String()}
	info.typ = webrtc.ICECandidateTypeHost.String()
	for _, t := range []webrtc.ICECandidateType{webrtc.ICECandidateTypeRelay, webrtc.ICECandidateTypeSrflx, webrtc.ICECandidateTypePrflx} {
		if p.Local.Typ == t || p.Remote.Typ == t {
			info.typ = t.String()
			break
		}
	}
	return info
}

// selectedPair is the pair the connection uses now, or nil.
func selectedPair(pc *webrtc.PeerConnection) *webrtc.ICECandidatePair {
	sctp := pc.SCTP()
	if sctp == nil || sctp.Transport() == nil || sctp.Transport().ICETransport() == nil {
		return nil
	}
	p, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil {
		return nil
	}
	return p
}
