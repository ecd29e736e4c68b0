package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/auth"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/rtc/rtctest/chromiumtest"
)

// apiServer is the HTTP API over the simulated board's device and an rtc server, without the
// rest of the daemon (MQTT, LEDs, button).
type apiServer struct {
	url string
	dev *device.Device
}

func startAPI(t *testing.T, token string) *apiServer {
	t.Helper()
	var extra []string
	if token != "" {
		extra = append(extra, "--token", token)
	}
	d := startDaemon(t, t.TempDir(), extra...)
	return &apiServer{url: d.url, dev: d.dev}
}

func (s *apiServer) do(t *testing.T, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func TestAPIPrivacyErrorsSayWhatIsWrongInTheRequestsTerms(t *testing.T) {
	s := startAPI(t, "")
	seq := s.dev.Status().Seq
	for _, tc := range []struct{ body, want string }{
		{`{"video":"yes"}`, "video must be true or false"},
		{`{"audio":1}`, "audio must be true or false"},
		{`{"video":true,"audi":true}`, `unknown key "audi": send {"video":true} and/or {"audio":false}`},
		{`{"colour":true}`, `unknown key "colour"`},
		{`[true]`, "the body must be a JSON object"},
		{`"video"`, "the body must be a JSON object"},
		{`{"video":`, "malformed JSON"},
		{`{"video" true}`, "malformed JSON at byte 10: invalid character 't' after object key"},
		{``, "empty body"},
		{`{"video":true} {"audio":true}`, "one JSON object only"},
		{`{}`, "name a kind"},
	} {
		res, b := s.do(t, "POST", "/api/privacy", tc.body)
		var got struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v: %s", tc.body, err, b)
		}
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(got.Error, tc.want) {
			t.Errorf("%s: %d %q, want 400 with %q", tc.body, res.StatusCode, got.Error, tc.want)
		}
		for _, goName := range []string{"Go ", "struct", "privacyRequest", "bool", "json:"} {
			if strings.Contains(got.Error, goName) {
				t.Errorf("%s: %q speaks Go (%q)", tc.body, got.Error, goName)
			}
		}
	}
	if st := s.dev.Status(); st.Seq != seq || st.Video.Private || st.Audio.Private {
		t.Errorf("bad requests changed the state: %+v", st)
	}
	if res, b := s.do(t, "POST", "/api/privacy", `{"video":true}`); res.StatusCode != http.StatusOK {
		t.Errorf("a good request: %d %s", res.StatusCode, b)
	}
}

