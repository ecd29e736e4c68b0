//go:build linux

package main

// The broker lenscap talks to in the guest: the firmware's own embedded broker
// (mqtt.EmbeddedBroker, the simulated board's) on loopback. The test records every message
// through the broker's inline subscription and publishes commands through it, without a
// network client.

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lenscap/lenscap/mqtt"
)

type broker struct {
	eb *mqtt.EmbeddedBroker

	mu   sync.Mutex
	msgs map[string][][]byte // topic -> payloads, in arrival order
}

// startBroker starts the embedded broker on addr, recording every message from then on.
func startBroker(addr string) (*broker, error) {
	eb, err := mqtt.NewEmbeddedBroker(addr, nil)
	if err != nil {
		return nil, err
	}
	if err := eb.Start(); err != nil {
		return nil, err
	}
	b := &broker{eb: eb, msgs: map[string][][]byte{}}
	if err := eb.Subscribe("#", b.record); err != nil {
		_ = eb.Close()
		return nil, err
	}
	return b, nil
}

// record keeps a message; the broker calls it on a publisher's goroutine.
func (b *broker) record(topic string, payload []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs[topic] = append(b.msgs[topic], payload)
}

func (b *broker) close() { _ = b.eb.Close() }

func (b *broker) publish(topic string, payload []byte) error {
	return b.eb.Publish(topic, payload, false, 1)
}

// messages is what arrived on topic so far.
func (b *broker) messages(topic string) [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.msgs[topic]
}

// topics lists the topics messages arrived on.
func (b *broker) topics() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var t []string
	for k := range b.msgs {
		t = append(t, k)
	}
	sort.Strings(t)
	return strings.Join(t, " ")
}

// waitMessage waits up to timeout for a JSON message on topic for which ok is true.
func (b *broker) waitMessage(topic string, timeout time.Duration, ok func(map[string]any) bool) (map[string]any, error) {
	deadline := time.Now().Add(timeout)
	seen := 0
	for {
		msgs := b.messages(topic)
		for ; seen < len(msgs); seen++ {
			var m map[string]any
			if json.Unmarshal(msgs[seen], &m) == nil && ok(m) {
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no matching message on %s within %v (topics seen: %s)", topic, timeout, b.topics())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
