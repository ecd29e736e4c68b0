package main

import (
	"net/url"
	"strings"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/settings"
	"github.com/lenscap/lenscap/rtc"
	"github.com/pion/webrtc/v4"
)

// ICE is how viewers off the camera's network reach it: STUN and TURN servers, given to the
// camera's connections and to every viewer (rtc.Config.ICEServers).
type ICE struct {
	// Servers are stun:, turn: and turns: URLs (turn:turn.example.org:3478?transport=udp).
	Servers []string
	// Username and Credential are the TURN servers' static credentials; Secret is a TURN REST
	// shared secret (coturn's use-auth-secret) from which each session gets its own
	// credentials, valid for TTL. The credential and the secret are secrets: log Redacted().
	Username, Credential, Secret string
	TTL                          time.Duration
	// Policy is "all" (the default) or "relay" (the camera uses TURN relays only).
	Policy string
	// TCPListen is where the camera takes ICE-TCP connections (host:port), for viewers whose
	// networks block UDP; empty: no ICE-TCP.
	TCPListen string
}

// iceSettings are the ICE servers'.
func iceSettings() []settings.Setting[Config] {
	return []settings.Setting[Config]{
		settings.List("ice_servers", "STUN and TURN `URLs` (stun:host:3478, turn:host:3478?transport=udp, turns:host:5349) for viewers off the camera's network",
			func(c *Config) *[]string { return &c.ICE.Servers }),
		configString("turn_username", "TURN `username` (static credentials)",
			func(c *Config) *string { return &c.ICE.Username }),
		configString("turn_credential", "TURN `password` (static credentials; never logged)",
			func(c *Config) *string { return &c.ICE.Credential }),
		configString("turn_secret", "TURN REST shared `secret` (coturn use-auth-secret): each session gets its own credentials (never logged)",
			func(c *Config) *string { return &c.ICE.Secret }),
		settings.Duration("turn_ttl", "how long credentials minted from turn_secret are valid (default 24h): at least a session's length",
			func(c *Config) *time.Duration { return &c.ICE.TTL }),
		configString("ice_transport_policy", "`policy`: all (default) or relay (the camera uses TURN relays only)",
			func(c *Config) *string { return &c.ICE.Policy }),
		configString("ice_tcp_listen", "`host:port` for ICE-TCP, for viewers whose networks block UDP; empty: none",
			func(c *Config) *string { return &c.ICE.TCPListen }),
	}
}

// validate checks the ICE settings (the secrets are never printed).
func (i ICE) validate(bad func(key, format string, args ...any)) {
	for _, s := range i.Servers {
		scheme, _, _ := strings.Cut(s, ":")
		if _, err := url.Parse(s); err != nil || (scheme != "stun" && scheme != "stuns" && scheme != "turn" && scheme != "turns") {
			bad("ice_servers", "%q: want stun:HOST[:PORT], turn:HOST[:PORT][?transport=udp|tcp] or turns:HOST[:PORT]", s)
		}
	}
	if i.Credential != "" && i.Secret != "" {
		bad("turn_secret", "give turn_credential or turn_secret, not both")
	}
	if i.Secret != "" && len(i.Secret) < 16 {
		bad("turn_secret", "want at least 16 characters")
	}
	if i.TTL < time.Minute || i.TTL > 7*24*time.Hour {
		bad("turn_ttl", "%s: want 1m to 168h", i.TTL)
	}
	if i.Policy != "all" && i.Policy != "relay" {
		bad("ice_transport_policy", "%q: want all or relay", i.Policy)
	}
	if i.TCPListen != "" {
		if err := checkListen(i.TCPListen); err != nil {
			bad("ice_tcp_listen", "%q: %v", i.TCPListen, err)
		}
	}
}

// redacted hides the credential and the secret.
func (i ICE) redacted() ICE {
	if i.Credential != "" {
		i.Credential = redactedMark
	}
	if i.Secret != "" {
		i.Secret = redactedMark
	}
	return i
}

// policy is the policy as pion spells it.
func (i ICE) policy() webrtc.ICETransportPolicy {
	if i.Policy == "relay" {
		return webrtc.ICETransportPolicyRelay
	}
	return webrtc.ICETransportPolicyAll
}

// sessionServers returns the function that gives each viewer session its ICE servers: the STUN
// servers as they are, the TURN servers with the static credentials or, with a secret, with
// credentials minted for the session (TURN REST: the username "EXPIRY:lenscap-ID-VIEWER", the
// password base64(HMAC-SHA1(secret, username)), as coturn's use-auth-secret checks; the
// viewer's name makes the relay's use traceable to a credential). nil: no servers.
func (i ICE) sessionServers(id string, now func() time.Time) func(viewer string) []webrtc.ICEServer {
	if len(i.Servers) == 0 {
		return nil
	}
	return func(viewer string) []webrtc.ICEServer {
		var stun, turn []string
		for _, s := range i.Servers {
			if strings.HasPrefix(s, "turn") {
				turn = append(turn, s)
			} else {
				stun = append(stun, s)
			}
		}
		var out []webrtc.ICEServer
		if len(stun) > 0 {
			out = append(out, webrtc.ICEServer{URLs: stun})
		}
		if len(turn) > 0 {
			user, cred := i.Username, i.Credential
			if i.Secret != "" {
				user, cred = rtc.TURNCredentials(i.Secret, turnName(id, viewer), now().Add(i.TTL))
			}
			out = append(out, webrtc.ICEServer{URLs: turn, Username: user, Credential: cred,
				CredentialType: webrtc.ICECredentialTypePassword})
		}
		return out
	}
}

// turnName is the name in a session's TURN username: the camera and the viewer's credential
// holder, in characters a TURN username takes ([A-Za-z0-9._-]), at most 96.
func turnName(id, viewer string) string {
	name := "lenscap-" + id
	if viewer != "" {
		name += "-" + viewer
	}
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b[:min(len(b), 96)])
}
