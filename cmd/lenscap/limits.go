package main

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// ratePerClient is a token bucket per client: Rate requests a second on average, Burst at
// once. rate.Inf lets everything through.
type ratePerClient struct {
	Rate  rate.Limit
	Burst int
}

// httpLimitsConfig configures httpLimits. A zero field takes the default in its comment.
type httpLimitsConfig struct {
	// WHEP limits /whep and /whep/... (offers and hang-ups); default 1/s, burst 10.
	WHEP ratePerClient
	// WS limits /ws (WebSocket viewers connecting); default 1/s, burst 10.
	WS ratePerClient
	// API limits /api/...; default 10/s, burst 50. Other paths (the page, /healthz,
	// /metrics) are not rate limited.
	API ratePerClient
	// MaxClients bounds the clients remembered; when it is full the least recently seen one
	// is forgotten. Default 4096 (about 1.5 MB).
	MaxClients int
	// ClientIdle forgets a client not seen for that long. It then starts again with full
	// buckets, which it would have had anyway: at the defaults a bucket refills in 10 s.
	// Default 1 minute.
	ClientIdle time.Duration
	// BodyTimeout bounds the reading of a request's body, from the end of its headers
	// (http.ResponseController.SetReadDeadline): a body still unread then is cut off and the
	// request answered 408. Not applied to bodiless requests, WebSocket upgrades included.
	// Default 10 s.
	BodyTimeout time.Duration
	// Now is the rate limiter's clock; nil means time.Now. Read deadlines use the real clock.
	Now func() time.Time
}

func (c *httpLimitsConfig) setDefaults() {
	def := func(r *ratePerClient, perSec rate.Limit, burst int) {
		if r.Rate <= 0 {
			r.Rate = perSec
		}
		if r.Burst <= 0 {
			r.Burst = burst
		}
	}
	def(&c.WHEP, 1, 10)
	def(&c.WS, 1, 10)
	def(&c.API, 10, 50)
	if c.MaxClients <= 0 {
		c.MaxClients = 4096
	}
	if c.ClientIdle <= 0 {
		c.ClientIdle = time.Minute
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// limitClass is what a path is rate limited as.
type limitClass int

const (
	classWHEP limitClass = iota
	classWS
	classAPI
	numClasses
)

var classNames = [numClasses]string{"whep", "ws", "api"}

// classOf is the class of a request path; false for paths that are not rate limited.
func classOf(path string) (limitClass, bool) {
	switch {
	case path == "/whep" || strings.HasPrefix(path, "/whep/"):
		return classWHEP, true
	case path == "/ws":
		return classWS, true
	case strings.HasPrefix(path, "/api/"):
		return classAPI, true
	}
	return 0, false
}

// httpLimits is HTTP middleware (Handler) that bounds what one client can make the daemon do:
// a rate per client (its remote IP address) for each limitClass,
// answered 429 with Retry-After beyond it, and a deadline for reading a request's body.
// It trusts RemoteAddr: behind a proxy every client would be the proxy.
type httpLimits struct {
	cfg httpLimitsConfig

	mu      sync.Mutex
	clients map[netip.Addr]*list.Element // of *limitedClient, in lru
	lru     *list.List                   // most recently seen first

	limited    [numClasses]atomic.Uint64
	evicted    atomic.Uint64
	slowBodies atomic.Uint64
}

// limitedClient is one client's buckets.
type limitedClient struct {
	key     netip.Addr
	seen    time.Time
	buckets [numClasses]*rate.Limiter
}

// newHTTPLimits returns the middleware for cfg (zero fields take the defaults).
func newHTTPLimits(cfg httpLimitsConfig) *httpLimits {
	cfg.setDefaults()
	return &httpLimits{cfg: cfg, clients: make(map[netip.Addr]*list.Element), lru: list.New()}
}

// Handler puts the limits in front of next.
func (l *httpLimits) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := classOf(r.URL.Path); ok {
			if wait, ok := l.allow(clientAddrKey(r.RemoteAddr), c); !ok {
				l.tooMany(w, wait)
				return
			}
		}
		if r.Body != nil && r.Body != http.NoBody && r.Header.Get("Upgrade") == "" {
			w, r = l.bodyDeadline(w, r)
		}
		next.ServeHTTP(w, r)
	})
}

// clientAddrKey is the client a remote address counts as: its IP address, without port or
// zone. An unparsable address counts as the zero Addr.
func clientAddrKey(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	// The whole address, IPv6 too: the hosts of a LAN share one /64 (and every link-local
	// client fe80::/64), and one of them must not spend its neighbours' buckets. The table is
	// bounded by MaxClients however many addresses an attacker has.
	return ap.Addr().Unmap().WithZone("")
}

