// Command lenscap is the privacy camera's daemon: it streams the camera and microphone to
// viewers over WebRTC and cuts them when the privacy button is pressed or a command says so.
package main

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lenscap/lenscap/device"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

//go:embed web/index.html
var viewerPage []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stdout, err)
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lenscap:", err)
		os.Exit(1)
	}
}

// run is the daemon (or, with "sim-fleet" first, a simulated fleet; with "doctor" first, the
// board check of doctor.go): it returns nil when ctx is cancelled (SIGINT, SIGTERM) and everything
// has shut down, or the error that stopped it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "sim-fleet" {
		return runSimFleet(ctx, args[1:], getenv, stderr)
	}
	if len(args) > 0 && args[0] == "doctor" {
		return runDoctor(args[1:], getenv, os.Stdout)
	}
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		return err
	}
	return runDaemon(ctx, cfg, getenv, stdin, stderr)
}

// pressFromTerminal presses the simulated button for each line typed (Enter).
func pressFromTerminal(ctx context.Context, in io.Reader, press func(time.Time) (device.Status, error), log *slog.Logger) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if ctx.Err() != nil {
			return
		}
		st, err := press(time.Now())
		if err != nil {
			log.Error("simulated button", "err", err)
			continue
		}
		log.Info("simulated button pressed", "video_private", st.Video.Private, "audio_private", st.Audio.Private)
	}
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if strings.EqualFold(cfg.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
