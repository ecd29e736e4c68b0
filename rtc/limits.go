package rtc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Defaults of the limits in Config.
const (
	// DefaultMaxViewers is Config.MaxViewers' default: WebSocket and WHEP viewers together.
	DefaultMaxViewers = 16
	// DefaultMaxViewersPerHolder is Config.MaxViewersPerHolder's default.
	DefaultMaxViewersPerHolder = 4
	// DefaultMaxSDPBytes is Config.MaxSDPBytes' default. A browser's offer or answer for one
	// video and one audio m-section is 3 to 10 KB.
	DefaultMaxSDPBytes = 32 << 10
	defaultRetryAfter  = 5 * time.Second
	defaultWSPing      = 15 * time.Second
	defaultWSIdle      = 45 * time.Second
)

// errTooManyViewers refuses a viewer beyond Config.MaxViewers.
var errTooManyViewers = errors.New("rtc: too many viewers")

// setLimitDefaults fills in and checks the limits of the configuration.
func (c *Config) setLimitDefaults() error {
	switch {
	case c.MaxViewers < 0:
		return fmt.Errorf("rtc: MaxViewers %d: want 0 (the default, %d) or more", c.MaxViewers, DefaultMaxViewers)
	case c.MaxViewers == 0:
		c.MaxViewers = DefaultMaxViewers
	}
	if c.MaxViewersPerHolder <= 0 {
		c.MaxViewersPerHolder = DefaultMaxViewersPerHolder
	}
	if c.MaxSDPBytes <= 0 {
		c.MaxSDPBytes = DefaultMaxSDPBytes
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = defaultRetryAfter
	}
	if c.WSPingInterval <= 0 {
		c.WSPingInterval = defaultWSPing
	}
	if c.WSIdleTimeout <= 0 {
		c.WSIdleTimeout = max(defaultWSIdle, c.WSPingInterval)
	}
	if c.WSIdleTimeout < c.WSPingInterval {
		return fmt.Errorf("rtc: WSIdleTimeout %v is shorter than WSPingInterval %v", c.WSIdleTimeout, c.WSPingInterval)
	}
	return nil
}

// slot is a viewer's place under MaxViewers, reserved before anything is made for the viewer
// and handed to its session by add. The goroutine that reserved it releases it on every path
// (release is a no-op once add took it), so a viewer that fails to be set up frees its place.
type slot struct {
	s      *Server
	holder string // the credential's holder (WithViewer), "" for none
	taken  bool   // released, or handed to a session
}

// reserve takes a viewer's place, or refuses the viewer: errTooManyViewers when MaxViewers
// viewers are connected or being set up, ErrServerClosed after Close.
func (s *Server) reserve(ctx context.Context) (*slot, error) {
	holder := viewerName(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrServerClosed
	}
	if len(s.sessions)+s.reserved >= s.cfg.MaxViewers {
		s.stats.limited.Add(1)
		return nil, errTooManyViewers
	}
	if holder != "" && s.holders[holder] >= s.cfg.MaxViewersPerHolder {
		s.stats.limited.Add(1)
		return nil, fmt.Errorf("%w: %s has %d viewers already", errTooManyViewers, holder, s.holders[holder])
	}
	s.reserved++
	if holder != "" {
		s.holders[holder]++
	}
	return &slot{s: s, holder: holder}, nil
}

// unholdLocked gives back a named holder's place (s.mu held).
func (s *Server) unholdLocked(holder string) {
	if holder == "" {
		return
	}
	if s.holders[holder]--; s.holders[holder] <= 0 {
		delete(s.holders, holder)
	}
}

// release gives the place back unless a session took it.
func (sl *slot) release() {
	sl.s.mu.Lock()
	defer sl.s.mu.Unlock()
	if !sl.taken {
		sl.taken = true
		sl.s.reserved--
		sl.s.unholdLocked(sl.holder)
	}
}

// takenLocked hands the place to a session (s.mu held): it now counts in s.sessions.
func (sl *slot) takenLocked() {
	if !sl.taken {
		sl.taken = true
		sl.s.reserved--
	}
}

// refusal is the text a viewer refused for err is given.
func (s *Server) refusal(err error) string {
	switch {
	case err == errTooManyViewers:
		return fmt.Sprintf("too many viewers (at most %d): try again later", s.cfg.MaxViewers)
	case errors.Is(err, errTooManyViewers):
		return fmt.Sprintf("too many viewers with one credential (at most %d): try again later", s.cfg.MaxViewersPerHolder)
	}
	return err.Error()
}

// refuseWHEP answers a WHEP offer refused by reserve: 503 with Retry-After.
func (s *Server) refuseWHEP(w http.ResponseWriter, err error) {
	secs := int(math.Ceil(s.cfg.RetryAfter.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	http.Error(w, s.refusal(err), http.StatusServiceUnavailable)
}

// SDP refusal reasons, the keys of Server.SDPRefused.
const (
	sdpTooLarge    = "too_large"   // more than MaxSDPBytes
	sdpMalformed   = "malformed"   // pion's parser refused it
	sdpFingerprint = "fingerprint" // no DTLS fingerprint, or an unknown or malformed one
	sdpMedia       = "media"       // m-sections beyond one video and one audio, or other kinds
)

var sdpReasons = []string{sdpTooLarge, sdpMalformed, sdpFingerprint, sdpMedia}

// serverStats are the server's counters for /metrics.
type serverStats struct {
	limited atomic.Uint64
	idle    atomic.Uint64
	sdp     map[string]*atomic.Uint64 // by reason; the keys are fixed by init
}

func (st *serverStats) init() {
	st.sdp = make(map[string]*atomic.Uint64, len(sdpReasons))
	for _, r := range sdpReasons {
		st.sdp[r] = new(atomic.Uint64)
	}
}

// ViewersRefused counts the viewers (WebSocket and WHEP) refused because MaxViewers viewers
// were connected or being set up, over the server's life. Safe for concurrent use.
func (s *Server) ViewersRefused() uint64 { return s.stats.limited.Load() }

// IdleDropped counts the WebSocket viewers dropped because they answered no ping within
// WSIdleTimeout, over the server's life. Safe for concurrent use.
func (s *Server) IdleDropped() uint64 { return s.stats.idle.Load() }

// SDPRefused counts the SDPs from viewers (WHEP offers, WebSocket answers) refused before
// pion saw them, over the server's life, by reason: "too_large" (over MaxSDPBytes),
// "malformed" (not SDP), "fingerprint" (no DTLS fingerprint, or one with a hash function
// other than sha-256, sha-384 or sha-512, or a malformed value) and "media" (more m-sections
// than one video and one audio, or of another kind, data channels included). Every reason is
// in the map, zeros too. Safe for concurrent use; each call returns a new map.
func (s *Server) SDPRefused() map[string]uint64 {
	m := make(map[string]uint64, len(s.stats.sdp))
	for r, n := range s.stats.sdp {
		m[r] = n.Load()
	}
	return m
}

// ViewerSlots is the number of viewers counted against MaxViewers: the sessions and the
// viewers being set up.
func (s *Server) ViewerSlots() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions) + s.reserved
}
