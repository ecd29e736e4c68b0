package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/lenscap/lenscap/mqtt"
)

// newMQTT makes the fleet-control client when a broker is configured; on the simulated board
// with no broker it first starts the embedded one (unless mqtt_listen is off). Both may be nil.
// state is what the client publishes; it is called only once the client runs. secured says
// that credentials are in force: the embedded broker then requires them too.
func (d *daemon) newMQTT() (*mqtt.EmbeddedBroker, *mqtt.Client, error) {
	cfg, b, log := d.cfg, d.board, d.log
	url := cfg.MQTT
	var broker *mqtt.EmbeddedBroker
	if url != "" {
		warning, err := mqtt.CheckBrokerSecurity(url, cfg.MQTTInsecure)
		if err != nil {
			return nil, nil, fmt.Errorf("config: mqtt: %w (or set mqtt_insecure: true)", err)
		}
		if warning != "" {
			log.Warn(warning)
		}
	} else if b.Simulated && cfg.MQTTListen != "off" {
		var err error
		if broker, url, err = startEmbeddedBroker(cfg, d.verifier.Required(), log); err != nil {
			return nil, nil, err
		}
	}
	if url == "" {
		return broker, nil, nil
	}
	mqtt.BridgePahoLogs(log.With("component", "paho"))
	signal, err := d.signalConfig(url)
	if err == nil {
		var mq *mqtt.Client
		mq, err = d.newMQTTClient(url, signal)
		if err == nil {
			return broker, mq, nil
		}
	}
	if broker != nil {
		broker.Close()
	}
	return nil, nil, err
}

// newMQTTClient is the fleet-control client of the broker at url.
func (d *daemon) newMQTTClient(url string, signal *mqtt.SignalConfig) (*mqtt.Client, error) {
	cfg, b, log := d.cfg, d.board, d.log
	return mqtt.New(mqtt.Config{
		BrokerURL:   url,
		TLS:         mqtt.TLS{CAFile: cfg.MQTTCA, CertFile: cfg.MQTTCert, KeyFile: cfg.MQTTKey},
		ID:          cfg.ID,
		Groups:      cfg.Groups,
		TopicPrefix: cfg.TopicPrefix,
		Device:      d.dev,
		State:       func() any { return d.state() },
		Logger:      log.With("component", "mqtt"),
		StoreDir:    cfg.StateDir,
		Discovery:   mqtt.Discovery{Model: b.Name, Version: version},
		Signal:      signal,
	})
}

// startEmbeddedBroker starts the simulated board's broker and returns the URL its client
// connects with. Secured, it knows the camera's own account (a password generated in the state
// directory) and lets anonymous clients read but never publish a command or a state.
func startEmbeddedBroker(cfg Config, secured bool, log *slog.Logger) (*mqtt.EmbeddedBroker, string, error) {
	opts := []mqtt.EmbeddedOption{mqtt.EmbeddedTopics(cfg.TopicPrefix, "")}
	if secured {
		pw, err := mqtt.LoadOrCreatePassword(filepath.Join(cfg.StateDir, mqtt.EmbeddedPasswordFile))
		if err != nil {
			return nil, "", err
		}
		opts = append(opts, mqtt.EmbeddedCamera(cfg.ID, pw))
	}
	eb, err := mqtt.NewEmbeddedBroker(cfg.MQTTListen, log.With("component", "mqtt-broker"), opts...)
	if err != nil {
		return nil, "", err
	}
	if err := eb.Start(); err != nil {
		return nil, "", fmt.Errorf("embedded MQTT broker on %s (set mqtt_listen to another address, or off): %w", cfg.MQTTListen, err)
	}
	log.Info("embedded MQTT broker", "url", eb.URL(), "authenticated", secured) // never CameraURL: it holds the password
	if secured {
		return eb, eb.CameraURL(), nil
	}
	return eb, eb.URL(), nil
}
