package chromiumtest

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// viewerPage is the viewer page served by the daemon at /.
const (
	viewerPage = "../../../cmd/lenscap/web/index.html"
	viewerIcon = "../../../cmd/lenscap/web/favicon.svg"
)

// The stub's credentials: stubToken is a control credential, viewToken a view one.
const (
	stubToken = "s3cret"
	viewToken = "grandma-s3cret"
)

// expiredText is lenscap's answer (401) to an expired token.
const expiredText = "a valid credential is required: the token has expired"

// stubCaller is who a credential is, as /api/state says in "caller".
type stubCaller struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// stubDevice serves the viewer page with the daemon's HTTP and WebSocket
// contract (DESIGN.md) faked: no WebRTC, only state, errors and bye. With
// credentials (the default) it marks the page as needing a token, as lenscap
// does, and wants a bearer token on the API (on /ws also ?token=).
type stubDevice struct {
	t     *testing.T
	page  []byte
	conns chan *websocket.Conn // each accepted /ws connection, after its first state message

	mu           sync.Mutex
	credentials  map[string]stubCaller // token: who; nil: no token needed
	refused      map[string]string     // token: why it is refused (401), e.g. it expired
	unauthorised []string              // requests refused a 401
	requests     []string              // every request's method and URL
	privacy      []map[string]bool
	wsConnects   int
}

// The state /api/state answers, and the newer one the WebSocket sends.
var (
	apiState = map[string]any{
		"video":   map[string]any{"private": true, "by": "button", "live": false, "error": ""},
		"audio":   map[string]any{"private": true, "by": "button", "live": false, "error": ""},
		"viewers": 1, "seq": 7, "board": "sim",
	}
	wsState = map[string]any{
		"video":   map[string]any{"private": true, "by": "remote", "live": false, "error": ""},
		"audio":   map[string]any{"private": false, "by": "remote", "live": true, "error": ""},
		"viewers": 2, "seq": 8,
	}
	buttonState = map[string]any{
		"video":   map[string]any{"private": true, "by": "button", "live": false, "error": ""},
		"audio":   map[string]any{"private": true, "by": "button", "live": false, "error": ""},
		"viewers": 2, "seq": 9,
	}
)

const errButtonWins = "privacy was engaged by the button and can be lifted only by the button"

func newStubDevice(t *testing.T) *stubDevice {
	page, err := os.ReadFile(viewerPage)
	if err != nil {
		t.Fatal(err)
	}
	return &stubDevice{t: t, page: page, conns: make(chan *websocket.Conn, 8),
		credentials: map[string]stubCaller{
			stubToken: {Name: "token", Role: "control"},
			viewToken: {Name: "grandma", Role: "view"},
		},
		refused: map[string]string{}}
}

// newOpenStubDevice is a stub that needs no token, as lenscap on loopback without credentials.
func newOpenStubDevice(t *testing.T) *stubDevice {
	d := newStubDevice(t)
	d.credentials = nil
	return d
}

// refuse makes the device refuse tok from now on, saying why.
func (d *stubDevice) refuse(tok, why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refused[tok] = why
}

