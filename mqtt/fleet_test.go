package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
)

// runFleet starts a fleet of n devices on broker and waits until every device is online.
func runFleet(tb testing.TB, brokerURL, dir string, n int, groups func(int) []string) *Fleet {
	tb.Helper()
	f, err := NewFleet(FleetConfig{N: n, BrokerURL: brokerURL, Dir: dir, Groups: groups, Logger: testLogger(tb),
		Configure: func(_ int, c *Config) {
			c.RetryInterval = 100 * time.Millisecond
			c.ReconnectMax = 500 * time.Millisecond
			c.Discovery.Disabled = true // 3 retained configs per device: not what is measured
		}})
	if err != nil {
		tb.Fatal(err)
	}
	online := newAckCounter(tb, brokerURL, topics.Every("availability"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("fleet: %v", err)
		}
	})
	online.waitOnline(n)
	return f
}

// ackCounter is a lightweight observer for many devices: it counts the acks of the command in
// flight, with their latency, and the devices online.
type ackCounter struct {
	tb testing.TB
	pc paho.Client

	mu        sync.Mutex
	want      string // the command id in flight
	sent      time.Time
	latencies []time.Duration
	failed    []Ack
	from      map[string]bool // devices that acked want
	online    map[string]bool
	changed   chan struct{}
}

func newAckCounter(tb testing.TB, brokerURL string, filters ...string) *ackCounter {
	tb.Helper()
	a := &ackCounter{tb: tb, from: map[string]bool{}, online: map[string]bool{}, changed: make(chan struct{})}
	opts, err := BrokerOptions(brokerURL, TLS{})
	if err != nil {
		tb.Fatal(err)
	}
	opts.SetClientID(fmt.Sprintf("counter-%d", observerSeq.Add(1))).SetProtocolVersion(4).SetAutoReconnect(false)
	opts.SetDefaultPublishHandler(a.onMessage)
	a.pc = paho.NewClient(opts)
	if tok := a.pc.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		tb.Fatalf("counter: connect: %v", tok.Error())
	}
	tb.Cleanup(func() { a.pc.Disconnect(50) })
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	if tok := a.pc.SubscribeMultiple(m, nil); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		tb.Fatalf("counter: subscribe: %v", tok.Error())
	}
	return a
}

func (a *ackCounter) onMessage(_ paho.Client, m paho.Message) {
	at := time.Now()
	id, leaf, ok := topics.Device(m.Topic())
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch leaf {
	case "availability":
		a.online[id] = string(m.Payload()) == Online
	case "ack":
		var ack Ack
		if json.Unmarshal(m.Payload(), &ack) != nil || ack.ID != a.want || a.from[id] {
			return
		}
		a.from[id] = true
		a.latencies = append(a.latencies, at.Sub(a.sent))
		if !ack.OK {
			a.failed = append(a.failed, ack)
		}
	}
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *ackCounter) wait(what string, cond func() bool, timeout time.Duration) {
	a.tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		a.mu.Lock()
		ok, ch := cond(), a.changed
		a.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			a.mu.Lock()
			defer a.mu.Unlock()
			a.tb.Fatalf("timed out waiting for %s (%d acks, %d online)", what, len(a.from), len(a.online))
		}
	}
}

func (a *ackCounter) waitOnline(n int) {
	a.wait(fmt.Sprintf("%d devices online", n), func() bool {
		c := 0
		for _, on := range a.online {
			if on {
				c++
			}
		}
		return c >= n
	}, 30*time.Second+time.Duration(n)*20*time.Millisecond)
}

// broadcast publishes a command and waits until n devices acked it; it returns the acks'
// latencies (from just before the publication to their arrival) and the failed acks.
func (a *ackCounter) broadcast(topic string, c Command, n int) ([]time.Duration, []Ack) {
	a.tb.Helper()
	b, _ := json.Marshal(c)
	a.mu.Lock()
	a.want, a.sent, a.latencies, a.failed = c.ID, time.Now(), nil, nil
	clear(a.from)
	a.mu.Unlock()
	if tok := a.pc.Publish(topic, 1, false, b); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		a.tb.Fatalf("publish: %v", tok.Error())
	}
	a.wait(fmt.Sprintf("%d acks of %s", n, c.ID), func() bool { return len(a.from) >= n }, 60*time.Second)
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.latencies), slices.Clone(a.failed)
}

