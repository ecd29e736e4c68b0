package mqtt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
)

// waitTimeout bounds every wait for a condition in these tests.
const waitTimeout = 10 * time.Second

// testLogger logs to the test when LENSCAP_TEST_LOG is set, else nowhere.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("LENSCAP_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fastConfig makes a client quick to notice a lost connection and to come back.
func fastConfig(c *Config) {
	c.KeepAlive = time.Second
	c.PingTimeout = time.Second
	c.ConnectTimeout = 2 * time.Second
	c.RetryInterval = 50 * time.Millisecond
	c.ReconnectMax = 100 * time.Millisecond
	c.WriteTimeout = 2 * time.Second
}

// msg is a message an observer received.
type msg struct {
	Topic    string
	Payload  string
	Retained bool
	at       time.Time // when the observer received it
}

// observer is a plain MQTT client that records what it receives: the operator's view.
type observer struct {
	t  testing.TB
	pc paho.Client

	mu      sync.Mutex
	msgs    []msg
	changed chan struct{} // closed and replaced on every message
	markers atomic.Int64
}

// newObserver connects with a fresh clean session as user (the broker URL carries the
// credentials) and subscribes to the filters at QoS 1.
func newObserver(t testing.TB, brokerURL string, filters ...string) *observer {
	t.Helper()
	return newObserverTLS(t, brokerURL, TLS{}, filters...)
}

func newObserverTLS(t testing.TB, brokerURL string, tc TLS, filters ...string) *observer {
	t.Helper()
	opts, err := BrokerOptions(brokerURL, tc)
	if err != nil {
		t.Fatal(err)
	}
	o := &observer{t: t, changed: make(chan struct{})}
	opts.SetClientID(fmt.Sprintf("observer-%d", observerSeq.Add(1)))
	opts.SetProtocolVersion(4)
	opts.SetCleanSession(true)
	opts.SetAutoReconnect(false)
	opts.SetConnectTimeout(5 * time.Second)
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		o.mu.Lock()
		o.msgs = append(o.msgs, msg{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained(), at: time.Now()})
		close(o.changed)
		o.changed = make(chan struct{})
		o.mu.Unlock()
	})
	o.pc = paho.NewClient(opts)
	if tok := o.pc.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("observer: connect: %v", tok.Error())
	}
	t.Cleanup(func() { o.pc.Disconnect(50) })
	if len(filters) > 0 {
		o.subscribe(filters...)
	}
	return o
}

var observerSeq atomic.Int64

func (o *observer) subscribe(filters ...string) {
	o.t.Helper()
	m := make(map[string]byte)
	for _, f := range filters {
		m[f] = 1
	}
	if tok := o.pc.SubscribeMultiple(m, nil); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		o.t.Fatalf("observer: subscribe %v: %v", filters, tok.Error())
	}
}

// publish publishes at QoS 1 and waits for the broker's PUBACK.
func (o *observer) publish(topic string, retained bool, payload any) {
	o.t.Helper()
	var b []byte
	switch p := payload.(type) {
	case string:
		b = []byte(p)
	case []byte:
		b = p
	default:
		var err error
		if b, err = json.Marshal(p); err != nil {
			o.t.Fatal(err)
		}
	}
	if tok := o.pc.Publish(topic, 1, retained, b); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		o.t.Fatalf("observer: publish %s: %v", topic, tok.Error())
	}
}

// all returns what was received so far.
func (o *observer) all() []msg {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]msg(nil), o.msgs...)
}

// waitFor waits until cond holds for the messages received so far, and returns them.
func (o *observer) waitFor(what string, cond func([]msg) bool) []msg {
	o.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		msgs := append([]msg(nil), o.msgs...)
		ch := o.changed
		o.mu.Unlock()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-ch:
		case <-deadline.C:
			o.t.Fatalf("timed out waiting for %s; received:\n%s", what, formatMsgs(msgs))
		}
	}
}

