// Command lenscapctl controls a fleet of lenscap cameras over MQTT: it cuts or restores their
// feeds (one camera, a group or all), shows their state, and lists the cameras the broker knows.
//
//	lenscapctl [flags] privacy on|off [--video] [--audio] (--device ID | --group G | --all)
//	lenscapctl [flags] state [--device ID | --all] [--json]
//	lenscapctl [flags] list [--json]
//	lenscapctl [flags] view --device ID [--for DURATION] [--json] [--relay]   (view.go)
//	lenscapctl token keygen|create ...
//
// It speaks the topic contract of DESIGN.md ("External contracts: MQTT") through package mqtt.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/lenscap/lenscap/cmd/internal/settings"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if code := settings.Exit("lenscapctl", err, os.Stdout, os.Stderr); code != 0 {
		os.Exit(code)
	}
}

// run is the command: it returns nil when every device addressed acknowledged ok (privacy) or
// the output was written (state, list), and an error otherwise. For -h and --version it
// returns an error that wraps flag.ErrHelp and whose text is the usage or the version.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, os.Getenv, stdout, stderr)
}

func runEnv(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "token" {
		return runToken(args[1:], stdout)
	}
	if inv, isView, err := parseView(args, getenv); isView {
		if err != nil {
			return err
		}
		return runView(ctx, inv, stdout, stderr)
	}
	inv, err := parseArgs(args, getenv)
	if err != nil {
		return err
	}
	switch inv.command {
	case "privacy":
		return runPrivacy(ctx, inv, stdout, stderr)
	case "state":
		return runState(ctx, inv, stdout)
	case "list":
		return runList(ctx, inv, stdout)
	}
	return fmt.Errorf("unknown command %q (want privacy, state, list, view or token; lenscapctl -h)", inv.command)
}