func TestPageKnowsWhetherATokenIsNeeded(t *testing.T) {
	for _, token := range []string{"", "s3cret-s3cret-s3cret"} {
		s := startAPI(t, token)
		res, page := s.do(t, "GET", "/", "")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("token %q: page %d", token, res.StatusCode)
		}
		marked := strings.Contains(string(page), `<html lang="en" data-token="required">`)
		if marked != (token != "") {
			t.Errorf("token %q: page marked as needing a token: %v", token, marked)
		}
		for _, want := range []string{"This camera needs a token", "token=", "location.hash", "history.replaceState",
			"sessionStorage", `type="password"`, "lenscap token show", "Forget this token"} {
			if !strings.Contains(string(page), want) {
				t.Errorf("the page never says %q", want)
			}
		}
		if strings.Contains(string(page), "location.search).get") {
			t.Error("the page reads a token from its query: the API takes none there")
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "img-src 'self'") || strings.Contains(csp, "data:") {
			t.Errorf("CSP %q: want the page's own icon only", csp)
		}
		if res.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("Referrer-Policy %q", res.Header.Get("Referrer-Policy"))
		}
		if !strings.Contains(string(page), `<link rel="icon" href="/favicon.ico"`) {
			t.Error("the page links no icon of its own")
		}
		res, icon := s.do(t, "GET", "/favicon.ico", "")
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(string(icon), "<svg") {
			t.Errorf("token %q: /favicon.ico %d %s", token, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
}

// pageConsoleErrors are the page's console errors and uncaught exceptions. Chromium logs every
// 4xx answer as a network error, which no page can prevent: those a test provokes are
// expected, as "STATUS PATH" ("401 /api/state"), and left out.
func pageConsoleErrors(b *chromiumtest.Browser, expected ...string) []string {
	var errs []string
	for _, m := range b.Console() {
		if m.Level != "error" || m.Source == "network" && expectedAnswer(m, expected) {
			continue
		}
		errs = append(errs, m.Source+": "+m.Text+" "+m.URL)
	}
	for _, e := range b.Exceptions() {
		errs = append(errs, "exception: "+e.Text)
	}
	return errs
}

func expectedAnswer(m chromiumtest.ConsoleMessage, expected []string) bool {
	for _, e := range expected {
		status, path, _ := strings.Cut(e, " ")
		if strings.Contains(m.Text, "status of "+status+" ") && strings.HasSuffix(m.URL, path) {
			return true
		}
	}
	return false
}

// screenshot saves the page to $LENSCAP_PAGE_SCREENSHOTS/name.png when that is set.
func screenshot(ctx context.Context, t *testing.T, b *chromiumtest.Browser, name string) {
	dir := os.Getenv("LENSCAP_PAGE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := b.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pageWait waits until the JavaScript expression js is true, or fails t saying what it waited for.
func pageWait(ctx context.Context, t *testing.T, b *chromiumtest.Browser, what, js string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := b.WaitFor(ctx, js, 20*time.Millisecond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func textIs(id, text string) string {
	return "document.getElementById(" + jsString(id) + ").textContent === " + jsString(text)
}

// shown is true when the element is laid out; gone when it is hidden (not merely disabled).
func shown(id string) string {
	return "((el) => !el.hidden && el.offsetParent !== null)(document.getElementById(" + jsString(id) + "))"
}

func gone(id string) string {
	return "((el) => el.hidden && el.offsetParent === null)(document.getElementById(" + jsString(id) + "))"
}

func pageString(ctx context.Context, t *testing.T, b *chromiumtest.Browser, js string) string {
	t.Helper()
	var s string
	if err := b.Eval(ctx, js, &s); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return s
}

// submitToken types tok into the page's prompt and submits it.
func submitToken(ctx context.Context, t *testing.T, b *chromiumtest.Browser, tok string) {
	t.Helper()
	pageWait(ctx, t, b, "the token prompt", shown("token-form"))
	if err := b.Eval(ctx, "document.getElementById('token-input').value = "+jsString(tok)+
		"; document.querySelector('#token-form button[type=submit]').click()", nil); err != nil {
		t.Fatal(err)
	}
}

// reload reloads the page and waits for it to load.
func reload(ctx context.Context, t *testing.T, b *chromiumtest.Browser) {
	t.Helper()
	if err := b.Eval(ctx, "window.beforeReload = true; location.reload()", nil); err != nil {
		t.Fatal(err)
	}
	pageWait(ctx, t, b, "the reload", "window.beforeReload === undefined && document.readyState === 'complete'")
}

const keptTokenJS = "sessionStorage.getItem('lenscap.token') || ''"

func TestPageWithoutTheTokenPromptsForItThenPlaysWithIt(t *testing.T) {
	const token = "s3cret-s3cret-s3cret"
	s := startAPI(t, token)
	b := chromiumtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := b.Navigate(ctx, s.url+"/"); err != nil {
		t.Fatal(err)
	}
	pageWait(ctx, t, b, "the prompt", textIs("banner-text", "This camera needs a token")+" && "+shown("token-form")+
		" && "+gone("toggle-video")+" && "+gone("press-button"))
	help := pageString(ctx, t, b, "document.getElementById('token-form').textContent")
	if !strings.Contains(help, "lenscap token show") || !strings.Contains(help, "owner") {
		t.Errorf("the prompt %q does not say where tokens come from", help)
	}
	screenshot(ctx, t, b, "token-needed")
	if errs := pageConsoleErrors(b); len(errs) > 0 {
		t.Errorf("console errors without a token: %q", errs)
	}

	// A wrong token is refused, and said why.
	submitToken(ctx, t, b, "wrong")
	pageWait(ctx, t, b, "the refusal", textIs("banner-text", "The camera refused this token")+" && "+
		textIs("banner-detail", "A valid bearer token is required.")+" && "+shown("token-form"))
	screenshot(ctx, t, b, "token-refused")

	// The right one: the page connects, plays, and the switches work.
	submitToken(ctx, t, b, token)
	pageWait(ctx, t, b, "a peer connection", "window.lenscap.pc instanceof RTCPeerConnection")
	waitDecoding(ctx, t, b, 0)
	pageWait(ctx, t, b, "live", textIs("banner-text", "Live")+" && "+gone("token-form"))
	if err := b.Eval(ctx, "document.getElementById('toggle-audio').click()", nil); err != nil {
		t.Fatal(err)
	}
	pageWait(ctx, t, b, "the microphone cut", textIs("banner-text", "Microphone off — remote command"))
	screenshot(ctx, t, b, "token-given")

	// Kept for the tab: a reload plays without asking.
	if kept := pageString(ctx, t, b, keptTokenJS); kept != token {
		t.Errorf("sessionStorage keeps %q, want the token", kept)
	}
	reload(ctx, t, b)
	pageWait(ctx, t, b, "a peer connection", "window.lenscap.pc instanceof RTCPeerConnection")
	waitDecoding(ctx, t, b, 0)
	pageWait(ctx, t, b, "the state after the reload", textIs("banner-text", "Microphone off — remote command")+" && "+gone("token-form"))
	if errs := pageConsoleErrors(b, "401 /api/state"); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

func TestPageWithAViewTokenLinkWatchesWithoutSwitches(t *testing.T) {
	k, pub := fleetKey(t)
	d := startDaemon(t, t.TempDir(), "--id", "cam-1", "--token-keys", pub)
	view := grant(t, k, "grandma", auth.RoleView, "cam-1", time.Hour, time.Now())
	b := chromiumtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := b.SetViewport(ctx, 1280, 860, false); err != nil {
		t.Fatal(err)
	}
	if err := b.Navigate(ctx, d.url+"/#token="+view); err != nil {
		t.Fatal(err)
	}
	waitDecoding(ctx, t, b, 0)
	pageWait(ctx, t, b, "live, as grandma, without the switches nor the simulated button",
		textIs("banner-text", "Live")+" && "+textIs("who-text", "Watching as grandma")+" && "+
			gone("toggle-video")+" && "+gone("toggle-audio")+" && "+gone("press-button")+" && "+gone("token-form"))
	if href := pageString(ctx, t, b, "location.href"); href != d.url+"/" {
		t.Errorf("address %q, want %q: the token must leave the address bar", href, d.url+"/")
	}
	if kept := pageString(ctx, t, b, keptTokenJS); kept != view {
		t.Error("sessionStorage does not keep the link's token")
	}
	screenshot(ctx, t, b, "view-role")

	// The owner cuts the microphone: the viewer sees it, still without switches.
	if code, body := d.do(t, "POST", "/api/privacy", "", strings.NewReader(`{"audio":true}`)); code != http.StatusUnauthorized {
		t.Fatalf("a change without a credential: %d %s", code, body)
	}
	owner := grant(t, k, "owner-phone", auth.RoleControl, "cam-1", time.Hour, time.Now())
	if code, body := d.do(t, "POST", "/api/privacy", owner, strings.NewReader(`{"audio":true}`)); code != http.StatusOK {
		t.Fatalf("the owner's cut: %d %s", code, body)
	}
	pageWait(ctx, t, b, "the cut, without switches", textIs("banner-text", "Microphone off — remote command")+" && "+gone("toggle-audio"))

	// A reload, without the fragment, watches again with the kept token.
	reload(ctx, t, b)
	pageWait(ctx, t, b, "a peer connection", "window.lenscap.pc instanceof RTCPeerConnection")
	waitDecoding(ctx, t, b, 0)
	pageWait(ctx, t, b, "watching after the reload", textIs("who-text", "Watching as grandma")+" && "+gone("toggle-video"))
	if errs := pageConsoleErrors(b); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

func TestPageWithAnExpiredTokenAsksForAnother(t *testing.T) {
	k, pub := fleetKey(t)
	d := startDaemon(t, t.TempDir(), "--id", "cam-1", "--token-keys", pub)
	expired := grant(t, k, "old", auth.RoleControl, "cam-1", time.Minute, time.Now().Add(-time.Hour))
	b := chromiumtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := b.Navigate(ctx, d.url+"/#token="+expired); err != nil {
		t.Fatal(err)
	}
	pageWait(ctx, t, b, "the prompt with why", textIs("banner-text", "The camera refused this token")+" && "+
		textIs("banner-detail", "The token has expired.")+" && "+shown("token-form"))
	if kept := pageString(ctx, t, b, keptTokenJS); kept != "" {
		t.Error("an expired token is kept")
	}
	screenshot(ctx, t, b, "token-expired")

	submitToken(ctx, t, b, grant(t, k, "owner-phone", auth.RoleControl, "cam-1", time.Hour, time.Now()))
	pageWait(ctx, t, b, "a peer connection", "window.lenscap.pc instanceof RTCPeerConnection")
	waitDecoding(ctx, t, b, 0)
	pageWait(ctx, t, b, "live with the switches", textIs("banner-text", "Live")+" && "+shown("toggle-video")+" && "+
		shown("press-button")+" && "+textIs("who-text", "Signed in as owner-phone"))
	if errs := pageConsoleErrors(b, "401 /api/state"); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

func TestPageWithoutATokenConfiguredPlaysWithNoConsoleErrors(t *testing.T) {
	s := startAPI(t, "")
	b := chromiumtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Navigate(ctx, s.url+"/"); err != nil {
		t.Fatal(err)
	}
	waitDecoding(ctx, t, b, 0)
	pageWait(ctx, t, b, "live, with the switches and no prompt", textIs("banner-text", "Live")+" && "+
		shown("toggle-video")+" && "+gone("token-form")+" && "+gone("who"))
	screenshot(ctx, t, b, "no-token")
	if errs := pageConsoleErrors(b); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