// sync publishes a marker on a topic the observer follows and waits for it: every message
// the broker sent the observer before has then been received.
func (o *observer) sync(topic string) {
	o.t.Helper()
	payload := fmt.Sprintf("marker-%d", o.markers.Add(1))
	o.publish(topic, false, payload)
	o.waitFor("marker "+payload, func(ms []msg) bool {
		for _, m := range ms {
			if m.Topic == topic && m.Payload == payload {
				return true
			}
		}
		return false
	})
}

func formatMsgs(ms []msg) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "  %s retained=%t %s\n", m.Topic, m.Retained, m.Payload)
	}
	return b.String()
}

// acks returns the acks received on topic, in order.
func acksOn(ms []msg, topic string) []Ack {
	var out []Ack
	for _, m := range ms {
		if m.Topic != topic {
			continue
		}
		var a Ack
		if err := json.Unmarshal([]byte(m.Payload), &a); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// acksWithID returns the acks for a command id received on topic.
func acksWithID(ms []msg, topic, id string) []Ack {
	var out []Ack
	for _, a := range acksOn(ms, topic) {
		if a.ID == id {
			out = append(out, a)
		}
	}
	return out
}

// last returns the payload of the last message on topic, and whether there is one.
func last(ms []msg, topic string) (msg, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Topic == topic {
			return ms[i], true
		}
	}
	return msg{}, false
}

// publishedState is the part of a published state the tests look at.
type publishedState struct {
	ID      string            `json:"id"`
	Video   device.KindStatus `json:"video"`
	Audio   device.KindStatus `json:"audio"`
	Seq     uint64            `json:"seq"`
	Groups  []string          `json:"groups"`
	Uptime  *float64          `json:"uptime_seconds"`
	Viewers *int              `json:"viewers"`
}

func parseState(t testing.TB, s string) publishedState {
	t.Helper()
	var st publishedState
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		t.Fatalf("state %q: %v", s, err)
	}
	return st
}

// countingDevice counts the privacy changes it is asked for.
type countingDevice struct {
	Device
	calls atomic.Int64
}

func (d *countingDevice) SetPrivacyBatch(ctx context.Context, cs []device.Change) (device.Status, []error) {
	d.calls.Add(int64(len(cs)))
	return d.Device.SetPrivacyBatch(ctx, cs)
}

// camera is a device over fake drivers, with a client that can be stopped and started again
// over the same device and state directory, and whose connection can be cut.
type camera struct {
	t       testing.TB
	id      string
	dir     string
	dev     *device.Device
	counted *countingDevice
	video   *devicetest.Driver
	audio   *devicetest.Driver
	cfg     Config

	mu     sync.Mutex
	conns  []net.Conn
	dialed int  // connections opened
	down   bool // the network is down: dial fails
	cancel context.CancelFunc
	done   chan error
	client *Client
}

// newCamera starts a device (its Run in a goroutine, waited for) and configures its client;
// startClient runs it. edit adjusts the client's configuration.
func newCamera(t testing.TB, brokerURL, id string, edit ...func(*Config)) *camera {
	t.Helper()
	return newCameraIn(t, t.TempDir(), brokerURL, id, edit...)
}

