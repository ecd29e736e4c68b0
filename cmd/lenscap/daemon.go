package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lenscap/lenscap/board"
	"github.com/lenscap/lenscap/cmd/internal/auth"
	"github.com/lenscap/lenscap/cmd/internal/tlsconf"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/journal"
	"github.com/lenscap/lenscap/gpio"
	"github.com/lenscap/lenscap/mqtt"
	"github.com/lenscap/lenscap/rtc"
	"github.com/lenscap/lenscap/rtc/livekit"
	"golang.org/x/sync/errgroup"
)

// daemon is lenscap: the board's hardware, the device that decides privacy, the viewers'
// server, fleet control and the HTTP API. newDaemon builds each part once, in the order they
// depend on each other, and sets every field before it returns; run starts them. The
// callbacks the parts are given are the daemon's own methods, called only once run has
// started the parts.
//
// A press, from the pin to removeTrack: gpio.Button.Run debounces the pin and calls
// buttonDecided on the pin's goroutine, where device.Device.Button holds back at once the
// kinds the press may cut; the button's handler goroutine then applies it (device's
// applyLocked: gate, persist, Sink.RemoveTracks, which is rtc.Server's removeTrack on every
// viewer's sender and a renegotiation, then stop() on the tracks, closing the camera).
type daemon struct {
	cfg     Config
	log     *slog.Logger
	getenv  func(string) string
	started time.Time

	board    *board.Board
	verifier *auth.Verifier    // who may watch, who may change privacy
	tls      *tlsconf.Reloader // nil: plain HTTP (the simulated board without tls_cert)
	button   *gpio.Button      // nil: the board has no privacy input
	cuts     *cutMetrics
	journal  *journal.Journal // nil: it could not be opened (logged)
	dev      *device.Device
	srv      *rtc.Server
	broker   *mqtt.EmbeddedBroker // nil: no embedded broker
	mq       *mqtt.Client         // nil: no broker configured
	room     *livekit.Publisher   // nil: no LiveKit server configured
	lights   *gpio.Lights
	limits   *httpLimits // per-client rates and body deadlines, in front of the API
	conns    *connLimits // connections open at once, in all and per client
	api      *api
	http     *http.Server

	// viewers and roomViewers are who wants the media: direct viewers (the rtc server's count)
	// and the LiveKit room's other participants. On demand, the camera opens for either. One
	// lock, so that the last sum given to the device is the sum of the last counts.
	demandMu             sync.Mutex
	viewers, roomViewers int
}

// runDaemon is `lenscap` with a loaded configuration: it returns nil when ctx ends and
// everything has shut down. On the simulated board, Enter on stdin presses the button.
func runDaemon(ctx context.Context, cfg Config, getenv func(string) string, stdin io.Reader, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	log.Info("starting", "version", version, "config", cfg)
	d, err := newDaemon(cfg, log, getenv)
	if err != nil {
		return err
	}
	defer d.close()
	if d.board.Simulated && stdin != nil {
		log.Info("simulated board: press Enter here to press the privacy button")
		// A goroutine blocked reading the terminal cannot be stopped; it ends with the process.
		go pressFromTerminal(ctx, stdin, d.simulatedPress, log)
	}
	err = d.run(ctx)
	log.Info("stopped")
	return err
}

// newDaemon builds the daemon. It starts nothing but the embedded MQTT broker of the
// simulated board (the client needs its address); close releases what it opened.
func newDaemon(cfg Config, log *slog.Logger, getenv func(string) string) (_ *daemon, err error) {
	d := &daemon{cfg: cfg, log: log, getenv: getenv, started: time.Now()}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.board, err = board.Open(cfg.Board, boardOptions(cfg)); err != nil {
		return nil, err
	}
	if len(d.board.Drivers()) == 0 {
		return nil, fmt.Errorf("board %s: nothing to stream: %s (lenscap doctor lists what the board has)", d.board.Name, strings.Join(d.board.Missing, "; "))
	}
	if d.verifier, err = newVerifier(cfg, d.board.Simulated, log); err != nil {
		return nil, err
	}
	if err := listenPolicy(cfg.Listen, d.verifier); err != nil {
		return nil, err
	}
	if d.tls, err = newTLS(cfg, d.board.Simulated, log); err != nil {
		return nil, err
	}
	if d.button, err = newButton(cfg, d.board, log); err != nil {
		return nil, err
	}
	d.cuts = newCutMetrics()
	d.journal = openJournal(cfg, log)
	if d.dev, err = newDevice(cfg, d.board, d.button, d.cuts, d.journal, log); err != nil {
		return nil, err
	}
	if d.srv, err = d.newServer(); err != nil {
		return nil, err
	}
	if d.broker, d.mq, err = d.newMQTT(); err != nil {
		return nil, err
	}
	if d.room, err = newLiveKit(cfg, d.roomViewersChanged, log.With("component", "livekit")); err != nil {
		return nil, err
	}
	if d.lights, err = newLights(cfg, d.board, d.srv, log); err != nil {
		return nil, err
	}
	if d.limits, err = newDaemonLimits(cfg); err != nil {
		return nil, err
	}
	d.conns = newConnLimits(cfg.MaxConns, cfg.MaxConnsPerClient)
	d.api = d.newAPI()
	d.http = d.newHTTP()
	d.dev.AddSink(d.srv)
	if d.room != nil {
		d.dev.AddSink(d.room)
	}
	d.dev.Watch(d.stateChanged)
	return d, nil
}

