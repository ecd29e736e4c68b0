package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/lenscap/lenscap/device"
)

// FleetConfig configures a simulated fleet.
type FleetConfig struct {
	// N is the number of devices.
	N int
	// BrokerURL is the broker every device connects to (with the same credentials, if any).
	BrokerURL string
	// Dir holds each device's state directory, Dir/<id> (privacy state and command record).
	Dir string
	// IDPrefix starts every id: <IDPrefix><index, 4 digits>; "sim-" when empty.
	IDPrefix string
	// Groups returns the groups of the i-th device; nil: none.
	Groups func(i int) []string
	// TopicPrefix is the topic prefix; DefaultTopicPrefix when empty.
	TopicPrefix string
	// Logger receives the devices' and clients' logs; nil discards them.
	Logger *slog.Logger
	// Configure, when set, adjusts each client's configuration (keepalive, backoff, TLS).
	Configure func(i int, c *Config)
}

// Fleet is N device control planes in one process, for scale tests: each a device.Device
// without media (its privacy state machine and persisted state) and its own Client.
type Fleet struct {
	ids     []string
	devices []*device.Device
	clients []*Client
}

// NewFleet makes the devices and their clients. It starts nothing.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	if cfg.N <= 0 {
		return nil, errors.New("mqtt: fleet: no devices")
	}
	if cfg.Dir == "" {
		return nil, errors.New("mqtt: fleet: no directory")
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = "sim-"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{}
	for i := range cfg.N {
		id := fmt.Sprintf("%s%04d", cfg.IDPrefix, i)
		dir := filepath.Join(cfg.Dir, id)
		log := cfg.Logger.With("device", id)
		dev, err := device.New(device.Config{Store: device.NewStore(dir), Logger: log.With("component", "device")})
		if err != nil {
			return nil, err
		}
		c := Config{
			BrokerURL:   cfg.BrokerURL,
			ID:          id,
			TopicPrefix: cfg.TopicPrefix,
			Device:      dev,
			Logger:      log.With("component", "mqtt"),
			StoreDir:    dir,
		}
		if cfg.Groups != nil {
			c.Groups = cfg.Groups(i)
		}
		if cfg.Configure != nil {
			cfg.Configure(i, &c)
		}
		client, err := New(c)
		if err != nil {
			return nil, fmt.Errorf("mqtt: fleet: %s: %w", id, err)
		}
		dev.Watch(func(device.Status) { client.StateChanged() })
		f.ids = append(f.ids, id)
		f.devices = append(f.devices, dev)
		f.clients = append(f.clients, client)
	}
	return f, nil
}

// IDs are the devices' ids, in order.
func (f *Fleet) IDs() []string { return f.ids }

// Device returns the i-th device.
func (f *Fleet) Device(i int) *device.Device { return f.devices[i] }

// Run runs every device and client until ctx ends, then waits for them all and returns nil.
func (f *Fleet) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 2*len(f.ids))
	for i := range f.ids {
		dctx, stop := context.WithCancel(context.Background())
		wg.Go(func() {
			// A device outlives its client, so a command being applied never meets a
			// stopped device.
			errs[2*i] = f.devices[i].Run(dctx)
		})
		wg.Go(func() {
			defer stop()
			errs[2*i+1] = f.clients[i].Run(ctx)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
