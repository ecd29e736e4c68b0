package main

import (
	"context"
	"errors"
	"fmt"
	"net"

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
	if err := ownSignalAccount(brokerURL, d.cfg.MQTTSignalURL); err != nil {
		return nil, err
	}
	if d.cfg.MQTTSignalURL != "" {
		brokerURL = d.cfg.MQTTSignalURL
		warning, err := mqtt.CheckBrokerSecurity(brokerURL, d.cfg.MQTTInsecure)
		if err != nil {
			return nil, fmt.Errorf("config: mqtt_signal_url: %w (or set mqtt_insecure: true)", err)
		}
		if warning != "" {
			d.log.Warn(warning)
		}
	}
	if !d.verifier.Required() && !brokerOnLoopback(brokerURL) {
		return nil, errors.New("config: mqtt_signalling through a broker beyond this machine needs credentials: " +
			"make the owner credential with `lenscap token show` (same --state-dir), or set token or token_keys")
	}
	r, err := parseRate(d.cfg.RateSignal)
	if err != nil {
		return nil, fmt.Errorf("config: rate_signal: %w", err)
	}
	return &mqtt.SignalConfig{
		Serve:       d.serveSignal,
		Admit:       func(hello []byte) (any, error) { return d.admitSignal(hello) },
		MaxSessions: d.cfg.MaxViewers, // rtc refuses beyond it anyway
		Rate:        r.Rate,
		Burst:       r.Burst,
		BrokerURL:   d.cfg.MQTTSignalURL,
	}, nil
}

// admitSignal checks a hello's credential (on paho's goroutine: a signature check, no I/O).
// A refused viewer is told why, without its credential echoed.
func (d *daemon) admitSignal(hello []byte) (auth.Identity, error) {
	id, err := d.signalIdentity(hello)
	switch {
	case err == nil:
		return id, nil
	case errors.Is(err, mqtt.ErrHello):
		return id, err
	case errors.Is(err, auth.ErrExpired), errors.Is(err, auth.ErrAudience), errors.Is(err, auth.ErrRevoked):
		return id, errors.New(unauthorizedText(err))
	}
	return id, errors.New("a valid credential is required in the hello's token")
}

// serveSignal serves one admitted MQTT signalling session; it ends with its credential.
func (d *daemon) serveSignal(ctx context.Context, s *mqtt.SignalSession) {
	id, _ := s.Admission.(auth.Identity)
	log := d.log.With("component", "signal", "account", s.Account, "session", s.ID, "holder", id.Name)
	if d.verifier.Required() {
		ctx = rtc.WithViewer(ctx, id.Name)
	}
	if !id.Expires.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, id.Expires)
		defer cancel()
	}
	_ = d.srv.ServeSignal(ctx, s, log) // it logs how the session ended
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

// ownSignalAccount refuses signalling on the command connection of a broker beyond this
// machine: viewers could then fill the connection privacy commands arrive on (a flood of their
// own session topics delays and, once the broker drops, loses commands). Signalling needs a
// broker account of its own there (mqtt_signal_url), which the broker keeps apart.
func ownSignalAccount(commandURL, signalURL string) error {
	if signalURL == "" {
		if brokerOnLoopback(commandURL) {
			return nil
		}
		return errors.New("config: mqtt_signalling through a broker beyond this machine needs mqtt_signal_url, " +
			"a broker account of its own for signalling, so that viewers cannot crowd out the camera's commands " +
			"(README: Signalling through the fleet's broker)")
	}
	cu, err1 := mqtt.ParseBrokerURL(commandURL)
	su, err2 := mqtt.ParseBrokerURL(signalURL)
	if err1 == nil && err2 == nil && su.User.Username() != "" && su.User.Username() == cu.User.Username() {
		return errors.New("config: mqtt_signal_url uses the account of mqtt (" + su.User.Username() +
			"): signalling needs an account of its own")
	}
	return nil
}

// brokerOnLoopback says whether a broker URL's host is this machine.
func brokerOnLoopback(raw string) bool {
	u, err := mqtt.ParseBrokerURL(raw)
	return err == nil && isLoopback(net.JoinHostPort(u.Hostname(), "0"))
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
			Help: "Admitted hellos refused because signal_sessions_max sessions were open."}, f(func(s mqtt.SignalStats) float64 { return float64(s.Refused) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "signal_unauthorized_total",
			Help: "Hellos refused for their credential."}, f(func(s mqtt.SignalStats) float64 { return float64(s.Unauthorized) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "signal_limited_total",
			Help: "Viewer messages dropped unread beyond their account's rate (rate_signal)."}, f(func(s mqtt.SignalStats) float64 { return float64(s.Limited) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "signal_dropped_total",
			Help: "Viewer messages dropped: retained, for no session, too large, or beyond a session's queue."}, f(func(s mqtt.SignalStats) float64 { return float64(s.Dropped) })),
	)
}