// newHTTP is the HTTP server in front of the API. A half-open or trickling client holds a
// connection for body_timeout at the most, an idle keep-alive one for a minute.
func (d *daemon) newHTTP() *http.Server {
	s := &http.Server{Handler: d.limits.Handler(d.api.handler()), ReadHeaderTimeout: d.cfg.BodyTimeout,
		IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug)}
	if d.tls != nil {
		s.TLSConfig = tlsconf.Config(d.tls)
	}
	return s
}

// newDevice is the privacy state machine over the board's drivers, with the owner's policy.
func newDevice(cfg Config, b *board.Board, btn *gpio.Button, cuts *cutMetrics, j *journal.Journal, log *slog.Logger) (*device.Device, error) {
	var kinds []device.Kind
	for _, k := range cfg.ButtonKinds {
		kinds = append(kinds, device.Kind(k))
	}
	power, err := newPower(cfg, b, log.With("component", "power"))
	if err != nil {
		return nil, err
	}
	dc := device.Config{
		Store:        device.NewStore(cfg.StateDir),
		Policy:       device.Policy{RemoteMayLift: cfg.RemoteMayLift, ButtonKinds: kinds},
		Logger:       log.With("component", "device"),
		ObserveCut:   cuts.Observe,
		OnDemand:     cfg.Capture == "on_demand",
		Linger:       cfg.CaptureLinger,
		Power:        power,
		ObservePower: cuts.ObservePower,
	}
	if btn != nil && btn.Mode() == gpio.Latching {
		dc.Switch = btn.Active // read at boot, before any source opens
	}
	if j != nil { // a nil *Journal in the interface would not be nil
		dc.Journal = j
	}
	return device.New(dc, b.Drivers()...)
}

func (d *daemon) newServer() (*rtc.Server, error) {
	codecs := make(map[device.Kind]device.Codec)
	for _, drv := range d.board.Drivers() {
		codecs[drv.Kind()] = drv.Codec()
	}
	var tcp net.Listener // ICE-TCP: the server closes it
	if d.cfg.ICE.TCPListen != "" {
		var err error
		if tcp, err = net.Listen("tcp", d.cfg.ICE.TCPListen); err != nil {
			return nil, fmt.Errorf("ice_tcp_listen %s: %w", d.cfg.ICE.TCPListen, err)
		}
	}
	srv, err := rtc.NewServer(rtc.Config{
		Logger:     d.log.With("component", "rtc"),
		PionLogger: pionLogs{d.log.With("component", "pion")},
		// Loopback candidates only for a camera serving this machine: offered to a remote
		// viewer they are useless, and a TURN server that relayed to them would reach its own
		// loopback.
		IncludeLoopback:     isLoopback(d.cfg.Listen),
		MaxViewers:          d.cfg.MaxViewers,
		MaxViewersPerHolder: d.cfg.MaxViewersPerCredential,
		WSPingInterval:      d.cfg.WSPing,
		WSIdleTimeout:       d.cfg.WSIdle,
		MaxSDPBytes:         d.cfg.MaxSDPBytes,
		State:               func() any { return d.state() },
		ICEServers:          d.cfg.ICE.sessionServers(d.cfg.ID, time.Now),
		ICETransportPolicy:  d.cfg.ICE.policy(),
		ICETCP:              tcp,
		OnViewers:           d.viewersChanged,
	}, codecs)
	if err != nil && tcp != nil {
		tcp.Close()
	}
	return srv, err
}

func (d *daemon) newAPI() *api {
	a := &api{dev: d.dev, srv: d.srv, log: d.log.With("component", "api"), state: d.state, journal: d.journal,
		verifier: d.verifier, page: viewerPage,
		metrics: newMetrics(d.metricsSources(), d.cuts)}
	if d.board.Simulated {
		a.press = d.simulatedPress
	}
	return a
}

// state is what GET /api/state, the viewers' state messages and the MQTT state report.
func (d *daemon) state() stateJSON {
	st := d.dev.Status()
	return stateJSON{ID: d.cfg.ID, Board: d.board.Name, Video: st.Video, Audio: st.Audio,
		Viewers: d.srv.Viewers(), Seq: st.Seq, Unsaved: st.Unsaved, Idle: st.Idle, Journal: info(d.journal),
		Uptime: time.Since(d.started).Round(time.Millisecond).Seconds()}
}

