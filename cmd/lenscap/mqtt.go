package main

import (
	"fmt"
	"log/slog"

	"github.com/lenscap/lenscap/board"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/mqtt"
)

// newMQTT makes the fleet-control client when a broker is configured; on the simulated board
// with no broker it first starts the embedded one (unless mqtt_listen is off). Both may be nil.
// state is what the client publishes; it is called only once the client runs.
func newMQTT(cfg Config, b *board.Board, dev *device.Device, state func() stateJSON, log *slog.Logger) (*mqtt.EmbeddedBroker, *mqtt.Client, error) {
	url := cfg.MQTT
	var broker *mqtt.EmbeddedBroker
	if url == "" && b.Simulated && cfg.MQTTListen != "off" {
		eb, err := mqtt.NewEmbeddedBroker(cfg.MQTTListen, log.With("component", "mqtt-broker"))
		if err != nil {
			return nil, nil, err
		}
		if err := eb.Start(); err != nil {
			return nil, nil, fmt.Errorf("embedded MQTT broker on %s (set mqtt_listen to another address, or off): %w", cfg.MQTTListen, err)
		}
		broker, url = eb, eb.URL()
		log.Info("embedded MQTT broker", "url", url)
	}
	if url == "" {
		return broker, nil, nil
	}
	mqtt.BridgePahoLogs(log.With("component", "paho"))
	mq, err := mqtt.New(mqtt.Config{
		BrokerURL:   url,
		TLS:         mqtt.TLS{CAFile: cfg.MQTTCA, CertFile: cfg.MQTTCert, KeyFile: cfg.MQTTKey},
		ID:          cfg.ID,
		Groups:      cfg.Groups,
		TopicPrefix: cfg.TopicPrefix,
		Device:      dev,
		State:       func() any { return state() },
		Logger:      log.With("component", "mqtt"),
		StoreDir:    cfg.StateDir,
		Discovery:   mqtt.Discovery{Model: b.Name, Version: version},
	})
	if err != nil {
		if broker != nil {
			broker.Close()
		}
		return nil, nil, err
	}
	return broker, mq, nil
}
