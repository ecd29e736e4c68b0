package tlsconf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testSite is what the end-to-end tests serve: a page whose load ends only once the page's
// script has talked with /ws over the same origin (so a browser that loads it has done wss://
// too), and /ws, which sends "hello over wss" and waits for "seen".
type testSite struct {
	pages atomic.Int32  // requests for the page
	seen  chan struct{} // closed when /ws has read "seen"
	done  atomic.Bool
}

const sitePage = `<!doctype html><title>lenscap tls</title><p id=r>pending</p><script>
const ws = new WebSocket("wss://" + location.host + "/ws");
ws.onmessage = e => { document.getElementById("r").textContent = "ws: " + e.data; ws.send("seen"); };
ws.onerror = () => { document.getElementById("r").textContent = "ws: error"; };
</script>
`

func newTestSite() *testSite { return &testSite{seen: make(chan struct{})} }

func (s *testSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		s.pages.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, sitePage)
		w.(http.Flusher).Flush()
		select { // the load event waits for the end of the document
		case <-s.seen:
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
		fmt.Fprintf(w, "<p>%s</p>\n", r.Proto)
	case "/ws":
		s.serveWS(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *testSite) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("hello over wss")); err != nil {
		return
	}
	if _, msg, err := c.Read(ctx); err == nil && string(msg) == "seen" && s.done.CompareAndSwap(false, true) {
		close(s.seen)
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// serveHTTPS serves h on a loopback port with Config(r), as the daemon does, until t ends;
// it returns the https:// URL.
func serveHTTPS(t *testing.T, r *Reloader, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: Config(r), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)} // handshakes refused on purpose
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	})
	return "https://" + ln.Addr().String()
}

func loadSelfSigned(t *testing.T) *Reloader {
	t.Helper()
	cert, key, _, err := Ensure(t.TempDir(), "cam", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r, err := Load(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func pinnedClient(spki string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: PinnedConfig(spki), ForceAttemptHTTP2: true}}
}

func TestTLSGoClientPinningTheSPKIFetchesOverH2(t *testing.T) {
	r := loadSelfSigned(t)
	url := serveHTTPS(t, r, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, "hello "+req.Proto)
	}))
	resp, err := pinnedClient(r.SPKIHash()).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello HTTP/2.0" {
		t.Errorf("body %q, want hello HTTP/2.0", body)
	}
	if _, err := pinnedClient(loadSelfSigned(t).SPKIHash()).Get(url); !errors.Is(err, ErrNotPinned) {
		t.Errorf("a client pinning another key: %v, want ErrNotPinned", err)
	}
	if _, err := (&http.Client{Timeout: 10 * time.Second}).Get(url); err == nil {
		t.Error("a client trusting the system's CAs accepted the self-signed certificate")
	}
}

func TestTLSReloadIsServedFromTheNextHandshake(t *testing.T) {
	r := loadSelfSigned(t)
	url := serveHTTPS(t, r, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {}))
	old := r.SPKIHash()
	other := loadSelfSigned(t)
	copyFile(t, other.certFile, r.certFile)
	copyFile(t, other.keyFile, r.keyFile)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := pinnedClient(old).Get(url); !errors.Is(err, ErrNotPinned) {
		t.Errorf("the old key after Reload: %v, want ErrNotPinned", err)
	}
	if resp, err := pinnedClient(other.SPKIHash()).Get(url); err != nil {
		t.Errorf("the new key after Reload: %v", err)
	} else {
		resp.Body.Close()
	}
}

func TestTLSWebSocketOverWSSWithAPinnedClient(t *testing.T) {
	r := loadSelfSigned(t)
	site := newTestSite()
	url := serveHTTPS(t, r, site)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// No ForceAttemptHTTP2: a WebSocket handshake is an HTTP/1.1 upgrade.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: PinnedConfig(r.SPKIHash())}}
	c, _, err := websocket.Dial(ctx, "wss"+url[len("https"):]+"/ws", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "hello over wss" {
		t.Fatalf("read %q, %v", msg, err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("seen")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-site.seen:
	case <-ctx.Done():
		t.Fatal("the server did not read the client's message")
	}
}