// stateChanged is the device's watcher: the viewers' pages, the broker and the privacy LED
// learn every change. It runs with the device's lock held: each only takes note.
func (d *daemon) stateChanged(st device.Status) {
	d.srv.StateChanged()
	if d.mq != nil {
		d.mq.StateChanged()
	}
	if d.room != nil {
		d.room.StateChanged(st)
	}
	d.lights.SetPrivate(st.Video.Private || st.Audio.Private)
	d.lights.SetWarning(st.Video.PowerError != "" || st.Audio.PowerError != "")
}

// viewersChanged tells the device (on demand, it opens or parks the sources) and the broker that
// the number of viewers changed. The rtc server calls it: it must not block, and does not.
func (d *daemon) viewersChanged(n int) {
	d.demandMu.Lock()
	d.viewers = n
	d.dev.SetDemand(d.viewers + d.roomViewers) // never blocks
	d.demandMu.Unlock()
	if d.mq != nil {
		d.mq.StateChanged()
	}
}

// roomViewersChanged is the LiveKit publisher's count of the room's other participants: on
// demand, they want the media as direct viewers do. It must not block, and does not.
func (d *daemon) roomViewersChanged(n int) {
	d.demandMu.Lock()
	d.roomViewers = n
	d.dev.SetDemand(d.viewers + d.roomViewers) // never blocks
	d.demandMu.Unlock()
}

// run starts every part and returns once ctx has ended and they have all stopped, or with the
// first error. The API, the button and MQTT start only once the privacy state is loaded.
func (d *daemon) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", d.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", d.cfg.Listen, err)
	}
	ln = d.conns.listener(ln)
	g, gctx := errgroup.WithContext(ctx)
	if d.tls != nil {
		reload := reloadOnSIGHUP(d.tls, d.log)
		g.Go(func() error { return reload(gctx) })
	}
	g.Go(func() error { return d.dev.Run(gctx) })
	g.Go(func() error { return d.lights.Run(gctx) })
	if d.button != nil {
		// A latching switch reports its position at start, taken as at boot.
		g.Go(d.afterBoot(gctx, func() error { return d.button.Run(gctx, d.buttonDecided) }))
	}
	if d.mq != nil {
		g.Go(d.afterBoot(gctx, func() error { return d.mq.Run(gctx) }))
	}
	if d.room != nil {
		g.Go(d.afterBoot(gctx, func() error { return d.room.Run(gctx) }))
	}
	g.Go(func() error {
		if !d.booted(gctx) {
			return ln.Close()
		}
		return d.serve(ln)
	})
	if iv, ok := sdWatchdogInterval(d.getenv, os.Getpid()); ok {
		g.Go(func() error { return sdWatchdog(gctx, iv, responsive(d.dev, iv/2), d.notify) })
	}
	g.Go(func() error {
		<-gctx.Done()
		_ = d.notify("STOPPING=1")
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.srv.Close() // ends WebSocket sessions, which the HTTP shutdown waits for
		return d.http.Shutdown(sctx)
	})
	return g.Wait()
}

// serve answers HTTP on ln until the server is shut down.
func (d *daemon) serve(ln net.Listener) error {
	d.log.Info(fmt.Sprintf("listening on %s://%s", scheme(d.tls), ln.Addr()), tlsLog(d.tls)...)
	if err := d.notify("READY=1"); err != nil {
		d.log.Warn("systemd notification", "err", err)
	}
	serve := d.http.Serve
	if d.tls != nil {
		serve = func(ln net.Listener) error { return d.http.ServeTLS(ln, "", "") }
	}
	if err := serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}

// booted waits until the device has loaded the privacy state; false when ctx ended first.
func (d *daemon) booted(ctx context.Context) bool {
	select {
	case <-d.dev.Ready():
		return true
	case <-ctx.Done():
		return false
	}
}

// afterBoot is f, started once the privacy state is loaded (nothing when ctx ends first).
func (d *daemon) afterBoot(ctx context.Context, f func() error) func() error {
	return func() error {
		if !d.booted(ctx) {
			return nil
		}
		return f()
	}
}

// notify tells systemd (when it started us with a notification socket).
func (d *daemon) notify(state string) error { return sdNotify(d.getenv("NOTIFY_SOCKET"), state) }

// close releases what newDaemon opened; run has returned. The embedded broker closes last:
// the client has said "offline" and disconnected by then.
func (d *daemon) close() {
	if d.journal != nil {
		if err := d.journal.Close(); err != nil { // a signed checkpoint at shutdown
			d.log.Error("privacy journal", "err", err)
		}
	}
	if d.broker != nil {
		d.broker.Close()
	}
	if d.srv != nil {
		_ = d.srv.Close() // its ICE-TCP listener too; idempotent after run's
	}
	if d.board != nil {
		d.board.Close()
	}
}
