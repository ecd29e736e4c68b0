package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"

	"github.com/lenscap/lenscap/cmd/internal/auth"
	"github.com/lenscap/lenscap/mqtt"
	"github.com/lenscap/lenscap/rtc"
	"github.com/prometheus/client_golang/prometheus"
)

// signalConfig turns MQTT signalling on when mqtt_signalling says so: viewers that reach the
// broker, and nothing else of the camera, are served as /ws viewers are (DESIGN.md, "MQTT
// signalling"). Each session's hello carries the viewer's credential; with none in force the
// broker must be on this machine, as the HTTP listener must be (listenPolicy).
func (d *daemon) signalConfig(brokerURL string) (*mqtt.SignalConfig, error) {
	if !d.cfg.MQTTSignalling {
		return nil, nil
	}
	if !d.verifier.Required() && !brokerOnLoopback(brokerURL) {
		return nil, errors.New("config: mqtt_signalling through a broker beyond this machine needs credentials: " +
			"make the owner credential with `lenscap token show` (same --state-dir), or set token or token_keys")
	}
	return &mqtt.SignalConfig{
		Serve:       d.serveSignal,
		MaxSessions: d.cfg.MaxViewers, // rtc refuses beyond it anyway; hellos waiting count too
	}, nil
}

// serveSignal serves one MQTT signalling session: its hello's credential must be valid (any
// role may watch); the session ends with it.
func (d *daemon) serveSignal(ctx context.Context, s *mqtt.SignalSession) {
	log := d.log.With("component", "signal", "account", s.Account, "session", s.ID)
	id, err := d.signalIdentity(s.Hello)
	if err != nil {
		log.Info("viewer refused", "err", err)
		d.refuseSignal(ctx, s, err)
		return
	}
	if d.verifier.Required() {
		ctx = rtc.WithViewer(ctx, id.Name)
	}
	if !id.Expires.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, id.Expires)
		defer cancel()
	}
	_ = d.srv.ServeSignal(ctx, s, log.With("holder", id.Name)) // it logs how the session ended
}

// signalIdentity is the holder of a hello's credential.
func (d *daemon) signalIdentity(hello []byte) (auth.Identity, error) {
	h, err := mqtt.ParseHello(hello)
	if err != nil {
		return auth.Identity{}, err
	}
	if !d.verifier.Required() {
		return localIdentity, nil
	}
	id, err := d.verifier.Verify(h.Token)
	if err != nil {
		return auth.Identity{}, err
	}
	return id, nil // every role may watch
}

// refuseSignal tells a refused viewer why (without echoing its credential), then bye.
func (d *daemon) refuseSignal(ctx context.Context, s *mqtt.SignalSession, err error) {
	why := "a valid credential is required in the hello's token"
	switch {
	case errors.Is(err, mqtt.ErrHello):
		why = err.Error()
	case errors.Is(err, auth.ErrExpired), errors.Is(err, auth.ErrAudience), errors.Is(err, auth.ErrRevoked):
		why = unauthorizedText(err)
	}
	for _, m := range []map[string]string{{"type": "error", "error": why}, {"type": "bye"}} {
		b, _ := json.Marshal(m)
		if err := s.Send(ctx, b); err != nil {
			return
		}
	}
}

// brokerOnLoopback says whether a broker URL's host is this machine.
func brokerOnLoopback(raw string) bool {
	u, err := mqtt.ParseBrokerURL(raw)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(u.Hostname())
	return err == nil && ip.IsLoopback() && net.ParseIP(u.Hostname()) != nil
}

// registerSignal exports MQTT signalling's sessions and refusals (when it is on).
func registerSignal(reg *prometheus.Registry, mq *mqtt.Client, max int) {
	f := func(get func(mqtt.SignalStats) float64) func() float64 {
		return func() float64 { return get(mq.SignalStats()) }
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: "signal_sessions",
			Help: "MQTT signalling sessions, served or being set up."}, f(func(s mqtt.SignalStats) float64 { return float64(s.Active) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: "signal_sessions_max",
			Help: "The most MQTT signalling sessions at once (max_viewers)."}, func() float64 { return float64(max) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "signal_sessions_total",
			Help: "MQTT signalling sessions started by a hello."}, f(func(s mqtt.SignalStats) float64 { return float64(s.Started) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "signal_refused_total",
			Help: "Hellos refused because signal_sessions_max sessions were open."}, f(func(s mqtt.SignalStats) float64 { return float64(s.Refused) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "signal_dropped_total",
			Help: "Viewer messages dropped: for no session, too large, or beyond a session's queue."}, f(func(s mqtt.SignalStats) float64 { return float64(s.Dropped) })),
	)
}