// newCameraIn is newCamera with its state (privacy state and command record) in dir.
func newCameraIn(t testing.TB, dir, brokerURL, id string, edit ...func(*Config)) *camera {
	t.Helper()
	cam := &camera{t: t, id: id, dir: dir}
	cam.video = devicetest.NewDriver(device.KindVideo, devicetest.Options{Interval: 20 * time.Millisecond})
	cam.audio = devicetest.NewDriver(device.KindAudio, devicetest.Options{Interval: 20 * time.Millisecond})
	dev, err := device.New(device.Config{Store: device.NewStore(cam.dir), Logger: testLogger(t).With("component", "device", "device", id)},
		cam.video, cam.audio)
	if err != nil {
		t.Fatal(err)
	}
	cam.dev = dev
	cam.counted = &countingDevice{Device: dev}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx) }()
	t.Cleanup(func() {
		cam.stopClient()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("device %s: Run: %v", id, err)
		}
	})
	select {
	case <-dev.Ready():
	case <-time.After(waitTimeout):
		t.Fatal("device not ready")
	}
	cam.cfg = Config{
		BrokerURL: brokerURL,
		ID:        id,
		Device:    cam.counted,
		Logger:    testLogger(t).With("component", "mqtt", "device", id),
		StoreDir:  cam.dir,
		dial:      cam.dial,
	}
	fastConfig(&cam.cfg)
	for _, e := range edit {
		e(&cam.cfg)
	}
	dev.Watch(func(device.Status) {
		cam.mu.Lock()
		c := cam.client
		cam.mu.Unlock()
		if c != nil {
			c.StateChanged()
		}
	})
	return cam
}

// dial opens the client's connections, keeping them so that cut can close them.
func (cam *camera) dial(u *url.URL, tc *tls.Config) (net.Conn, error) {
	cam.mu.Lock()
	down := cam.down
	cam.mu.Unlock()
	if down {
		return nil, errors.New("test: network down")
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	var c net.Conn
	var err error
	if u.Scheme == "ssl" {
		c, err = tls.DialWithDialer(&d, "tcp", u.Host, tc)
	} else {
		c, err = d.Dial("tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	cam.mu.Lock()
	cam.conns = append(cam.conns, c)
	cam.dialed++
	cam.mu.Unlock()
	return c, nil
}

// dials is how many connections the client opened so far.
func (cam *camera) dials() int {
	cam.mu.Lock()
	defer cam.mu.Unlock()
	return cam.dialed
}

// cut drops the client's connections without a DISCONNECT and keeps the network down until
// restore, as a lost network does: the broker publishes the last will.
func (cam *camera) cut() {
	cam.mu.Lock()
	defer cam.mu.Unlock()
	cam.down = true
	for _, c := range cam.conns {
		// A deadline in the past fails paho's pending read at once (closing the socket
		// under paho looks like its own close and goes unnoticed until the keepalive);
		// paho then drops the socket without a DISCONNECT.
		_ = c.SetDeadline(time.Now())
	}
	cam.conns = nil
}

// restore brings the network back: the client reconnects.
func (cam *camera) restore() {
	cam.mu.Lock()
	defer cam.mu.Unlock()
	cam.down = false
}

// startClient makes a new client over the camera's device and state directory and runs it.
func (cam *camera) startClient() *Client {
	cam.t.Helper()
	c, err := New(cam.cfg)
	if err != nil {
		cam.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cam.mu.Lock()
	cam.client, cam.cancel, cam.done = c, cancel, done
	cam.mu.Unlock()
	go func() { done <- c.Run(ctx) }()
	return c
}

// stopClient stops the client cleanly (it publishes "offline") and waits for Run to return.
func (cam *camera) stopClient() {
	cam.mu.Lock()
	cancel, done := cam.cancel, cam.done
	cam.cancel, cam.done, cam.client = nil, nil, nil
	cam.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			cam.t.Errorf("client %s: Run: %v", cam.id, err)
		}
	case <-time.After(waitTimeout):
		cam.t.Errorf("client %s: Run did not return", cam.id)
	}
}

// waitOnline waits until the device's retained availability is "online": its subscriptions
// are in place.
func waitOnline(o *observer, topics Topics, ids ...string) {
	o.t.Helper()
	o.waitFor(fmt.Sprintf("%v online", ids), func(ms []msg) bool {
		for _, id := range ids {
			if m, ok := last(ms, topics.Availability(id)); !ok || m.Payload != Online {
				return false
			}
		}
		return true
	})
}

// startBroker starts an anonymous mosquitto.
func startBroker(t testing.TB) *mqtttest.Broker {
	t.Helper()
	return mqtttest.Start(t, mqtttest.Options{})
}

func ptr[T any](v T) *T { return &v }
