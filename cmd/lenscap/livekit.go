package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/settings"
	"github.com/lenscap/lenscap/rtc/livekit"
	"github.com/prometheus/client_golang/prometheus"
)

// LiveKit is where the camera publishes for more viewers than it can serve itself (rtc/livekit).
type LiveKit struct {
	// URL is the LiveKit server (ws:// or wss://; http(s):// is taken as ws(s)://). Empty: off.
	URL string
	// APIKey and APISecret let the camera mint its own join tokens; Token is one minted
	// elsewhere. The secret and the token are secrets: log Redacted().
	APIKey, APISecret, Token string
	// Room and Identity are the room joined and the camera's identity in it; empty: the id.
	Room, Identity string
}

// livekitSettings are the LiveKit publisher's.
func livekitSettings() []settings.Setting[Config] {
	return []settings.Setting[Config]{
		configString("livekit_url", "LiveKit server `URL` (wss://...) to publish into; empty: none",
			func(c *Config) *string { return &c.LiveKit.URL }),
		configString("livekit_api_key", "LiveKit API `key`: the camera mints its own join tokens (with livekit_api_secret)",
			func(c *Config) *string { return &c.LiveKit.APIKey }),
		configString("livekit_api_secret", "LiveKit API `secret` (never logged)",
			func(c *Config) *string { return &c.LiveKit.APISecret }),
		configString("livekit_token", "a LiveKit join `token` minted elsewhere, instead of a key and secret (never logged)",
			func(c *Config) *string { return &c.LiveKit.Token }),
		configString("livekit_room", "LiveKit `room` (default: the camera's id)",
			func(c *Config) *string { return &c.LiveKit.Room }),
		configString("livekit_identity", "the camera's `identity` in the room (default: its id)",
			func(c *Config) *string { return &c.LiveKit.Identity }),
	}
}

// validate checks each LiveKit setting (the secrets are never printed); which credentials go
// together is livekit.New's to say, when the daemon starts.
func (l LiveKit) validate(bad func(key, format string, args ...any)) {
	if l.URL != "" {
		u, err := url.Parse(l.URL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https"):
			bad("livekit_url", "want ws://HOST:PORT or wss://HOST")
		case u.User != nil:
			bad("livekit_url", "no credentials in the URL: use livekit_api_key and livekit_api_secret, or livekit_token")
		}
	}
	if l.APISecret != "" && len(l.APISecret) < 32 {
		bad("livekit_api_secret", "want at least 32 characters")
	}
}

// redacted hides the secret and the token.
func (l LiveKit) redacted() LiveKit {
	if l.APISecret != "" {
		l.APISecret = redactedMark
	}
	if l.Token != "" {
		l.Token = redactedMark
	}
	return l
}

// newLiveKit is the publisher the configuration asks for; nil when livekit_url is empty.
func newLiveKit(cfg Config, onParticipants func(int), log *slog.Logger) (*livekit.Publisher, error) {
	if cfg.LiveKit.URL == "" {
		return nil, nil
	}
	lc, err := livekitConfig(cfg)
	if err != nil {
		return nil, err
	}
	lc.OnParticipants, lc.Logger = onParticipants, log
	return livekit.New(lc)
}

// livekitConfig is the publisher's configuration from the daemon's.
func livekitConfig(cfg Config) (livekit.Config, error) {
	l := cfg.LiveKit
	u, err := url.Parse(l.URL)
	if err != nil {
		return livekit.Config{}, fmt.Errorf("livekit_url: %w", err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	return livekit.Config{URL: u.String(), APIKey: l.APIKey, APISecret: l.APISecret, Token: l.Token,
		Room: orDefault(l.Room, cfg.ID), Identity: orDefault(l.Identity, cfg.ID)}, nil
}

// livekitDoctorLine says whether the camera could join its room (nothing published), and the
// problem if not.
func livekitDoctorLine(cfg Config) (line string, problem error) {
	lc, err := livekitConfig(cfg)
	if err == nil {
		_, err = livekit.New(lc) // the credentials' combination
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = livekit.Check(ctx, lc)
	}
	if err != nil {
		return "FAILING: " + err.Error(), err
	}
	return fmt.Sprintf("ok (room %s as %s: reachable, credentials accepted)", lc.Room, lc.Identity), nil
}

// registerLiveKit exports the publisher's state and counters.
func registerLiveKit(reg *prometheus.Registry, p *livekit.Publisher) {
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help}, f))
	}
	gauge("livekit_connected", "1 while the camera is in its LiveKit room, else 0.", func() float64 { return boolFloat(p.Connected()) })
	gauge("livekit_participants", "Other participants in the LiveKit room.", func() float64 { return float64(p.Participants()) })
	st := p.Stats()
	for _, c := range []struct {
		name, help string
		v          *atomic.Uint64
	}{
		{"livekit_joins_total", "Times the camera joined its LiveKit room.", &st.Joins},
		{"livekit_rejoins_total", "Times the SDK got the camera back into the room after a lost connection.", &st.Rejoins},
		{"livekit_disconnects_total", "Sessions with the LiveKit room that ended.", &st.Disconnects},
		{"livekit_publishes_total", "Tracks published into the room (after a lift, a join, a viewer on demand).", &st.Publishes},
		{"livekit_unpublishes_total", "Tracks unpublished from the room (a cut, or the sources parked).", &st.Unpublishes},
		{"livekit_failures_total", "Joins and publications that failed.", &st.Failures},
		{"livekit_frames_total", "Frames written into the room.", &st.Frames},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: c.name, Help: c.help},
			func() float64 { return float64(c.v.Load()) }))
	}
}
