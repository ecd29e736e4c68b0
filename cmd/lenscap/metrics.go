package main

import (
	"net/http"
	"time"

	"github.com/lenscap/lenscap/board"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/mqtt"
	"github.com/lenscap/lenscap/rtc"
	"github.com/lenscap/lenscap/rtc/livekit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsSources are the counters and gauges /metrics reads, as functions of the media kind so
// the daemon wires whatever owns each number (device.Source, the rtc server, the camera's
// capture and encoder) without this file importing those internals. A nil function leaves its
// metric out. Counter functions must never decrease (Prometheus counters); they are read on
// every scrape, from the scrape's goroutine, so they must be safe for concurrent use and cheap.
type metricsSources struct {
	// Kinds are the media kinds the device has sources for (video, audio).
	Kinds []device.Kind

	// FramesCaptured and FramesEncoded count frames out of the source's capture and out of its
	// encoder, over the process's life (across privacy cycles).
	FramesCaptured func(device.Kind) uint64
	FramesEncoded  func(device.Kind) uint64
	// KeyframeFirst counts the source's streams whose first frame was a keyframe
	// (device.Source.KeyframeFirst): equal to SourceOpens when every stream starts decodable.
	KeyframeFirst func(device.Kind) uint64
	// SourceOpens and SourceCloses count the source's device opens and closes
	// (device.Source.Opens, device.Source.Closes).
	SourceOpens  func(device.Kind) uint64
	SourceCloses func(device.Kind) uint64
	// RTPPackets and RTPBytes count RTP packets and their bytes (header and payload) written to
	// viewers, summed over viewers.
	RTPPackets func(device.Kind) uint64
	RTPBytes   func(device.Kind) uint64
	// Private is the kind's privacy state; Live is true while its source is open and live.
	Private func(device.Kind) bool
	Live    func(device.Kind) bool
	// Powered is false once a kind's power interlock confirmed its device off.
	Powered func(device.Kind) bool
	// Viewers is the number of viewer sessions.
	Viewers func() int
	// Limits are the limits' settings and counters; nil: not exported.
	Limits *limitSources
	// Room is the LiveKit publisher; nil: none configured.
	Room *livekit.Publisher
	// Signal is the MQTT client when it serves MQTT signalling (at most SignalMax sessions).
	Signal    *mqtt.Client
	SignalMax int
}

// metrics is lenscap's Prometheus registry: it serves /metrics (ServeHTTP).
type metrics struct {
	handler http.Handler
}

// cutMetrics records the durations of cuts and of the power interlock's switches. It is made
// before the device, which reports each to it (device.Config.ObserveCut, ObservePower), and
// registered with the rest by newMetrics.
type cutMetrics struct {
	hist          *prometheus.HistogramVec
	power         *prometheus.HistogramVec
	powerFailures *prometheus.CounterVec
}

func newCutMetrics() *cutMetrics {
	return &cutMetrics{hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "cut_duration_seconds",
		Help:    "From a privacy trigger (button edge after debounce, command, API call) to the cut applied: gates closed, state persisted, senders removed, sources closed.",
		Buckets: cutBuckets,
	}, []string{"kind", "by"}),
		power: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "power_switch_seconds",
			Help:    "Power interlock: op=off from the trigger to the device's absence confirmed; op=on from power on to the device present.",
			Buckets: powerBuckets,
		}, []string{"kind", "op"}),
		powerFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "power_failures_total",
			Help: "Power interlock switches not confirmed: op=off the device stayed (the cut stands), op=on it did not appear.",
		}, []string{"kind", "op"}),
	}
}

// ObservePower records one switch of a kind's power interlock (device.ObservePowerFunc).
func (c *cutMetrics) ObservePower(k device.Kind, on bool, d time.Duration, err error) {
	op := map[bool]string{true: "on", false: "off"}[on]
	if err != nil {
		c.powerFailures.WithLabelValues(string(k), op).Inc()
		return
	}
	c.power.WithLabelValues(string(k), op).Observe(d.Seconds())
}

// powerBuckets: a load switch's rail falls in milliseconds, a USB device unbinds in tens, a
// device re-enumerates in a second or more.
var powerBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Observe records how long a cut of kind k, made by by (device.By: button, remote, boot), took.
func (c *cutMetrics) Observe(k device.Kind, by device.By, d time.Duration) {
	c.hist.WithLabelValues(string(k), string(by)).Observe(d.Seconds())
}

// Metric names; the in-guest test (cmd/lenscap-hil) reads lenscap_frames_captured_total and
// lenscap_frames_encoded_total with the label kind.
const metricsNamespace = "lenscap"

