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
		for _, want := range []string{"This camera needs a token", "#token=", "location.hash"} {
			if !strings.Contains(string(page), want) {
				t.Errorf("the page never says %q", want)
			}
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

// pageConsoleErrors are the page's console errors and uncaught exceptions.
func pageConsoleErrors(b *chromiumtest.Browser) []string {
	var errs []string
	for _, m := range b.Console() {
		if m.Level == "error" {
			errs = append(errs, m.Source+": "+m.Text+" "+m.URL)
		}
	}
	for _, e := range b.Exceptions() {
		errs = append(errs, "exception: "+e.Text)
	}
	return errs
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

func TestPageWithoutTheTokenSaysHowToGiveItThenPlaysWithIt(t *testing.T) {
	s := startAPI(t, "s3cret-s3cret-s3cret")
	b := chromiumtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Navigate(ctx, s.url+"/"); err != nil {
		t.Fatal(err)
	}
	bannerIs := func(text string) string {
		return "document.getElementById('banner-text').textContent === " + jsString(text)
	}
	if err := b.WaitFor(ctx, bannerIs("This camera needs a token"), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var detail string
	if err := b.Eval(ctx, "document.getElementById('banner-detail').textContent", &detail); err != nil {
		t.Fatal(err)
	}
	if want := s.url + "/#token=…"; !strings.Contains(detail, want) || !strings.Contains(detail, "LENSCAP_TOKEN") {
		t.Errorf("banner detail %q, want %q and where the token comes from", detail, want)
	}
	screenshot(ctx, t, b, "token-needed")
	if errs := pageConsoleErrors(b); len(errs) > 0 {
		t.Errorf("console errors without a token: %q", errs)
	}

	// A wrong token is refused, and said so.
	if err := b.Eval(ctx, "location.hash = '#token=wrong'", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx, bannerIs("The camera refused this token"), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	screenshot(ctx, t, b, "token-refused")

	// The right one in the fragment: the page connects, plays, and the switches work.
	if err := b.Eval(ctx, "location.hash = '#token=s3cret-s3cret-s3cret'", nil); err != nil {
		t.Fatal(err)
	}
	waitDecoding(ctx, t, b, 0)
	if err := b.WaitFor(ctx, bannerIs("Live"), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := b.Eval(ctx, "document.getElementById('toggle-audio').click()", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx, bannerIs("Microphone off — remote command"), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	screenshot(ctx, t, b, "token-given")
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
	if err := b.WaitFor(ctx, "document.getElementById('banner-text').textContent === 'Live'", 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	screenshot(ctx, t, b, "no-token")
	if errs := pageConsoleErrors(b); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
