package rtc

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// ICE: how a viewer's connection finds a path to the camera when they are not on one network.
// Config.ICEServers gives each session its STUN and TURN servers (with credentials minted for
// it, for a TURN REST secret); the camera's own connection uses them, and the viewer is told
// them: the WebSocket's "config" message before the first offer, a WHEP answer's Link headers
// (the Link header WHIP defines, RFC 9725 section 4.4, which WHEP reuses). Config.ICETransportPolicy "relay" makes the camera use TURN only.

// iceServer is an ICE server as a browser's RTCIceServer spells it.
type iceServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// sessionICE returns the ICE servers of a new session of the viewer ctx names, and the
// configuration of its connection.
func (s *Server) sessionICE(ctx context.Context) ([]webrtc.ICEServer, webrtc.Configuration) {
	var servers []webrtc.ICEServer
	if s.cfg.ICEServers != nil {
		servers = s.cfg.ICEServers(viewerName(ctx))
	}
	return servers, webrtc.Configuration{ICEServers: servers, ICETransportPolicy: s.cfg.ICETransportPolicy}
}

// browserICE is servers as the viewer page's RTCPeerConnection takes them.
func browserICE(servers []webrtc.ICEServer) []iceServer {
	out := make([]iceServer, 0, len(servers))
	for _, sv := range servers {
		cred, _ := sv.Credential.(string)
		out = append(out, iceServer{URLs: sv.URLs, Username: sv.Username, Credential: cred})
	}
	return out
}

// addICELinks adds a WHEP answer's Link headers: one per server URL, with its credentials.
func addICELinks(h http.Header, servers []webrtc.ICEServer) {
	for _, sv := range servers {
		cred, _ := sv.Credential.(string)
		for _, u := range sv.URLs {
			link := fmt.Sprintf(`<%s>; rel="ice-server"`, u)
			if sv.Username != "" {
				link += fmt.Sprintf(`; username=%s; credential=%s; credential-type="password"`, quote(sv.Username), quote(cred))
			}
			h.Add("Link", link)
		}
	}
}

// quote is an HTTP quoted-string (RFC 9110, section 5.6.4).
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// TURNCredentials mints TURN REST credentials (draft-uberti-behave-turn-rest, coturn's
// use-auth-secret) valid until expiry: the username "EXPIRY:NAME", the password
// base64(HMAC-SHA1(secret, username)).
func TURNCredentials(secret, name string, expiry time.Time) (username, password string) {
	username = fmt.Sprintf("%d:%s", expiry.Unix(), name)
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