// caller checks a request's credential as lenscap does: a bearer header, or ?token= on /ws.
func (d *stubDevice) caller(r *http.Request) (*stubCaller, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.credentials == nil {
		return nil, ""
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok && r.URL.Path == "/ws" {
		tok = r.URL.Query().Get("token")
	}
	if why, ok := d.refused[tok]; ok {
		return nil, why
	}
	if c, ok := d.credentials[tok]; ok {
		return &c, ""
	}
	return nil, "a valid bearer token is required"
}

func (d *stubDevice) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.requests = append(d.requests, r.Method+" "+r.URL.String())
	d.mu.Unlock()
	// The page and its icon need no token, as lenscap serves them.
	var caller *stubCaller
	if r.URL.Path != "/" && r.URL.Path != "/favicon.ico" {
		var why string
		if caller, why = d.caller(r); why != "" {
			d.mu.Lock()
			d.unauthorised = append(d.unauthorised, r.Method+" "+r.URL.String()+": "+why)
			d.mu.Unlock()
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": why})
			return
		}
	}
	switch {
	case r.URL.Path == "/favicon.ico":
		icon, err := os.ReadFile(viewerIcon)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Write(icon)
	case r.URL.Path == "/":
		page := d.page
		d.mu.Lock()
		if d.credentials != nil {
			page = bytes.Replace(page, []byte(`<html lang="en">`), []byte(`<html lang="en" data-token="required">`), 1)
		}
		d.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	case r.URL.Path == "/api/state" && r.Method == http.MethodGet:
		st := maps.Clone(apiState)
		if caller != nil {
			st["caller"] = caller
		}
		writeJSON(w, http.StatusOK, st)
	case (r.URL.Path == "/api/privacy" || r.URL.Path == "/api/button") && caller != nil && caller.Role != "control":
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "this credential (" + caller.Name + ") may only watch"})
	case r.URL.Path == "/api/privacy" && r.Method == http.MethodPost:
		var body map[string]bool
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		d.mu.Lock()
		d.privacy = append(d.privacy, body)
		d.mu.Unlock()
		writeJSON(w, http.StatusConflict, map[string]string{"error": errButtonWins})
	case r.URL.Path == "/api/button" && r.Method == http.MethodPost:
		writeJSON(w, http.StatusOK, buttonState)
	case r.URL.Path == "/ws":
		d.serveWS(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (d *stubDevice) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		d.t.Errorf("accept /ws: %v", err)
		return
	}
	defer c.CloseNow()
	d.mu.Lock()
	d.wsConnects++
	d.mu.Unlock()
	ctx := c.CloseRead(r.Context()) // the page sends nothing without an offer
	if err := wsjson.Write(ctx, c, map[string]any{"type": "state", "state": wsState}); err != nil {
		return
	}
	select {
	case d.conns <- c:
	case <-ctx.Done():
		return
	}
	<-ctx.Done()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestViewerPageShowsStateControlsAndReconnects(t *testing.T) {
	dev := newStubDevice(t)
	srv := httptest.NewServer(dev)
	t.Cleanup(srv.Close) // after the browser's cleanup, which closes /ws
	b := New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	if err := b.Navigate(ctx, srv.URL+"/#token="+stubToken); err != nil {
		t.Fatal(err)
	}
	var conn *websocket.Conn
	select {
	case conn = <-dev.conns:
	case <-ctx.Done():
		t.Fatal("the page did not open /ws")
	}

	// The WebSocket's state (seq 8) wins over /api/state's (seq 7) whatever
	// the order they arrive in; the board comes from /api/state.
	waitText(ctx, t, b, "banner-text", "Camera off — remote command")
	waitJS(ctx, t, b, "the simulated button is visible", `(() => {
		const el = document.getElementById('press-button');
		return !el.hidden && el.offsetParent !== null && el.getBoundingClientRect().height > 0;
	})()`)
	waitJS(ctx, t, b, "window.lenscap holds a peer connection and a state event", `
		window.lenscap.pc instanceof RTCPeerConnection &&
		window.lenscap.events.some((e) => e.type === 'state' && e.kind === null)`)
	var viewers string
	if err := b.Eval(ctx, `document.getElementById('viewers').textContent`, &viewers); err != nil || viewers != "· 2 viewers" {
		t.Errorf("viewers = %q, %v; want %q", viewers, err, "· 2 viewers")
	}
	for _, vp := range []struct {
		name          string
		width, height int
		mobile        bool
	}{{"desktop", 1280, 860, false}, {"tablet", 800, 1000, false}, {"phone", 390, 844, true}} {
		if err := b.SetViewport(ctx, vp.width, vp.height, vp.mobile); err != nil {
			t.Fatal(err)
		}
		saveScreenshot(ctx, t, b, "viewer-"+vp.name+".png")
	}

	// Turning the camera on when the button engaged privacy: the 409's error is shown.
	if err := b.Eval(ctx, `document.getElementById('toggle-video').click()`, nil); err != nil {
		t.Fatal(err)
	}
	waitText(ctx, t, b, "error-text", errButtonWins)
	saveScreenshot(ctx, t, b, "viewer-error-phone.png")
	dev.mu.Lock()
	if len(dev.privacy) != 1 || len(dev.privacy[0]) != 1 || dev.privacy[0]["video"] != false {
		t.Errorf("POST /api/privacy bodies = %v, want [{video:false}]", dev.privacy)
	}
	dev.mu.Unlock()

	// The simulated button's answer updates the banner.
	if err := b.Eval(ctx, `document.getElementById('press-button').click()`, nil); err != nil {
		t.Fatal(err)
	}
	waitText(ctx, t, b, "banner-text", "Camera and microphone off — privacy button")
	waitJS(ctx, t, b, "a successful control hides the error", `document.getElementById('error').hidden`)

	// An error message from the device is shown.
	if err := wsjson.Write(ctx, conn, map[string]string{"type": "error", "error": "camera unplugged"}); err != nil {
		t.Fatal(err)
	}
	waitText(ctx, t, b, "error-text", "camera unplugged")

	// bye: the page drops its connection and reconnects with a new peer connection.
	if err := b.Eval(ctx, `window.oldPC = window.lenscap.pc; true`, nil); err != nil {
		t.Fatal(err)
	}
	if err := wsjson.Write(ctx, conn, map[string]string{"type": "bye"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dev.conns:
	case <-ctx.Done():
		t.Fatal("the page did not reconnect after bye")
	}
	waitJS(ctx, t, b, "a new peer connection after bye", `
		window.lenscap.pc instanceof RTCPeerConnection && window.lenscap.pc !== window.oldPC &&
		window.oldPC.signalingState === 'closed'`)

	dev.mu.Lock()
	if len(dev.unauthorised) > 0 {
		t.Errorf("requests without the token: %v", dev.unauthorised)
	}
	dev.mu.Unlock()
	noConsoleErrors(t, b, "409 /api/privacy")
}

func waitText(ctx context.Context, t *testing.T, b *Browser, id, want string) {
	t.Helper()
	waitJS(ctx, t, b, "#"+id+" = "+want, `document.getElementById(`+jsString(id)+`).textContent === `+jsString(want))
}

func waitJS(ctx context.Context, t *testing.T, b *Browser, what, js string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.WaitFor(ctx, js, 20*time.Millisecond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// saveScreenshot writes a screenshot to $LENSCAP_SCREENSHOTS (kept) or to
// the test's temporary directory, and logs where.
func saveScreenshot(ctx context.Context, t *testing.T, b *Browser, name string) {
	t.Helper()
	png, err := b.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("LENSCAP_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// noConsoleErrors fails t for the page's console errors and exceptions. Chromium logs every
// 4xx answer as a network error, which no page can prevent: the answers the test provokes
// are expected, as "STATUS PATH" ("401 /api/state"), and only those are allowed.
func noConsoleErrors(t *testing.T, b *Browser, expected ...string) {
	t.Helper()
	for _, m := range b.Console() {
		if m.Level != "error" {
			continue
		}
		if m.Source == "network" && expectedAnswer(m, expected) {
			continue
		}
		t.Errorf("console error: %s.%s: %s %s", m.Source, m.Level, m.Text, m.URL)
	}
	for _, e := range b.Exceptions() {
		t.Errorf("page exception: %s", e.Text)
	}
}

func expectedAnswer(m ConsoleMessage, expected []string) bool {
	for _, e := range expected {
		status, path, _ := strings.Cut(e, " ")
		if strings.Contains(m.Text, "status of "+status+" ") && strings.HasSuffix(m.URL, path) {
			return true
		}
	}
	return false
}

// visibleJS is true when the element with id is shown: not hidden, and laid out.
func visibleJS(id string) string {
	return `((el) => !el.hidden && el.offsetParent !== null && el.getBoundingClientRect().height > 0)(document.getElementById(` + jsString(id) + `))`
}

// hiddenJS is true when the element with id is not shown at all (not merely disabled).
func hiddenJS(id string) string {
	return `((el) => el.hidden && el.offsetParent === null)(document.getElementById(` + jsString(id) + `))`
}

func waitConn(ctx context.Context, t *testing.T, dev *stubDevice, what string) *websocket.Conn {
	t.Helper()
	select {
	case c := <-dev.conns:
		return c
	case <-ctx.Done():
		t.Fatalf("the page did not open /ws: %s", what)
		return nil
	}
}

func evalString(ctx context.Context, t *testing.T, b *Browser, js string) string {
	t.Helper()
	var s string
	if err := b.Eval(ctx, js, &s); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return s
}

// keptToken is what the page keeps in the tab's sessionStorage ("" when nothing).
const keptTokenJS = `sessionStorage.getItem('lenscap.token') || ''`

// startStub serves dev and starts a browser on a desktop-sized window.
func startStub(t *testing.T, dev *stubDevice) (*httptest.Server, *Browser, context.Context) {
	t.Helper()
	srv := httptest.NewServer(dev)
	t.Cleanup(srv.Close) // after the browser's cleanup, which closes /ws
	b := New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	if err := b.SetViewport(ctx, 1280, 860, false); err != nil {
		t.Fatal(err)
	}
	return srv, b, ctx
}

func TestViewerPageKeepsTheLinksTokenAndTakesItOutOfTheAddress(t *testing.T) {
	dev := newStubDevice(t)
	srv, b, ctx := startStub(t, dev)
	if err := b.Navigate(ctx, srv.URL+"/#token="+stubToken); err != nil {
		t.Fatal(err)
	}
	waitConn(ctx, t, dev, "with the link's token")
	waitText(ctx, t, b, "banner-text", "Camera off — remote command")
	if href := evalString(ctx, t, b, `location.href`); href != srv.URL+"/" {
		t.Errorf("address after load %q, want %q: the token must leave the address bar", href, srv.URL+"/")
	}
	if hash := evalString(ctx, t, b, `location.hash`); hash != "" {
		t.Errorf("location.hash = %q, want empty", hash)
	}
	if kept := evalString(ctx, t, b, keptTokenJS); kept != stubToken {
		t.Errorf("sessionStorage keeps %q, want the link's token", kept)
	}
	waitJS(ctx, t, b, "the switches and the simulated button for a control credential",
		visibleJS("toggle-video")+" && "+visibleJS("toggle-audio")+" && "+visibleJS("press-button"))
	waitText(ctx, t, b, "who-text", "Signed in as token")

	// A reload, with no fragment any more, keeps working with the kept token.
	if err := b.Eval(ctx, `window.beforeReload = true; location.reload()`, nil); err != nil {
		t.Fatal(err)
	}
	waitJS(ctx, t, b, "the page reloaded", `window.beforeReload === undefined && document.readyState === 'complete'`)
	waitConn(ctx, t, dev, "after a reload")
	waitText(ctx, t, b, "banner-text", "Camera off — remote command")
	waitJS(ctx, t, b, "no prompt after the reload", hiddenJS("token-form"))

	// The token went only where it must: a header, and the WebSocket's query.
	dev.mu.Lock()
	if len(dev.unauthorised) > 0 {
		t.Errorf("refused requests: %v", dev.unauthorised)
	}
	for _, r := range dev.requests {
		if strings.Contains(r, stubToken) && !strings.HasPrefix(r, "GET /ws?") {
			t.Errorf("the token in a request's address: %s", r)
		}
	}
	dev.mu.Unlock()
	noConsoleErrors(t, b)
}

func TestViewerPagePromptsForATokenThenConnects(t *testing.T) {
	dev := newStubDevice(t)
	srv, b, ctx := startStub(t, dev)
	if err := b.Navigate(ctx, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	waitText(ctx, t, b, "banner-text", "This camera needs a token")
	waitJS(ctx, t, b, "the prompt", visibleJS("token-form")+` && document.activeElement === document.getElementById('token-input')`)
	if typ := evalString(ctx, t, b, `document.getElementById('token-input').type`); typ != "password" {
		t.Errorf("token input type %q, want password", typ)
	}
	help := evalString(ctx, t, b, `document.getElementById('token-form').textContent`)
	for _, want := range []string{"lenscap token show", "lenscap token create", "owner"} {
		if !strings.Contains(help, want) {
			t.Errorf("the prompt %q does not say %q", help, want)
		}
	}
	waitJS(ctx, t, b, "no switches before a credential", hiddenJS("toggle-video")+" && "+hiddenJS("press-button")+" && "+hiddenJS("who"))
	saveScreenshot(ctx, t, b, "token-prompt-desktop.png")
	if err := b.SetViewport(ctx, 390, 844, true); err != nil {
		t.Fatal(err)
	}
	saveScreenshot(ctx, t, b, "token-prompt-phone.png")
	dev.mu.Lock()
	for _, r := range dev.requests {
		if r != "GET /" && r != "GET /favicon.ico" {
			t.Errorf("request without a token: %s, want only the page and its icon (the page knows a token is needed)", r)
		}
	}
	dev.mu.Unlock()

	submit := func(tok string) {
		t.Helper()
		if err := b.Eval(ctx, `document.getElementById('token-input').value = `+jsString(tok)+`;
			document.getElementById('token-form').querySelector('button[type=submit]').click()`, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A wrong token: the prompt again, with the camera's reason.
	submit("wrong")
	waitText(ctx, t, b, "banner-text", "The camera refused this token")
	waitText(ctx, t, b, "banner-detail", "A valid bearer token is required.")
	waitJS(ctx, t, b, "the prompt again", visibleJS("token-form"))
	if kept := evalString(ctx, t, b, keptTokenJS); kept != "" {
		t.Errorf("a refused token is kept: %q", kept)
	}

	// The right one, pasted as the whole link: the page connects and keeps it.
	submit(srv.URL + "/#token=" + stubToken)
	waitConn(ctx, t, dev, "with the prompt's token")
	waitText(ctx, t, b, "banner-text", "Camera off — remote command")
	waitJS(ctx, t, b, "the prompt goes", hiddenJS("token-form"))
	waitJS(ctx, t, b, "the switches for a control credential", visibleJS("toggle-video")+" && "+visibleJS("press-button"))
	if kept := evalString(ctx, t, b, keptTokenJS); kept != stubToken {
		t.Errorf("sessionStorage keeps %q, want the prompt's token", kept)
	}
	if href := evalString(ctx, t, b, `location.href`); strings.Contains(href, stubToken) {
		t.Errorf("the token is in the address: %s", href)
	}

	// Forget this token: not kept, the page stops and asks again.
	waitJS(ctx, t, b, "the forget control", visibleJS("forget-token"))
	if err := b.Eval(ctx, `document.getElementById('forget-token').click()`, nil); err != nil {
		t.Fatal(err)
	}
	waitText(ctx, t, b, "banner-text", "This camera needs a token")
	waitJS(ctx, t, b, "the prompt after forgetting", visibleJS("token-form")+" && window.lenscap.pc === null && "+hiddenJS("who"))
	if kept := evalString(ctx, t, b, keptTokenJS); kept != "" {
		t.Errorf("a forgotten token is kept: %q", kept)
	}
	noConsoleErrors(t, b, "401 /api/state")
}

func TestViewerPageWithAViewCredentialOnlyWatches(t *testing.T) {
	dev := newStubDevice(t)
	srv, b, ctx := startStub(t, dev)
	if err := b.Navigate(ctx, srv.URL+"/#token="+viewToken); err != nil {
		t.Fatal(err)
	}
	conn := waitConn(ctx, t, dev, "with a view token")
	waitText(ctx, t, b, "banner-text", "Camera off — remote command")
	waitText(ctx, t, b, "who-text", "Watching as grandma")
	waitJS(ctx, t, b, "the video, its state and the way to forget the token", visibleJS("video")+" && "+visibleJS("video-off")+" && "+visibleJS("forget-token"))
	// Hidden, not merely disabled: the board is the simulated one, whose button a
	// control credential would see.
	waitJS(ctx, t, b, "no switches nor button for a view credential",
		hiddenJS("toggle-video")+" && "+hiddenJS("toggle-audio")+" && "+hiddenJS("press-button"))
	saveScreenshot(ctx, t, b, "viewer-view-role-desktop.png")
	if err := b.SetViewport(ctx, 390, 844, true); err != nil {
		t.Fatal(err)
	}
	saveScreenshot(ctx, t, b, "viewer-view-role-phone.png")

	// A new state keeps them hidden.
	if err := wsjson.Write(ctx, conn, map[string]any{"type": "state", "state": buttonState}); err != nil {
		t.Fatal(err)
	}
	waitText(ctx, t, b, "banner-text", "Camera and microphone off — privacy button")
	waitJS(ctx, t, b, "still no switches", hiddenJS("toggle-video")+" && "+hiddenJS("press-button"))
	dev.mu.Lock()
	if len(dev.privacy) > 0 {
		t.Errorf("a view credential changed privacy: %v", dev.privacy)
	}
	dev.mu.Unlock()
	noConsoleErrors(t, b)
}

func TestViewerPageAsksAgainWhenTheTokenExpires(t *testing.T) {
	dev := newStubDevice(t)
	const old = "old-s3cret"
	dev.credentials[old] = stubCaller{Name: "old", Role: "control"}
	dev.refuse(old, expiredText)
	srv, b, ctx := startStub(t, dev)

	// A link with an expired token: the prompt, with why.
	if err := b.Navigate(ctx, srv.URL+"/#token="+old); err != nil {
		t.Fatal(err)
	}
	waitText(ctx, t, b, "banner-text", "The camera refused this token")
	waitText(ctx, t, b, "banner-detail", "The token has expired.")
	waitJS(ctx, t, b, "the prompt", visibleJS("token-form")+" && "+hiddenJS("toggle-video"))
	if kept := evalString(ctx, t, b, keptTokenJS); kept != "" {
		t.Errorf("an expired token is kept: %q", kept)
	}
	if hash := evalString(ctx, t, b, `location.hash`); hash != "" {
		t.Errorf("location.hash = %q, want empty even for a refused token", hash)
	}
	saveScreenshot(ctx, t, b, "token-expired-desktop.png")

	// A token that expires while the page watches: at the next connection, the prompt.
	if err := b.Eval(ctx, `location.hash = '#token=`+viewToken+`'`, nil); err != nil {
		t.Fatal(err)
	}
	conn := waitConn(ctx, t, dev, "with a new link's token")
	waitText(ctx, t, b, "who-text", "Watching as grandma")
	waitJS(ctx, t, b, "the prompt goes", hiddenJS("token-form"))
	dev.refuse(viewToken, expiredText)
	if err := wsjson.Write(ctx, conn, map[string]string{"type": "bye"}); err != nil {
		t.Fatal(err)
	}
	waitText(ctx, t, b, "banner-text", "The camera refused this token")
	waitText(ctx, t, b, "banner-detail", "The token has expired.")
	waitJS(ctx, t, b, "the prompt after the expiry", visibleJS("token-form")+" && "+hiddenJS("who"))
	if kept := evalString(ctx, t, b, keptTokenJS); kept != "" {
		t.Errorf("an expired token is kept: %q", kept)
	}
	// And the page stops trying until it is given one.
	time.Sleep(1500 * time.Millisecond)
	dev.mu.Lock()
	n := len(dev.unauthorised)
	dev.mu.Unlock()
	if n != 2 {
		t.Errorf("refused requests %d, want 2 (one per expired token): %v", n, dev.unauthorised)
	}
	noConsoleErrors(t, b, "401 /api/state")
}

func TestViewerPageAsksNothingWhenNoTokenIsNeeded(t *testing.T) {
	dev := newOpenStubDevice(t)
	srv, b, ctx := startStub(t, dev)
	if err := b.Navigate(ctx, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	waitConn(ctx, t, dev, "without a token")
	waitText(ctx, t, b, "banner-text", "Camera off — remote command")
	waitJS(ctx, t, b, "the switches and no prompt",
		visibleJS("toggle-video")+" && "+visibleJS("press-button")+" && "+hiddenJS("token-form")+" && "+hiddenJS("who"))
	noConsoleErrors(t, b)
}
