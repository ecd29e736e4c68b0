package main

import (
	"github.com/prometheus/client_golang/prometheus"
)

// limitSources are the limits' settings and counters /metrics reads (rtc.Server's and the
// HTTP middleware's). A nil function leaves its metric out.
type limitSources struct {
	MaxViewers     int
	ViewersRefused func() uint64
	SDPRefused     func() map[string]uint64 // by reason
	IdleDropped    func() uint64
	RateLimited    func() map[string]uint64 // by path class: whep, ws, api
	SlowBodies     func() uint64
	Clients        func() int
	ConnsRefused   func() uint64
	Conns          func() int
}

// registerLimits adds the limits' metrics to reg.
func registerLimits(reg *prometheus.Registry, l limitSources) {
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help}, f))
	}
	counter := func(name, help string, f func() uint64) {
		if f != nil {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help},
				func() float64 { return float64(f()) }))
		}
	}
	labelled := func(name, help, label string, f func() map[string]uint64) {
		if f == nil {
			return
		}
		for k := range f() { // the keys are fixed: every reason or class is always present
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help,
				ConstLabels: prometheus.Labels{label: k}}, func() float64 { return float64(f()[k]) }))
		}
	}
	gauge("viewers_max", "The most viewers at once (max_viewers).", func() float64 { return float64(l.MaxViewers) })
	counter("viewers_refused_total", "Viewers refused because max_viewers were connected.", l.ViewersRefused)
	labelled("sdp_refused_total", "SDP offers and answers refused, by reason.", "reason", l.SDPRefused)
	counter("ws_idle_dropped_total", "WebSocket viewers dropped for not answering pings (ws_idle).", l.IdleDropped)
	labelled("http_rate_limited_total", "Requests answered 429, by what they asked for.", "path", l.RateLimited)
	counter("http_slow_bodies_total", "Requests whose body took longer than body_timeout.", l.SlowBodies)
	counter("http_conns_refused_total", "Connections closed at once for max_conns or max_conns_per_client.", l.ConnsRefused)
	if l.Conns != nil {
		gauge("http_conns", "HTTP connections open.", func() float64 { return float64(l.Conns()) })
	}
	if l.Clients != nil {
		gauge("http_clients", "Clients the rate limiter remembers.", func() float64 { return float64(l.Clients()) })
	}
}
