package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"

	"github.com/lenscap/lenscap/cmd/internal/settings"
	"github.com/lenscap/lenscap/mqtt"
)

const simFleetUsage = `usage: lenscap sim-fleet [flags]

Sim-fleet runs N simulated cameras' control planes (privacy state and MQTT client, no media)
in this process against one broker, for scale tests of fleet commands (lenscapctl, Home
Assistant). Device i joins the group "even" or "odd", and those of --groups.

`

// simFleetFlags are sim-fleet's flags.
type simFleetFlags struct {
	n                               int
	url, dir, prefix, groups, topic string
	broker                          *url.URL // url, parsed
}

// parseSimFleetFlags parses and checks sim-fleet's command line.
func parseSimFleetFlags(args []string, getenv func(string) string) (simFleetFlags, error) {
	var f simFleetFlags
	fs := flag.NewFlagSet("lenscap sim-fleet", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&f.n, "devices", 100, "`number` of simulated devices")
	fs.StringVar(&f.url, "mqtt", getenv("LENSCAP_MQTT"), "broker `URL` (default $LENSCAP_MQTT)")
	fs.StringVar(&f.dir, "state-dir", "", "`directory` for the devices' state (default: a temporary one, removed at exit)")
	fs.StringVar(&f.prefix, "id-prefix", "sim-", "device ids are `prefix`0000, prefix0001, ...")
	fs.StringVar(&f.groups, "groups", "", "`groups` every device joins, comma-separated (each also joins \"even\" or \"odd\")")
	fs.StringVar(&f.topic, "topic-prefix", mqtt.DefaultTopicPrefix, "MQTT topic `prefix`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, settings.Help(simFleetUsage, fs)
		}
		return f, fmt.Errorf("sim-fleet: %w (lenscap sim-fleet -h lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("sim-fleet: unexpected argument %q (lenscap sim-fleet -h)", fs.Arg(0))
	}
	if f.url == "" {
		return f, errors.New("sim-fleet: --mqtt is required")
	}
	var err error
	if f.broker, err = mqtt.ParseBrokerURL(f.url); err != nil {
		return f, fmt.Errorf("sim-fleet: --mqtt: %w", err)
	}
	return f, nil
}

// runSimFleet is `lenscap sim-fleet`: N simulated device control planes (privacy state and MQTT
// client, no media) in this process, on one broker, for scale tests of fleet commands.
func runSimFleet(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	f, err := parseSimFleetFlags(args, getenv)
	if err != nil {
		return err
	}
	if f.dir == "" {
		tmp, err := os.MkdirTemp("", "lenscap-fleet-")
		if err != nil {
			return fmt.Errorf("sim-fleet: %w", err)
		}
		defer os.RemoveAll(tmp)
		f.dir = tmp
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	common := settings.SplitList(f.groups)
	fleet, err := mqtt.NewFleet(mqtt.FleetConfig{
		N:           f.n,
		BrokerURL:   f.url,
		Dir:         f.dir,
		IDPrefix:    f.prefix,
		TopicPrefix: f.topic,
		Logger:      log.With("component", "fleet"),
		Groups: func(i int) []string {
			gs := append([]string(nil), common...)
			if i%2 == 0 {
				return append(gs, "even")
			}
			return append(gs, "odd")
		},
	})
	if err != nil {
		return fmt.Errorf("sim-fleet: %w", err)
	}
	log.Info("simulated fleet", "devices", f.n, "broker", f.broker.Redacted(), // never the password
		"ids", fmt.Sprintf("%s0000..%s%04d", f.prefix, f.prefix, f.n-1))
	return fleet.Run(ctx)
}
