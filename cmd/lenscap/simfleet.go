package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/lenscap/lenscap/mqtt"
)

// runSimFleet is `lenscap sim-fleet`: N simulated device control planes (privacy state and MQTT
// client, no media) in this process, on one broker, for scale tests of fleet commands.
func runSimFleet(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("lenscap sim-fleet", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("devices", 100, "`number` of simulated devices")
	url := fs.String("mqtt", getenv("LENSCAP_MQTT"), "broker `URL` (default $LENSCAP_MQTT)")
	dir := fs.String("state-dir", "", "`directory` for the devices' state (default: a temporary one, removed at exit)")
	prefix := fs.String("id-prefix", "sim-", "device ids are `prefix`0000, prefix0001, ...")
	groups := fs.String("groups", "", "`groups` every device joins, comma-separated (each also joins \"even\" or \"odd\")")
	topic := fs.String("topic-prefix", "lenscap", "MQTT topic `prefix`")
	if err := fs.Parse(args); err != nil {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		if errors.Is(err, flag.ErrHelp) {
			return fmt.Errorf("%w\nusage: lenscap sim-fleet [flags]\n%s", err, b.String())
		}
		return fmt.Errorf("sim-fleet: %w\n%s", err, b.String())
	}
	if *url == "" {
		return errors.New("sim-fleet: --mqtt is required")
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "lenscap-fleet-")
		if err != nil {
			return fmt.Errorf("sim-fleet: %w", err)
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	common := splitList(*groups)
	fleet, err := mqtt.NewFleet(mqtt.FleetConfig{
		N:           *n,
		BrokerURL:   *url,
		Dir:         *dir,
		IDPrefix:    *prefix,
		TopicPrefix: *topic,
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
	log.Info("simulated fleet", "devices", *n, "broker", *url, "ids", fmt.Sprintf("%s0000..%s%04d", *prefix, *prefix, *n-1))
	return fleet.Run(ctx)
}
