package main

// The broker lenscap talks to in the guest: mochi-mqtt on loopback with an inline client, so the
// test subscribes and publishes without a network client. It is the same for the simulated
// board and the emulated board's profile (only the simulated board has an embedded broker).

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

type broker struct {
	srv  *mochi.Server
	addr string

	mu   sync.Mutex
	msgs map[string][][]byte // topic -> payloads, in arrival order
}

func startBroker(addr string) (*broker, error) {
	b := &broker{addr: addr, msgs: map[string][][]byte{}}
	b.srv = mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := b.srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, err
	}
	if err := b.srv.AddListener(listeners.NewTCP(listeners.Config{ID: "hil", Address: addr})); err != nil {
		return nil, err
	}
	go func() { _ = b.srv.Serve() }()
	err := b.srv.Subscribe("#", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.msgs[pk.TopicName] = append(b.msgs[pk.TopicName], append([]byte(nil), pk.Payload...))
	})
	return b, err
}

func (b *broker) close() { _ = b.srv.Close() }

func (b *broker) publish(topic string, payload []byte) error {
	return b.srv.Publish(topic, payload, false, 1)
}

// waitMessage waits up to timeout for a message on topic for which ok is true.
func (b *broker) waitMessage(topic string, timeout time.Duration, ok func(map[string]any) bool) (map[string]any, error) {
	deadline := time.Now().Add(timeout)
	seen := 0
	for {
		b.mu.Lock()
		msgs := b.msgs[topic]
		b.mu.Unlock()
		for ; seen < len(msgs); seen++ {
			var m map[string]any
			if json.Unmarshal(msgs[seen], &m) == nil && ok(m) {
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			var topics []string
			b.mu.Lock()
			for t := range b.msgs {
				topics = append(topics, t)
			}
			b.mu.Unlock()
			return nil, fmt.Errorf("no matching message on %s within %v (topics seen: %s)", topic, timeout, strings.Join(topics, " "))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
