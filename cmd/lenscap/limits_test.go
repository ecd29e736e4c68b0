package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeClock is a rate limiter clock that moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// limitsServer serves h behind the limits of cfg on a loopback httptest server.
func limitsServer(t *testing.T, cfg httpLimitsConfig, h http.HandlerFunc) (*httpLimits, *httptest.Server) {
	t.Helper()
	l := newHTTPLimits(cfg)
	ts := httptest.NewServer(l.Handler(h))
	t.Cleanup(ts.Close)
	return l, ts
}

// readsBody answers 200 once it has read the whole body, 400 if it cannot.
func readsBody(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(r.Body); err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

// clientFrom is an HTTP client whose connections come from the loopback address ip.
func clientFrom(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func status(t *testing.T, c *http.Client, method, url string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func TestRateLimitAnswers429AfterTheBurst(t *testing.T) {
	clock := newFakeClock()
	l, ts := limitsServer(t, httpLimitsConfig{WHEP: ratePerClient{Rate: 1, Burst: 3}, Now: clock.Now}, readsBody)
	c := clientFrom(t, "127.0.0.1")
	for i := range 3 {
		if got, _ := status(t, c, "POST", ts.URL+"/whep"); got != http.StatusOK {
			t.Fatalf("request %d of the burst: %d", i+1, got)
		}
	}
	got, h := status(t, c, "POST", ts.URL+"/whep")
	if got != http.StatusTooManyRequests || h.Get("Retry-After") != "1" {
		t.Errorf("after the burst: %d, Retry-After %q; want 429, 1", got, h.Get("Retry-After"))
	}
	// The other classes have their own buckets; other paths none.
	for _, p := range []string{"/ws", "/api/state", "/", "/healthz", "/metrics"} {
		if got, _ := status(t, c, "GET", ts.URL+p); got != http.StatusOK {
			t.Errorf("GET %s after /whep's burst: %d", p, got)
		}
	}
	clock.Advance(time.Second)
	if got, _ := status(t, c, "DELETE", ts.URL+"/whep/abc"); got != http.StatusOK {
		t.Errorf("a second later: %d, want a token back", got)
	}
	if got, _ := status(t, c, "DELETE", ts.URL+"/whep/abc"); got != http.StatusTooManyRequests {
		t.Errorf("/whep/{id} shares /whep's bucket: %d, want 429", got)
	}
	if m := l.Limited(); m["whep"] != 2 || m["ws"] != 0 || m["api"] != 0 {
		t.Errorf("Limited = %v, want whep 2", m)
	}
}

func TestRateLimitIsPerClient(t *testing.T) {
	l, ts := limitsServer(t, httpLimitsConfig{API: ratePerClient{Rate: 1, Burst: 2}, Now: newFakeClock().Now}, readsBody)
	a, b := clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3")
	for range 2 {
		status(t, a, "POST", ts.URL+"/api/privacy")
	}
	if got, _ := status(t, a, "POST", ts.URL+"/api/privacy"); got != http.StatusTooManyRequests {
		t.Fatalf("client a after its burst: %d, want 429", got)
	}
	for i := range 2 {
		if got, _ := status(t, b, "POST", ts.URL+"/api/privacy"); got != http.StatusOK {
			t.Errorf("client b, request %d: %d, want 200 (a's burst is not b's)", i+1, got)
		}
	}
	if n := l.Clients(); n != 2 {
		t.Errorf("Clients = %d, want 2", n)
	}
}

func TestRateLimitClientKeyIsTheWholeAddress(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"192.0.2.1:1000", "192.0.2.1:2000"},
		{"192.0.2.1:1000", "[::ffff:192.0.2.1]:2000"},
		{"[fe80::1%eth0]:1000", "[fe80::1]:2000"},
	} {
		if ka, kb := clientAddrKey(tc.a), clientAddrKey(tc.b); ka != kb {
			t.Errorf("%s and %s: keys %v and %v, want one client", tc.a, tc.b, ka, kb)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"192.0.2.1:1000", "192.0.2.2:1000"},
		{"[2001:db8:1:2::1]:1000", "[2001:db8:1:3::1]:1000"},
		// Neighbours on one LAN share a /64; one must not spend another's bucket.
		{"[2001:db8:1:2::1]:1000", "[2001:db8:1:2:ffff:ffff:ffff:ffff]:2000"},
		{"[fe80::bad]:1000", "[fe80::900d]:1000"},
	} {
		if clientAddrKey(tc.a) == clientAddrKey(tc.b) {
			t.Errorf("%s and %s: one client, want two", tc.a, tc.b)
		}
	}
}

func TestRateLimitForgetsIdleClientsAndBoundsTheTable(t *testing.T) {
	clock := newFakeClock()
	cfg := httpLimitsConfig{WS: ratePerClient{Rate: 0.001, Burst: 1}, MaxClients: 2, ClientIdle: time.Minute, Now: clock.Now}
	l, ts := limitsServer(t, cfg, readsBody)
	ws := func(ip string) int { got, _ := status(t, clientFrom(t, ip), "GET", ts.URL+"/ws"); return got }
	ws("127.0.0.2")
	ws("127.0.0.3")
	if got := ws("127.0.0.2"); got != http.StatusTooManyRequests {
		t.Fatalf("second /ws of .2: %d, want 429", got)
	}
	ws("127.0.0.4") // the table is full: .3, seen least recently, is forgotten
	if n, ev := l.Clients(), l.Evicted(); n != 2 || ev != 1 {
		t.Errorf("Clients %d, Evicted %d; want 2, 1", n, ev)
	}
	if got := ws("127.0.0.2"); got != http.StatusTooManyRequests {
		t.Errorf(".2, still remembered: %d, want 429", got)
	}
	clock.Advance(2 * time.Minute)
	if got := ws("127.0.0.2"); got != http.StatusOK {
		t.Errorf(".2 after being idle: %d, want 200 (forgotten, a full bucket)", got)
	}
	if n, ev := l.Clients(), l.Evicted(); n != 1 || ev != 1 {
		t.Errorf("after the idle time: Clients %d, Evicted %d; want 1, 1", n, ev)
	}
	// Many addresses cannot grow the table.
	for i := range 1000 {
		l.allow(clientAddrKey(fmt.Sprintf("[2001:db8:%x::1]:1", i)), classWS)
	}
	if n := l.Clients(); n != 2 {
		t.Errorf("after 1000 addresses: %d clients, want MaxClients (2)", n)
	}
}

// trickle sends a POST's headers on a raw connection, then its body one byte every gap
// until the connection fails; it returns the response.
func trickle(t *testing.T, addr, path string, gap time.Duration) (*http.Response, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	start := time.Now()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", path)
	go func() {
		for {
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(gap)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response to a trickled body: %v", err)
	}
	resp.Body.Close()
	return resp, time.Since(start)
}

func TestSlowBodyIsCutOffWith408(t *testing.T) {
	l, ts := limitsServer(t, httpLimitsConfig{BodyTimeout: time.Second}, readsBody)
	resp, took := trickle(t, ts.Listener.Addr().String(), "/api/privacy", 500*time.Millisecond)
	t.Logf("a body trickled 1 byte per 500 ms: %s after %v", resp.Status, took.Round(10*time.Millisecond))
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("%s, want 408", resp.Status)
	}
	if took > 3*time.Second {
		t.Errorf("cut off after %v, want about the 1 s BodyTimeout", took)
	}
	if n := l.SlowBodies(); n != 1 {
		t.Errorf("SlowBodies = %d, want 1", n)
	}
}

func TestBodyDeadlineLeavesNormalRequestsAndWebSocketsAlone(t *testing.T) {
	const timeout = 300 * time.Millisecond
	l, ts := limitsServer(t, httpLimitsConfig{BodyTimeout: timeout}, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ws":
			echo(w, r)
		case "/api/slow": // reads the body, then works longer than the body's deadline
			_, _ = io.ReadAll(r.Body)
			time.Sleep(3 * timeout)
			if err := r.Context().Err(); err != nil {
				http.Error(w, "request cancelled: "+err.Error(), http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, "ok")
		default:
			readsBody(w, r)
		}
	})
	c := clientFrom(t, "127.0.0.1")
	if got, _ := status(t, c, "POST", ts.URL+"/api/slow"); got != http.StatusOK {
		t.Errorf("a handler slower than the body's deadline: %d, want 200", got)
	}
	time.Sleep(2 * timeout) // the kept-alive connection idles past the deadline
	if got, _ := status(t, c, "POST", ts.URL+"/api/privacy"); got != http.StatusOK {
		t.Errorf("the next request on the connection: %d, want 200", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	time.Sleep(3 * timeout)
	if err := conn.Write(ctx, websocket.MessageText, []byte("still there?")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := conn.Read(ctx); err != nil || string(got) != "still there?" {
		t.Errorf("WebSocket after the body deadline: %q, %v", got, err)
	}
	if n := l.SlowBodies(); n != 0 {
		t.Errorf("SlowBodies = %d, want 0", n)
	}
}

// echo is a WebSocket handler that sends every message back.
func echo(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		typ, b, err := c.Read(r.Context())
		if err != nil {
			return
		}
		if err := c.Write(r.Context(), typ, b); err != nil {
			return
		}
	}
}

func TestTheLimitsAreWiredAndExported(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--rate-api", "1/s,2", "--max-viewers", "3")
	codes := map[int]int{}
	for range 5 {
		code, _ := d.do(t, "GET", "/api/state", "", nil)
		codes[code]++
	}
	if codes[http.StatusOK] != 2 || codes[http.StatusTooManyRequests] != 3 {
		t.Errorf("5 quick requests with rate_api 1/s,2: %v", codes)
	}
	_, body := d.do(t, "GET", "/metrics", "", nil)
	for _, want := range []string{"lenscap_viewers_max 3", `lenscap_http_rate_limited_total{path="api"} 3`,
		"lenscap_viewers_refused_total 0", `lenscap_sdp_refused_total{reason="fingerprint"} 0`,
		"lenscap_ws_idle_dropped_total 0", "lenscap_http_slow_bodies_total 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestAHalfOpenConnectionIsClosedAfterBodyTimeout(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--body-timeout", "300ms")
	conn, err := net.Dial("tcp", strings.TrimPrefix(d.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /api/state HTTP/1.1\r\nHost: x\r\n")); err != nil { // and never the end
		t.Fatal(err)
	}
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn)
	if took := time.Since(start); err != nil || took > 3*time.Second {
		t.Errorf("connection held %s (%v), want closed after about 300ms", took, err)
	}
}

func TestConnectionsBeyondTheLimitsAreClosedAtOnce(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--max-conns-per-client", "3")
	addr := strings.TrimPrefix(d.url, "http://")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 3 { // sockets that never send a byte
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a fourth connection from one client: read %v, want EOF (closed at once)", err)
	}
	held[0].Close()
	held = held[1:]
	deadline := time.Now().Add(3 * time.Second)
	for { // a new connection, within the limit again once the server has seen the close
		res, err := http.Get(d.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection after one was closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	held[0].Close()
	held[1].Close()
	held = nil
	var body []byte
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res, err := http.Get(d.url + "/metrics")
		if err == nil {
			body, _ = io.ReadAll(res.Body)
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	if !strings.Contains(string(body), "lenscap_http_conns_refused_total ") || strings.Contains(string(body), "lenscap_http_conns_refused_total 0") {
		t.Errorf("/metrics does not count the refused connection")
	}
}
