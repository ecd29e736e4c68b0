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
	"time"

	"github.com/lenscap/lenscap/board"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/rtc"
	"golang.org/x/sync/errgroup"
)

// runDaemon is the daemon with a loaded configuration.
func runDaemon(ctx context.Context, cfg Config, getenv func(string) string, stdin io.Reader, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	log.Info("starting", "version", version, "config", cfg)

	b, err := board.Open(cfg.Board, boardOptions(cfg))
	if err != nil {
		return err
	}
	defer b.Close()
	if len(b.Drivers()) == 0 {
		return fmt.Errorf("board %s: nothing to stream: %s (lenscap doctor lists what the board has)", b.Name, strings.Join(b.Missing, "; "))
	}
	btn, err := newButton(cfg, b, log)
	if err != nil {
		return err
	}
	var buttonKinds []device.Kind
	for _, k := range cfg.ButtonKinds {
		buttonKinds = append(buttonKinds, device.Kind(k))
	}
	policy := device.Policy{RemoteMayLift: cfg.RemoteMayLift, ButtonKinds: buttonKinds}
	var met *metrics // made below, once the device and the rtc server exist
	dev, err := device.New(device.Config{
		Store:      device.NewStore(cfg.StateDir),
		Policy:     policy,
		Logger:     log.With("component", "device"),
		BootChange: bootChange(btn, policy),
		ObserveCut: func(k device.Kind, by device.By, d time.Duration) { met.ObserveCut(k, by, d) },
	}, b.Drivers()...)
	if err != nil {
		return err
	}
	codecs := make(map[device.Kind]device.Codec)
	for _, d := range b.Drivers() {
		codecs[d.Kind()] = d.Codec()
	}
	a := &api{dev: dev, log: log.With("component", "api"), id: cfg.ID, board: b.Name, token: cfg.Token,
		started: time.Now(), page: viewerPage}
	if b.Simulated {
		a.press = func(at time.Time) (device.Status, error) { return dev.PressButton(ctx, at) }
	}
	mq, broker, err := newMQTT(cfg, b, dev, a, log)
	if err != nil {
		return err
	}
	if broker != nil {
		// Closed after g.Wait: the client has said "offline" and disconnected by then.
		defer broker.Close()
	}
	srv, err := rtc.NewServer(rtc.Config{
		Logger:          log.With("component", "rtc"),
		PionLogger:      pionLogs{log.With("component", "pion")},
		IncludeLoopback: true,
		State:           func() any { return a.state() },
		OnViewers: func(int) {
			if mq != nil {
				mq.StateChanged()
			}
		},
	}, codecs)
	if err != nil {
		return err
	}
	a.srv = srv
	met = newDaemonMetrics(dev, srv, b)
	a.metrics = met
	if testHookRun != nil {
		testHookRun(b, srv)
	}
	dev.AddSink(srv)
	dev.Watch(func(device.Status) { srv.StateChanged() })
	lights, err := newLights(cfg, b, dev, srv, log)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	hs := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return dev.Run(gctx) })
	g.Go(func() error { return lights.Run(gctx) })
	// Nothing reports a state before the privacy state is loaded: the API and MQTT start then.
	booted := func() bool {
		select {
		case <-dev.Ready():
			return true
		case <-gctx.Done():
			return false
		}
	}
	if btn != nil {
		btn.SetDecided(buttonGate(dev, buttonKinds))
		g.Go(func() error {
			if !booted() {
				return nil
			}
			// A latching switch reports its position at start, taken as at boot.
			return btn.Run(gctx, buttonEvents(gctx, dev, log))
		})
	}
	if mq != nil {
		g.Go(func() error {
			if !booted() {
				return nil
			}
			return mq.Run(gctx)
		})
	}
	g.Go(func() error {
		if !booted() {
			return ln.Close()
		}
		log.Info(fmt.Sprintf("listening on http://%s", ln.Addr()))
		if err := sdNotify(getenv("NOTIFY_SOCKET"), "READY=1"); err != nil {
			log.Warn("systemd notification", "err", err)
		}
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	if iv, ok := sdWatchdogInterval(getenv, os.Getpid()); ok {
		g.Go(func() error {
			return sdWatchdog(gctx, iv, responsive(dev, iv/2), func(st string) error { return sdNotify(getenv("NOTIFY_SOCKET"), st) })
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		_ = sdNotify(getenv("NOTIFY_SOCKET"), "STOPPING=1")
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close() // ends WebSocket sessions, which the HTTP shutdown waits for
		return hs.Shutdown(sctx)
	})
	if b.Simulated && stdin != nil {
		log.Info("simulated board: press Enter here to press the privacy button")
		// A goroutine blocked reading the terminal cannot be stopped; it ends with the process.
		go pressFromTerminal(ctx, stdin, a.press, log)
	}
	err = g.Wait()
	log.Info("stopped")
	return err
}