// allow takes a token from the client's bucket of class c, or says how long to wait for one.
func (l *httpLimits) allow(key netip.Addr, c limitClass) (wait time.Duration, ok bool) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	res := l.clientLocked(key, now).buckets[c].ReserveN(now, 1)
	if !res.OK() {
		l.limited[c].Add(1)
		return time.Minute, false
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		l.limited[c].Add(1)
		return d, false
	}
	return 0, true
}

// clientLocked finds or makes the client of key, marked seen now, after forgetting the
// clients idle for ClientIdle and, when the table is full, the least recently seen one.
func (l *httpLimits) clientLocked(key netip.Addr, now time.Time) *limitedClient {
	for e := l.lru.Back(); e != nil && now.Sub(e.Value.(*limitedClient).seen) >= l.cfg.ClientIdle; e = l.lru.Back() {
		l.forgetLocked(e)
	}
	if e, ok := l.clients[key]; ok {
		l.lru.MoveToFront(e)
		cl := e.Value.(*limitedClient)
		cl.seen = now
		return cl
	}
	if l.lru.Len() >= l.cfg.MaxClients {
		l.forgetLocked(l.lru.Back())
		l.evicted.Add(1)
	}
	cl := &limitedClient{key: key, seen: now}
	for c, r := range [numClasses]ratePerClient{l.cfg.WHEP, l.cfg.WS, l.cfg.API} {
		cl.buckets[c] = rate.NewLimiter(r.Rate, r.Burst)
	}
	l.clients[key] = l.lru.PushFront(cl)
	return cl
}

func (l *httpLimits) forgetLocked(e *list.Element) {
	delete(l.clients, e.Value.(*limitedClient).key)
	l.lru.Remove(e)
}

// tooMany answers 429 with Retry-After in whole seconds (at least 1).
func (l *httpLimits) tooMany(w http.ResponseWriter, wait time.Duration) {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = fmt.Fprintf(w, "{\"error\":\"too many requests: retry in %d s\"}\n", secs)
}

// Limited counts the requests refused with 429, by class ("whep", "ws", "api"), over the
// middleware's life; every class is in the map. Safe for concurrent use.
func (l *httpLimits) Limited() map[string]uint64 {
	m := make(map[string]uint64, numClasses)
	for c, name := range classNames {
		m[name] = l.limited[c].Load()
	}
	return m
}

// Evicted counts the clients forgotten because MaxClients were remembered (not those
// forgotten for being idle): many of them suggest requests from many addresses.
func (l *httpLimits) Evicted() uint64 { return l.evicted.Load() }

// SlowBodies counts the requests whose body was cut off by BodyTimeout.
func (l *httpLimits) SlowBodies() uint64 { return l.slowBodies.Load() }

// Clients is the number of clients remembered now.
func (l *httpLimits) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// bodyDeadline sets the connection's read deadline BodyTimeout from now and turns the
// handler's error answer into 408 when the body was cut off. net/http clears the deadline
// itself once the body has been read (before it waits in the background for the client to
// hang up, which a deadline would turn into a cancelled request). Without a deadline to set
// (a connection that cannot), it changes nothing.
func (l *httpLimits) bodyDeadline(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(l.cfg.BodyTimeout)); err != nil {
		return w, r
	}
	body := &deadlineBody{ReadCloser: r.Body, l: l}
	r = r.WithContext(r.Context()) // a shallow copy: the caller's request keeps its body
	r.Body = body
	return &bodyTimeoutWriter{ResponseWriter: w, body: body}, r
}

// deadlineBody is a request body read under a deadline.
type deadlineBody struct {
	io.ReadCloser
	l        *httpLimits
	timedOut atomic.Bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !b.timedOut.Swap(true) {
		b.l.slowBodies.Add(1)
	}
	return n, err
}

// bodyTimeoutWriter answers 408 Request Timeout for a handler's error answer to a request
// whose body was cut off.
type bodyTimeoutWriter struct {
	http.ResponseWriter
	body  *deadlineBody
	wrote bool
}

func (w *bodyTimeoutWriter) WriteHeader(code int) {
	if !w.wrote && code >= 400 && w.body.timedOut.Load() {
		code = http.StatusRequestTimeout
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *bodyTimeoutWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *bodyTimeoutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// newDaemonLimits is the middleware as the configuration sets it.
func newDaemonLimits(cfg Config) (*httpLimits, error) {
	var lc httpLimitsConfig
	for _, r := range []struct {
		dst *ratePerClient
		v   string
	}{{&lc.WHEP, cfg.RateWHEP}, {&lc.WS, cfg.RateWS}, {&lc.API, cfg.RateAPI}} {
		var err error
		if *r.dst, err = parseRate(r.v); err != nil {
			return nil, fmt.Errorf("config: %s: %w", r.v, err)
		}
	}
	lc.BodyTimeout = cfg.BodyTimeout
	return newHTTPLimits(lc), nil
}
