package rtc

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pion/sdp/v3"
)

// sdpError is an SDP from a viewer that lenscap refuses before pion sees it.
type sdpError struct {
	reason string // one of sdpReasons, for the metrics
	msg    string // for the viewer
}

func (e *sdpError) Error() string { return e.msg }

func refuseSDP(reason, format string, args ...any) *sdpError {
	return &sdpError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// fingerprintBytes is the digest length of each hash function accepted in a=fingerprint
// (RFC 8122; WebRTC needs at least SHA-256, RFC 8827). Names are case-insensitive.
var fingerprintBytes = map[string]int{"sha-256": 32, "sha-384": 48, "sha-512": 64}

// checkSDP parses an offer (WHEP) or answer (WebSocket) with pion's own parser and checks
// what lenscap requires of it before pion sees it:
//   - at most maxBytes;
//   - at least one DTLS fingerprint (a=fingerprint, session- or media-level), and every one
//     with a hash function of fingerprintBytes and a value of that many colon-separated hex
//     bytes: pion checks the certificate against one of them only after it has answered and
//     counted the viewer, so a corrupted one would cost a connection for nothing;
//   - at most one m-section per kind, of the kinds in kinds only ("video", "audio"): an
//     application (data channel) m-section is refused, since lenscap has no data channel and
//     pion cannot reject one (it would answer it and run SCTP for it).
func checkSDP(text string, maxBytes int, kinds []string) error {
	if len(text) > maxBytes {
		return refuseSDP(sdpTooLarge, "SDP of %d bytes: at most %d", len(text), maxBytes)
	}
	var desc sdp.SessionDescription
	if err := desc.UnmarshalString(text); err != nil {
		return refuseSDP(sdpMalformed, "malformed SDP: %v", err)
	}
	if err := checkMedia(&desc, kinds); err != nil {
		return err
	}
	return checkFingerprints(&desc)
}

// checkMedia allows at most one m-section of each of kinds, and nothing else.
func checkMedia(desc *sdp.SessionDescription, kinds []string) error {
	if n := len(desc.MediaDescriptions); n > len(kinds) {
		return refuseSDP(sdpMedia, "%d m-sections: at most %d (%s, one each)", n, len(kinds), strings.Join(kinds, ", "))
	}
	var seen []string
	open := 0
	for _, m := range desc.MediaDescriptions {
		if m.MediaName.Port.Value != 0 {
			open++
		}
		kind := m.MediaName.Media
		switch {
		case kind == "application":
			return refuseSDP(sdpMedia, "an application m-section: data channels are not supported")
		case !slices.Contains(kinds, kind):
			return refuseSDP(sdpMedia, "an m-section of kind %q: only %s", kind, strings.Join(kinds, ", "))
		case slices.Contains(seen, kind):
			return refuseSDP(sdpMedia, "more than one %s m-section", kind)
		}
		seen = append(seen, kind)
	}
	if open == 0 {
		// Nothing to send to it, yet it would hold a viewer's place until ICE gives up.
		return refuseSDP(sdpMedia, "no m-section with a port: nothing to watch")
	}
	return nil
}

// checkFingerprints requires at least one a=fingerprint, and every one well-formed.
func checkFingerprints(desc *sdp.SessionDescription) error {
	found := 0
	check := func(attrs []sdp.Attribute) error {
		for _, a := range attrs {
			if a.Key != "fingerprint" {
				continue
			}
			found++
			if err := checkFingerprint(a.Value); err != nil {
				return err
			}
		}
		return nil
	}
	if err := check(desc.Attributes); err != nil {
		return err
	}
	for _, m := range desc.MediaDescriptions {
		if err := check(m.Attributes); err != nil {
			return err
		}
	}
	if found == 0 {
		return refuseSDP(sdpFingerprint, "no DTLS fingerprint (a=fingerprint)")
	}
	return nil
}

// checkFingerprint checks an a=fingerprint value: "sha-256 AB:CD:...".
func checkFingerprint(v string) error {
	fields := strings.Split(v, " ") // as pion splits it: one space, nothing else
	if len(fields) != 2 || fields[0] == "" || fields[1] == "" {
		return refuseSDP(sdpFingerprint, "malformed a=fingerprint %q: want a hash function and a value", truncate(v, 40))
	}
	hash := strings.ToLower(fields[0])
	n, ok := fingerprintBytes[hash]
	if !ok {
		return refuseSDP(sdpFingerprint, "a=fingerprint hash function %q: only sha-256, sha-384 or sha-512", truncate(fields[0], 20))
	}
	digest := strings.Split(fields[1], ":")
	if len(digest) != n || !allHexBytes(digest) {
		return refuseSDP(sdpFingerprint, "malformed %s a=fingerprint: want %d hex bytes separated by colons", hash, n)
	}
	return nil
}

// allHexBytes reports whether every string is two hexadecimal digits (either case).
func allHexBytes(ss []string) bool {
	for _, s := range ss {
		if len(s) != 2 {
			return false
		}
		for _, c := range []byte(s) {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// checkSDP is checkSDP with the server's MaxSDPBytes; a refusal is counted by its reason.
func (s *Server) checkSDP(text string, kinds []string) error {
	err := checkSDP(text, s.cfg.MaxSDPBytes, kinds)
	var e *sdpError
	if errors.As(err, &e) {
		s.stats.sdp[e.reason].Add(1)
	}
	return err
}
