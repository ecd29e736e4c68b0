package rtc_test

import (
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
	"github.com/lenscap/lenscap/rtc"
	"github.com/lenscap/lenscap/rtc/rtctest"
	"github.com/pion/webrtc/v4"
)

// rig is a device with fake drivers, served by an rtc.Server on a loopback HTTP server.
type rig struct {
	t            testing.TB
	dev          *device.Device
	srv          *rtc.Server
	http         *httptest.Server
	video, audio *devicetest.Driver
	stop         func()
}

type rigOptions struct {
	interval      time.Duration
	answerTimeout time.Duration
	stateDir      string
	// limits, as rtc.Config has them (zero: the defaults)
	maxViewers                int
	pingInterval, idleTimeout time.Duration
	// iceServers and policy, as rtc.Config has them
	iceServers func(viewer string) []webrtc.ICEServer
	policy     webrtc.ICETransportPolicy
	iceTCP     net.Listener
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	if o.interval == 0 {
		o.interval = 10 * time.Millisecond
	}
	if o.stateDir == "" {
		o.stateDir = t.TempDir()
	}
	r := &rig{t: t}
	r.video = devicetest.NewDriver(device.KindVideo, devicetest.Options{Interval: o.interval})
	r.audio = devicetest.NewDriver(device.KindAudio, devicetest.Options{Interval: o.interval})
	dev, err := device.New(device.Config{Store: device.NewStore(o.stateDir)}, r.video, r.audio)
	if err != nil {
		t.Fatal(err)
	}
	r.dev = dev
	srv, err := rtc.NewServer(rtc.Config{
		LoopbackOnly:   true,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		AnswerTimeout:  o.answerTimeout,
		MaxViewers:     o.maxViewers,
		WSPingInterval: o.pingInterval,
		WSIdleTimeout:  o.idleTimeout,
		State:          func() any { return dev.Status() },

		ICEServers:         o.iceServers,
		ICETransportPolicy: o.policy,
		ICETCP:             o.iceTCP,
	}, map[device.Kind]device.Codec{
		device.KindVideo: r.video.Codec(),
		device.KindAudio: r.audio.Codec(),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	dev.AddSink(srv)
	dev.Watch(func(device.Status) { srv.StateChanged() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx) }()
	<-dev.Ready()
	r.http = httptest.NewServer(srv.Handler())
	r.stop = func() {
		r.http.CloseClientConnections()
		srv.Close()
		r.http.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("device.Run: %v", err)
		}
	}
	t.Cleanup(r.stop)
	return r
}

func (r *rig) wsURL() string { return "ws" + strings.TrimPrefix(r.http.URL, "http") + "/ws" }

func (r *rig) dial(ctx context.Context, o rtctest.Options) *rtctest.Viewer {
	r.t.Helper()
	v, err := rtctest.Dial(ctx, r.wsURL(), o)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { v.Close() })
	return v
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// offerWith waits for the viewer's latest offer to be after the n-th (OfferCount) and to have
// the m-section directions dirs.
func offerWith(n int, dirs ...string) func(*rtctest.Viewer) bool {
	return func(v *rtctest.Viewer) bool {
		offers := v.Offers()
		return v.OfferCount() > n && len(offers) > 0 &&
			strings.Join(offers[len(offers)-1].Directions, ",") == strings.Join(dirs, ",")
	}
}