func TestFleetBroadcastAndGroupCommandsAreAckedByTheirDevices(t *testing.T) {
	t.Parallel()
	broker := startBroker(t)
	url := broker.URL("", "")
	const n = 20
	f := runFleet(t, url, t.TempDir(), n, func(i int) []string {
		if i%2 == 0 {
			return []string{"even"}
		}
		return nil
	})
	counter := newAckCounter(t, url, topics.Every("ack"))
	lat, failed := counter.broadcast(topics.AllCmd(), Command{ID: "fleet-1", Action: ActionPrivacy, Video: ptr(true)}, n)
	if len(lat) != n || len(failed) != 0 {
		t.Errorf("broadcast: %d acks, %d failed %v; want %d ok", len(lat), len(failed), failed, n)
	}
	for i := range n {
		if !f.Device(i).Status().Video.Private {
			t.Errorf("%s: video not private after the broadcast", f.IDs()[i])
		}
	}
	lat, _ = counter.broadcast(topics.GroupCmd("even"), Command{ID: "fleet-2", Action: ActionPrivacy, Video: ptr(false)}, n/2)
	// Only the even devices ack; a broadcast after it proves the others never got it.
	counter.broadcast(topics.AllCmd(), Command{ID: "fleet-3", Action: ActionState}, n)
	for i := range n {
		if got, want := f.Device(i).Status().Video.Private, i%2 != 0; got != want {
			t.Errorf("%s: video private %t after the group command, want %t", f.IDs()[i], got, want)
		}
	}
	if len(lat) != n/2 {
		t.Errorf("group command: %d acks, want %d", len(lat), n/2)
	}
}

func BenchmarkBroadcastPrivacy200(b *testing.B)  { benchmarkBroadcastPrivacy(b, 200) }
func BenchmarkBroadcastPrivacy1000(b *testing.B) { benchmarkBroadcastPrivacy(b, 1000) }

// benchmarkBroadcastPrivacy measures, for a fleet of n simulated devices on one mosquitto, the
// time from the publication of a broadcast privacy command to each device's ack (each device
// applies it, persists its state and its command record with fsync, then acks): p50, p99 and
// max over all acks of all iterations; ns/op is the time until the last ack of a broadcast.
// The devices' state directories are in LENSCAP_FLEET_DIR when set (e.g. /dev/shm, to leave
// out the fsyncs of n devices sharing one disk), else in the benchmark's temporary directory.
func benchmarkBroadcastPrivacy(b *testing.B, n int) {
	if lim, err := mqtttest.RaiseFileLimit(uint64(4*n + 1024)); err != nil || lim < uint64(2*n+64) {
		b.Skipf("open file limit %d too low for %d devices (%v)", lim, n, err)
	}
	broker := mqtttest.Start(b, mqtttest.Options{Extra: []string{
		"max_queued_messages 100000", // the counter receives n acks at once
		"max_inflight_messages 0",
	}})
	url := broker.URL("", "")
	dir := b.TempDir()
	if d := os.Getenv("LENSCAP_FLEET_DIR"); d != "" {
		var err error
		if dir, err = os.MkdirTemp(d, "fleet"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	runFleet(b, url, dir, n, nil)
	counter := newAckCounter(b, url, topics.Every("ack"))
	var all []time.Duration
	i := 0
	for b.Loop() {
		i++
		lat, failed := counter.broadcast(topics.AllCmd(), Command{ID: fmt.Sprintf("bench-%d", i), Action: ActionPrivacy,
			Video: ptr(i%2 == 1), Audio: ptr(i%2 == 1)}, n)
		if len(failed) > 0 {
			b.Fatalf("%d devices refused: %+v", len(failed), failed[0])
		}
		all = append(all, lat...)
	}
	slices.Sort(all)
	q := func(p float64) float64 { return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / 1e6 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(all[len(all)-1])/1e6, "max-ms")
	b.ReportMetric(float64(n), "devices")
}
