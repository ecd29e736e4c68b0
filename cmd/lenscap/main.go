// Command lenscap is the privacy camera's daemon: it streams the camera and microphone to
// viewers over WebRTC and cuts them when the privacy button is pressed or a command says so.
package main

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/settings"
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
	if code := settings.Exit("lenscap", err, os.Stdout, os.Stderr); code != 0 {
		os.Exit(code)
	}
}

// subcommand is a word that, first on the command line, runs something other than the daemon
// with the words after it.
type subcommand struct {
	name, summary string
	run           func(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stderr io.Writer) error
}

// subcommands are lenscap's subcommands, in the order `lenscap -h` lists them. (A function,
// not a variable: the daemon's usage lists them, and their run functions reach that usage.)
func subcommands() []subcommand {
	return []subcommand{
		{"doctor", "print the board, its pins, camera, encoder and microphone, and what is missing",
			func(_ context.Context, args []string, getenv func(string) string, _ io.Reader, _ io.Writer) error {
				return runDoctor(args, getenv, os.Stdout)
			}},
		{"token", "print the owner credential (show), or make a token for a viewer (create)",
			func(_ context.Context, args []string, getenv func(string) string, _ io.Reader, _ io.Writer) error {
				return runToken(args, getenv, os.Stdout)
			}},
		{"page", "write a static copy of the viewer page that watches from anywhere through the MQTT broker",
			func(_ context.Context, args []string, getenv func(string) string, _ io.Reader, _ io.Writer) error {
				return runPage(args, getenv, os.Stdout)
			}},
		{"journal", "verify the privacy journal: its chain and its signed checkpoints",
			func(_ context.Context, args []string, getenv func(string) string, _ io.Reader, _ io.Writer) error {
				return runJournal(args, getenv, os.Stdout)
			}},
		{"sim-fleet", "run simulated cameras' control planes against a broker, to try fleet commands",
			func(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stderr io.Writer) error {
				return runSimFleet(ctx, args, getenv, stderr)
			}},
	}
}

// run is the daemon, or the subcommand named by the first word of args: it returns nil when
// ctx is cancelled (SIGINT, SIGTERM) and everything has shut down, or the error that stopped
// it. For -h and --version it returns an error that wraps flag.ErrHelp, whose text is the
// help or the version (main prints it on stdout and exits 0).
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stderr io.Writer) error {
	if len(args) > 0 {
		for _, sc := range subcommands() {
			if args[0] == sc.name {
				return sc.run(ctx, args[1:], getenv, stdin, stderr)
			}
		}
	}
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		return err
	}
	return runDaemon(ctx, cfg, getenv, stdin, stderr)
}

// daemonUsage is the head of `lenscap -h`: the usage lines, the subcommands and the settings.
func daemonUsage(board string) string {
	var b strings.Builder
	b.WriteString("usage: lenscap [flags]\n       lenscap COMMAND [flags]\n\n")
	b.WriteString("Without a command, lenscap is the camera's daemon. Commands (lenscap COMMAND -h for each):\n")
	for _, sc := range subcommands() {
		fmt.Fprintf(&b, "  %-10s %s\n", sc.name, sc.summary)
	}
	b.WriteString("\n" + configHelp(board))
	return b.String()
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