// cutBuckets are the cut durations' histogram buckets, in seconds: the target is a p99 under
// 5 ms in process (DESIGN.md, Targets), a slow board or a slow disk's fsync may take longer.
var cutBuckets = []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// newMetrics builds the registry over src and cuts, with the Go runtime's and the process's
// collectors. It starts nothing: the functions are called when /metrics is scraped.
func newMetrics(src metricsSources, cuts *cutMetrics) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	perKind := func(name, help string, f func(device.Kind) uint64) {
		if f == nil {
			return
		}
		for _, k := range src.Kinds {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: metricsNamespace, Name: name, Help: help,
				ConstLabels: prometheus.Labels{"kind": string(k)},
			}, func() float64 { return float64(f(k)) }))
		}
	}
	perKind("frames_captured_total", "Frames captured by the kind's source.", src.FramesCaptured)
	perKind("frames_encoded_total", "Frames out of the kind's encoder.", src.FramesEncoded)
	perKind("streams_keyframe_first_total", "Streams of the kind's source whose first frame was a keyframe.", src.KeyframeFirst)
	perKind("source_opens_total", "Times the kind's source device was opened.", src.SourceOpens)
	perKind("source_closes_total", "Times the kind's source device was closed.", src.SourceCloses)
	perKind("rtp_packets_sent_total", "RTP packets of the kind sent to viewers, all viewers together.", src.RTPPackets)
	perKind("rtp_bytes_sent_total", "Bytes of RTP packets (header and payload) of the kind sent to viewers.", src.RTPBytes)

	perKindBool := func(name, help string, f func(device.Kind) bool) {
		if f == nil {
			return
		}
		for _, k := range src.Kinds {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: metricsNamespace, Name: name, Help: help,
				ConstLabels: prometheus.Labels{"kind": string(k)},
			}, func() float64 { return boolFloat(f(k)) }))
		}
	}
	perKindBool("private", "1 while the kind is private (cut), else 0.", src.Private)
	perKindBool("live", "1 while the kind's source is open and live, else 0.", src.Live)

	if src.Viewers != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "viewers", Help: "Viewer sessions.",
		}, func() float64 { return float64(src.Viewers()) }))
	}

	if src.Limits != nil {
		registerLimits(reg, *src.Limits)
	}
	if src.Room != nil {
		registerLiveKit(reg, src.Room)
	}
	if src.Signal != nil {
		registerSignal(reg, src.Signal, src.SignalMax)
	}
	reg.MustRegister(cuts.hist, cuts.power, cuts.powerFailures)
	perKindBool("powered", "Power interlock: 0 once the kind's device is confirmed off, else 1 (kinds without an interlock: always 1).", src.Powered)
	return &metrics{handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})}
}

// ServeHTTP serves the registry in the Prometheus text format (or OpenMetrics, as negotiated).
func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metricsSources wires /metrics to the device, its sources, the rtc server and the limits.
func (d *daemon) metricsSources() metricsSources {
	src := daemonMetricsSources(d.dev, d.srv, d.board)
	src.Limits = &limitSources{MaxViewers: d.cfg.MaxViewers, ViewersRefused: d.srv.ViewersRefused,
		SDPRefused: d.srv.SDPRefused, IdleDropped: d.srv.IdleDropped, RateLimited: d.limits.Limited,
		SlowBodies: d.limits.SlowBodies, Clients: d.limits.Clients,
		ConnsRefused: d.conns.Refused, Conns: d.conns.Open}
	src.Room = d.room
	if d.mq != nil && d.cfg.MQTTSignalling {
		src.Signal, src.SignalMax = d.mq, d.cfg.MaxViewers
	}
	return src
}

// daemonMetricsSources wires /metrics to the device, its sources and the rtc server.
func daemonMetricsSources(dev *device.Device, srv *rtc.Server, b *board.Board) metricsSources {
	var kinds []device.Kind
	for _, d := range b.Drivers() {
		kinds = append(kinds, d.Kind())
	}
	src := func(k device.Kind) *device.Source { return dev.Source(k) }
	return metricsSources{
		Kinds: kinds,
		// A driver that captures and encodes separately counts its captured frames itself.
		FramesCaptured: func(k device.Kind) uint64 {
			if c, ok := src(k).Driver().(interface{ FramesCaptured() uint64 }); ok {
				return c.FramesCaptured()
			}
			return src(k).Frames()
		},
		FramesEncoded: func(k device.Kind) uint64 { return src(k).Frames() },
		KeyframeFirst: func(k device.Kind) uint64 { return src(k).KeyframeFirst() },
		SourceOpens:   func(k device.Kind) uint64 { return src(k).Opens() },
		SourceCloses:  func(k device.Kind) uint64 { return src(k).Closes() },
		RTPPackets:    func(k device.Kind) uint64 { p, _ := srv.Sent(k); return p },
		RTPBytes:      func(k device.Kind) uint64 { _, n := srv.Sent(k); return n },
		Private:       func(k device.Kind) bool { return dev.Status().Kind(k).Private },
		Live:          func(k device.Kind) bool { return dev.Status().Kind(k).Live },
		Powered: func(k device.Kind) bool {
			p := dev.Status().Kind(k).Powered
			return p == nil || *p
		},
		Viewers: srv.Viewers,
	}
}
