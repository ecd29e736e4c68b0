package chromiumtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

const stubToken = "s3cret"

// stubDevice serves the viewer page with the daemon's HTTP and WebSocket
// contract (DESIGN.md) faked: no WebRTC, only state, errors and bye.
type stubDevice struct {
	t     *testing.T
	page  []byte
	conns chan *websocket.Conn // each accepted /ws connection, after its first state message

	mu           sync.Mutex
	unauthorised []string // requests that lacked the token
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
	return &stubDevice{t: t, page: page, conns: make(chan *websocket.Conn, 8)}
}

func (d *stubDevice) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The page and its icon need no token, as lenscap serves them.
	if r.URL.Path != "/" && r.URL.Path != "/favicon.ico" && r.Header.Get("Authorization") != "Bearer "+stubToken && r.URL.Query().Get("token") != stubToken {
		d.mu.Lock()
		d.unauthorised = append(d.unauthorised, r.Method+" "+r.URL.String())
		d.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorised"})
		return
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
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(d.page)
	case r.URL.Path == "/api/state" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, apiState)
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
	d.conns <- c
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

	if err := b.Navigate(ctx, srv.URL+"/?token="+stubToken); err != nil {
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
	if ex := b.Exceptions(); len(ex) > 0 {
		t.Errorf("page exceptions: %+v", ex)
	}
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
