package main

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestTURNRESTCredentialsAreMintedPerViewer(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ice := ICE{Servers: []string{"stun:s.example.org", "turn:t.example.org:3478"}, Secret: "0123456789abcdef", TTL: time.Hour}
	servers := ice.sessionServers("hall", func() time.Time { return now })("grand ma:1")
	if len(servers) != 2 || servers[0].URLs[0] != "stun:s.example.org" || servers[0].Username != "" {
		t.Fatalf("servers %+v: want the STUN server without credentials first", servers)
	}
	turn := servers[1]
	if turn.Username != "1800003600:lenscap-hall-grand_ma_1" {
		t.Errorf("username %q: want EXPIRY:lenscap-ID-VIEWER", turn.Username)
	}
	mac := hmac.New(sha1.New, []byte(ice.Secret))
	mac.Write([]byte(turn.Username))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); turn.Credential != want {
		t.Errorf("credential %v, want base64(HMAC-SHA1(secret, username)) %s", turn.Credential, want)
	}
	static := ICE{Servers: []string{"turn:t.example.org"}, Username: "cam", Credential: "pw", TTL: time.Hour}
	if s := static.sessionServers("hall", time.Now)(""); s[0].Username != "cam" || s[0].Credential != "pw" {
		t.Errorf("static credentials: %+v", s)
	}
	if (ICE{}).sessionServers("hall", time.Now) != nil {
		t.Error("no servers configured, yet a function")
	}
	if n := turnName(strings.Repeat("x", 64), strings.Repeat("y", 64)); len(n) != 96 {
		t.Errorf("a long name: %d bytes", len(n))
	}
}
