package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/auth"
	"github.com/lenscap/lenscap/rtc/rtctest"
)

// fleetKey writes a fleet's public key for token_keys and returns its private half.
func fleetKey(t *testing.T) (ed25519.PrivateKey, string) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := auth.PublicKeyPEM(k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fleet.pub")
	if err := os.WriteFile(path, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return k, path
}

func grant(t *testing.T, k ed25519.PrivateKey, name string, role auth.Role, aud string, ttl time.Duration, at time.Time) string {
	t.Helper()
	tok, err := auth.Mint(k, auth.Grant{Name: name, Role: role, Audience: []string{aud}, TTL: ttl}, at)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestEveryEndpointAgainstEveryKindOfCredential(t *testing.T) {
	k, pub := fleetKey(t)
	now := time.Now()
	d := startDaemon(t, t.TempDir(), "--id", "cam-1", "--token-keys", pub, "--token-revoked", "mallory")
	creds := map[string]string{
		"none":           "",
		"garbage":        "not-a-token",
		"expired":        grant(t, k, "old", auth.RoleControl, "cam-1", time.Minute, now.Add(-time.Hour)),
		"wrong audience": grant(t, k, "next-door", auth.RoleControl, "cam-2", time.Hour, now),
		"revoked":        grant(t, k, "mallory", auth.RoleControl, "cam-1", time.Hour, now),
		"view":           grant(t, k, "grandma", auth.RoleView, "cam-1", time.Hour, now),
		"control":        grant(t, k, "owner-phone", auth.RoleControl, auth.AnyCamera, time.Hour, now),
	}
	type endpoint struct{ method, path, body string }
	watch := []endpoint{{"GET", "/api/state", ""}, {"GET", "/metrics", ""}, {"GET", "/ws", ""}, {"POST", "/whep", "v=0"}}
	change := []endpoint{{"POST", "/api/privacy", `{"audio":true}`}, {"POST", "/api/button", ""}}
	open := []endpoint{{"GET", "/", ""}, {"GET", "/favicon.ico", ""}, {"GET", "/vendor/mqtt.min.js", ""}, {"GET", "/healthz", ""}}
	for name, cred := range creds {
		valid := name == "view" || name == "control"
		for _, e := range open {
			if code, _ := d.do(t, e.method, e.path, cred, strings.NewReader(e.body)); code != http.StatusOK {
				t.Errorf("%s %s with %s: %d, want 200 (no credential needed)", e.method, e.path, name, code)
			}
		}
		for _, e := range watch {
			code, body := d.do(t, e.method, e.path, cred, strings.NewReader(e.body))
			if refused := code == http.StatusUnauthorized; refused == valid {
				t.Errorf("%s %s with %s: %d %s", e.method, e.path, name, code, body)
			}
		}
		for _, e := range change {
			code, body := d.do(t, e.method, e.path, cred, strings.NewReader(e.body))
			want := http.StatusUnauthorized
			switch name {
			case "view":
				want = http.StatusForbidden
			case "control":
				want = http.StatusOK
			}
			if code != want {
				t.Errorf("%s %s with %s: %d %s, want %d", e.method, e.path, name, code, body, want)
			}
		}
	}
}

func TestTheStateNamesWhoCutAndWhoAsks(t *testing.T) {
	k, pub := fleetKey(t)
	d := startDaemon(t, t.TempDir(), "--id", "cam-1", "--token-keys", pub)
	ctl := grant(t, k, "owner-phone", auth.RoleControl, "cam-1", time.Hour, time.Now())
	view := grant(t, k, "grandma", auth.RoleView, "cam-1", time.Hour, time.Now())
	if code, body := d.do(t, "POST", "/api/privacy", ctl, strings.NewReader(`{"audio":true}`)); code != http.StatusOK {
		t.Fatalf("cut: %d %s", code, body)
	}
	code, body := d.do(t, "GET", "/api/state", view, nil)
	var st struct {
		Audio struct {
			Private bool   `json:"private"`
			By      string `json:"by"`
			Who     string `json:"who"`
		} `json:"audio"`
		Caller auth.Identity `json:"caller"`
	}
	if err := json.Unmarshal(body, &st); code != http.StatusOK || err != nil {
		t.Fatalf("state: %d %v", code, err)
	}
	if st.Caller.Name != "grandma" || st.Caller.Role != auth.RoleView || st.Caller.Expires.IsZero() {
		t.Errorf("caller %+v, want grandma (view)", st.Caller)
	}
	if !st.Audio.Private || st.Audio.By != "remote" || st.Audio.Who != "owner-phone" {
		t.Errorf("audio %+v, want private, by remote, who owner-phone", st.Audio)
	}
}

func TestATokenInTheURLIsTakenOnlyOnTheWebSocket(t *testing.T) {
	k, pub := fleetKey(t)
	d := startDaemon(t, t.TempDir(), "--id", "cam-1", "--token-keys", pub)
	tok := grant(t, k, "grandma", auth.RoleView, "cam-1", time.Hour, time.Now())
	if code, _ := d.do(t, "GET", "/api/state?token="+tok, "", nil); code != http.StatusUnauthorized {
		t.Errorf("/api/state?token=: %d, want 401 (credentials in URLs end up in logs)", code)
	}
	if code, _ := d.do(t, "GET", "/ws?token="+tok, "", nil); code == http.StatusUnauthorized {
		t.Errorf("/ws?token=: 401, want the WebSocket upgrade to be tried")
	}
}

func TestNoListenerBeyondLoopbackWithoutACredential(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cfg := mustLoad(t, testPlatform(), []string{"--board", "sim", "--listen", "0.0.0.0:8080", "--mqtt-listen", "off", "--state-dir", t.TempDir()}, env(nil))
	if _, err := newDaemon(cfg, log, env(nil)); err == nil || !strings.Contains(err.Error(), "lenscap token show") {
		t.Fatalf("sim on 0.0.0.0 without a credential: %v, want a refusal saying how to fix it", err)
	}
	// The owner credential made by `lenscap token show` is enough.
	if _, err := ownerCredential(cfg, time.Now()); err != nil {
		t.Fatal(err)
	}
	d, err := newDaemon(cfg, log, env(nil))
	if err != nil {
		t.Fatalf("with the owner credential: %v", err)
	}
	if d.tls == nil {
		t.Error("the simulated board beyond loopback serves plain HTTP: credentials would cross the network in clear")
	}
	d.close()
	for listen, loopback := range map[string]bool{"127.0.0.1:8080": true, "[::1]:80": true, "localhost:1": true,
		"0.0.0.0:8080": false, ":8080": false, "192.168.1.2:80": false, "[::]:80": false, "camera.local:80": false} {
		if got := isLoopback(listen); got != loopback {
			t.Errorf("isLoopback(%s) = %v", listen, got)
		}
	}
}

func TestARealBoardMakesItsOwnerCredentialAtFirstStart(t *testing.T) {
	dir := t.TempDir()
	cfg := mustLoad(t, testPlatform(), []string{"--board", "rpi4", "--id", "cam-1", "--listen", "127.0.0.1:0", "--state-dir", dir}, env(nil))
	v, err := newVerifier(cfg, false, slog.New(slog.DiscardHandler))
	if err != nil || !v.Required() {
		t.Fatalf("real board: required %v, %v", v != nil && v.Required(), err)
	}
	owner, err := os.ReadFile(filepath.Join(dir, auth.OwnerFile))
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(strings.TrimSpace(string(owner)))
	if err != nil || id.Role != auth.RoleControl || id.Name != auth.OwnerName {
		t.Errorf("owner credential: %+v, %v", id, err)
	}
	shown, err := ownerCredential(cfg, time.Now())
	if err != nil || shown != strings.TrimSpace(string(owner)) {
		t.Errorf("token show prints another credential: %v", err)
	}
}

func TestTokenCommandsShowTheOwnerAndCreateViewers(t *testing.T) {
	dir := t.TempDir()
	common := []string{"--board", "sim", "--id", "cam-1", "--state-dir", dir}
	var owner, viewer bytes.Buffer
	if err := runToken(append([]string{"show"}, common...), env(nil), &owner); err != nil {
		t.Fatal(err)
	}
	if err := runToken(append([]string{"create", "--name", "grandma", "--ttl", "2h"}, common...), env(nil), &viewer); err != nil {
		t.Fatal(err)
	}
	key, _, err := auth.CameraKey(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	v := auth.NewVerifier(auth.VerifierConfig{OwnKey: key.Public().(ed25519.PublicKey), ID: "cam-1"})
	for tok, want := range map[string]auth.Identity{
		owner.String():  {Name: auth.OwnerName, Role: auth.RoleControl},
		viewer.String(): {Name: "grandma", Role: auth.RoleView},
	} {
		if id, err := v.Verify(strings.TrimSpace(tok)); err != nil || id.Name != want.Name || id.Role != want.Role {
			t.Errorf("%+v, %v; want %+v", id, err, want)
		}
	}
	for _, bad := range [][]string{{"create"}, {"create", "--name", "x", "--role", "root"}, {"create", "--name", "x", "--ttl", "0s"}, {"rotate"}, {}} {
		if err := runToken(append(bad, common...), env(nil), io.Discard); err == nil {
			t.Errorf("token %v: no error", bad)
		}
	}
}

func TestTokenCommandsOnARealBoardDoNotMakeTheKey(t *testing.T) {
	dir := t.TempDir()
	err := runToken([]string{"show", "--board", "rpi4", "--state-dir", dir}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "start the service once") {
		t.Fatalf("token show before the first start: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, auth.KeyFile)); err == nil {
		t.Error("token show made the key (it would belong to root, and the service could not read it)")
	}
}

func TestAPIKeysAreExactAsOnMQTT(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	for _, body := range []string{`{"VIDEO":true}`, `{"Video":false}`, `{"video":true,"Audio":true}`} {
		code, b := d.do(t, "POST", "/api/privacy", "", strings.NewReader(body))
		if code != http.StatusBadRequest || !strings.Contains(string(b), "unknown key") {
			t.Errorf("%s: %d %s, want 400 unknown key", body, code, b)
		}
	}
	if st := d.state(t); st.Video.Private || st.Audio.Private {
		t.Errorf("a refused body changed the state: %+v", st)
	}
}

func TestAViewersSessionEndsWhenItsCredentialExpires(t *testing.T) {
	k, pub := fleetKey(t)
	d := startDaemon(t, t.TempDir(), "--id", "cam-1", "--token-keys", pub)
	// Valid for about 2 s (the verifier allows 30 s of clock skew: issued in the past).
	tok := grant(t, k, "short", auth.RoleView, "cam-1", 32*time.Second, time.Now().Add(-30*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := rtctest.Dial(ctx, "ws"+strings.TrimPrefix(d.url, "http")+"/ws", rtctest.Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.WaitFor(ctx, "the session's end", func(v *rtctest.Viewer) bool { ended, _ := v.Ended(); return ended }); err != nil {
		t.Fatalf("the session outlived its credential: %v", err)
	}
}

func TestTheJournalRecordsWhoDidWhatAndVerifies(t *testing.T) {
	k, pub := fleetKey(t)
	dir := t.TempDir()
	d := startDaemon(t, dir, "--id", "cam-1", "--token-keys", pub)
	ctl := grant(t, k, "owner-phone", auth.RoleControl, "cam-1", time.Hour, time.Now())
	view := grant(t, k, "grandma", auth.RoleView, "cam-1", time.Hour, time.Now())
	if code, body := d.do(t, "POST", "/api/privacy", ctl, strings.NewReader(`{"video":true}`)); code != http.StatusOK {
		t.Fatalf("cut: %d %s", code, body)
	}
	if code, _ := d.do(t, "GET", "/api/journal", view, nil); code != http.StatusForbidden {
		t.Errorf("the journal with a view credential: %d, want 403", code)
	}
	code, body := d.do(t, "GET", "/api/journal?since=0", ctl, nil)
	var page struct {
		Entries []struct {
			Event, By, Who string
			Kinds          []string
		} `json:"entries"`
		Journal journalInfo `json:"journal"`
	}
	if err := json.Unmarshal(body, &page); code != http.StatusOK || err != nil {
		t.Fatalf("journal: %d %v %s", code, err, body)
	}
	last := page.Entries[len(page.Entries)-1]
	if last.Event != "cut" || last.Who != "owner-phone" || last.By != "remote" || page.Journal.PublicKey == "" {
		t.Errorf("last entry %+v, key %q", last, page.Journal.PublicKey)
	}
	d.stop(t) // a signed checkpoint at shutdown
	var out bytes.Buffer
	if err := runJournal([]string{"verify", "--state-dir", dir, "--key", page.Journal.PublicKey}, env(nil), &out); err != nil || !strings.HasPrefix(out.String(), "ok:") {
		t.Fatalf("verify: %v %s", err, out.String())
	}
	path := filepath.Join(dir, "journal.jsonl")
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte("owner-phone"), []byte("grandma-xyz"), 1), 0o600)
	if err := runJournal([]string{"verify", "--state-dir", dir}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "line") {
		t.Errorf("verify of an edited journal: %v, want the broken line named", err)
	}
}
