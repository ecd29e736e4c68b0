package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
	"github.com/lenscap/lenscap/rtc/rtctest"
)

// signalACL lets cam-1's signalling account follow its sessions and alice watch cam-1 only,
// through her own sessions only (DESIGN.md, "MQTT signalling"); cam-1's own account has no
// session topic.
const signalACL = `pattern read lenscap/%u/cmd
pattern write lenscap/%u/ack
pattern write lenscap/%u/state
pattern write lenscap/%u/availability
pattern write homeassistant/+/%u/+/config
pattern read lenscap/all/cmd

user cam-1-signal
topic read lenscap/cam-1/session/+/+/viewer
topic write lenscap/cam-1/session/+/+/camera

user alice
topic read lenscap/cam-1/availability
topic write lenscap/cam-1/session/alice/+/viewer
topic read lenscap/cam-1/session/alice/+/camera

user bob
topic write lenscap/cam-2/session/bob/+/viewer
topic read lenscap/cam-2/session/bob/+/camera
`

const signalToken = "alice-watches-cam-1-token"

// signalUsers are the broker's accounts: the camera's two, and two viewers'.
func signalUsers() map[string]string {
	return map[string]string{"cam-1": "cam-secret", "cam-1-signal": "sig-secret", "alice": "alice-secret", "bob": "bob-secret"}
}

// signalArgs start cam-1 with MQTT signalling on an account of its own.
func signalArgs(b *mqtttest.Broker) []string {
	return []string{"--mqtt", b.URL("cam-1", "cam-secret"), "--id", "cam-1", "--mqtt-signalling",
		"--mqtt-signal-url", b.URL("cam-1-signal", "sig-secret"), "--token", signalToken}
}

// mqttLink is a viewer's signalling through the broker: rtctest.Link over paho.
type mqttLink struct {
	c         paho.Client
	up, down  string
	msgs      chan []byte
	closeOnce sync.Once
	closed    chan struct{}
}

// dialSignal connects account to the broker and opens a session with device id: it follows
// the session's camera topic before anything is sent, with its will saying bye.
func dialSignal(t *testing.T, b *mqtttest.Broker, account, password, id string) *mqttLink {
	t.Helper()
	sid := make([]byte, 16)
	rand.Read(sid)
	base := "lenscap/" + id + "/session/" + account + "/" + hex.EncodeToString(sid) + "/"
	l := &mqttLink{up: base + "viewer", down: base + "camera", msgs: make(chan []byte, 64), closed: make(chan struct{})}
	opts := paho.NewClientOptions().AddBroker("tcp://"+b.Addr()).SetClientID(account+"-"+hex.EncodeToString(sid[:4])).
		SetUsername(account).SetPassword(password).SetWill(l.up, `{"type":"bye"}`, 1, false).SetOrderMatters(true)
	l.c = paho.NewClient(opts)
	if tok := l.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s connect: %v", account, tok.Error())
	}
	tok := l.c.Subscribe(l.down, 1, func(_ paho.Client, m paho.Message) { l.msgs <- m.Payload() })
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s subscribe: %v", account, tok.Error())
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func (l *mqttLink) Read(ctx context.Context) ([]byte, error) {
	select {
	case b := <-l.msgs:
		return b, nil
	case <-l.closed:
		return nil, context.Canceled
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *mqttLink) Write(ctx context.Context, b []byte) error {
	tok := l.c.Publish(l.up, 1, false, b)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *mqttLink) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.c.Disconnect(100)
	})
	return nil
}

// hello starts the session with a credential and returns the viewer answering on it.
func (l *mqttLink) hello(t *testing.T, token string) *rtctest.Viewer {
	t.Helper()
	v, err := rtctest.Connect(l, rtctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	if err := v.Send(context.Background(), map[string]string{"type": "hello", "token": token}); err != nil {
		t.Fatal(err)
	}
	return v
}

func startSignalCamera(t *testing.T) (*mqtttest.Broker, *testDaemon) {
	t.Helper()
	b := mqtttest.Start(t, mqtttest.Options{
		Users: signalUsers(),
		ACL:   signalACL,
	})
	d := startDaemon(t, t.TempDir(), signalArgs(b)...)
	waitSignalOnline(t, b, d)
	return b, d
}

// waitSignalOnline waits, as alice, for cam-1's retained "online": its client has subscribed
// (it announces after subscribing).
func waitSignalOnline(t *testing.T, b *mqtttest.Broker, d *testDaemon) {
	t.Helper()
	l := dialSignal(t, b, "alice", "alice-secret", "cam-1")
	online := make(chan struct{}, 1)
	l.c.Subscribe("lenscap/cam-1/availability", 1, func(_ paho.Client, m paho.Message) {
		if string(m.Payload()) == "online" {
			select {
			case online <- struct{}{}:
			default:
			}
		}
	})
	select {
	case <-online:
	case <-time.After(10 * time.Second):
		t.Fatalf("cam-1 never came online\n%s", d.log)
	}
	l.Close()
}

func TestMQTTSignallingViewerGetsTheCutAndTheLift(t *testing.T) {
	b, d := startSignalCamera(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v := dialSignal(t, b, "alice", "alice-secret", "cam-1").hello(t, signalToken)
	if err := v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})); err != nil {
		t.Fatal(err)
	}
	n := v.OfferCount()
	cut := time.Now()
	if code, body := d.do(t, "POST", "/api/button", signalToken, nil); code != 200 {
		t.Fatalf("button: %d %s", code, body)
	}
	if err := v.WaitFor(ctx, "the cut's offer", rtctest.NothingSent(n)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // anything in flight would have arrived by now
	for _, p := range v.Packets() {
		k := device.Kind(p.Kind)
		if !d.srv.CaptureTime(k, p.Timestamp).Before(cut) {
			t.Fatalf("%s packet of a frame captured %v after the cut", p.Kind, d.srv.CaptureTime(k, p.Timestamp).Sub(cut))
		}
	}
	lift := time.Now()
	if code, body := d.do(t, "POST", "/api/button", signalToken, nil); code != 200 {
		t.Fatalf("button: %d %s", code, body)
	}
	if err := v.WaitFor(ctx, "video after the lift", rtctest.Receiving("video", lift)); err != nil {
		t.Fatal(err)
	}
	for _, p := range v.Packets() {
		if p.Kind == "video" && p.Arrival.After(lift) {
			if !p.KeyStart {
				t.Error("first video packet after the lift is not a keyframe")
			}
			break
		}
	}
	if st := d.mq.SignalStats(); st.Active != 1 || st.Started != 1 {
		t.Errorf("signal stats: %+v", st)
	}
	_, metrics := d.do(t, "GET", "/metrics", signalToken, nil)
	for _, want := range []string{"lenscap_signal_sessions 1", "lenscap_signal_sessions_total 1", "lenscap_signal_sessions_max 16"} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestMQTTSignallingRefusesWithoutAValidCredential(t *testing.T) {
	b, d := startSignalCamera(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, token := range []string{"", "not-the-token-at-all"} {
		v := dialSignal(t, b, "alice", "alice-secret", "cam-1").hello(t, token)
		if err := v.WaitFor(ctx, "bye", func(v *rtctest.Viewer) bool { return v.Byes() > 0 }); err != nil {
			t.Fatal(err)
		}
		if errs := v.Errors(); len(errs) != 1 || !strings.Contains(errs[0], "valid credential") {
			t.Errorf("token %q: errors %q", token, errs)
		}
		if v.OfferCount() != 0 || d.srv.Viewers() != 0 {
			t.Errorf("token %q: %d offers, %d viewers", token, v.OfferCount(), d.srv.Viewers())
		}
		if strings.Contains(d.log.String(), "not-the-token-at-all") {
			t.Error("a presented credential reached the log")
		}
	}
	// A message for no session is told so.
	l := dialSignal(t, b, "alice", "alice-secret", "cam-1")
	v, err := rtctest.Connect(l, rtctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Send(ctx, map[string]string{"type": "answer", "sdp": "v=0"}); err != nil {
		t.Fatal(err)
	}
	if err := v.WaitFor(ctx, "bye", func(v *rtctest.Viewer) bool { return v.Byes() > 0 }); err != nil {
		t.Fatal(err)
	}
	if errs := v.Errors(); len(errs) != 1 || !strings.Contains(errs[0], "no such session") {
		t.Errorf("errors %q", errs)
	}
}

func TestMQTTSignallingTopicsKeepAccountsApart(t *testing.T) {
	b, _ := startSignalCamera(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// bob, who may watch cam-2 only, follows every session of cam-1: he must see nothing.
	spy := dialSignal(t, b, "bob", "bob-secret", "cam-2")
	var mu sync.Mutex
	var seen []string
	tok := spy.c.Subscribe("lenscap/cam-1/session/#", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		seen = append(seen, m.Topic())
		mu.Unlock()
	})
	tok.WaitTimeout(5 * time.Second)
	v := dialSignal(t, b, "alice", "alice-secret", "cam-1").hello(t, signalToken)
	if err := v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})); err != nil {
		t.Fatal(err)
	}
	// bob cannot start a session with cam-1 as himself either: his hello is not delivered.
	bv := dialSignal(t, b, "bob", "bob-secret", "cam-1").hello(t, signalToken)
	time.Sleep(time.Second)
	if bv.OfferCount() != 0 || bv.Byes() != 0 {
		t.Errorf("bob's hello to cam-1 was answered: %d offers, %d byes", bv.OfferCount(), bv.Byes())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) > 0 {
		t.Errorf("bob read %d messages of cam-1's sessions, first on %s", len(seen), seen[0])
	}
}

func TestSignallingThroughARemoteBrokerNeedsAnAccountOfItsOwn(t *testing.T) {
	for _, tc := range []struct {
		command, signal, want string
	}{
		{"mqtt://cam-1:x@127.0.0.1:1883", "", ""},
		{"mqtt://cam-1:x@broker.example.org:1883", "", "needs mqtt_signal_url"},
		{"mqtt://cam-1:x@broker.example.org:1883", "mqtt://cam-1:x@broker.example.org:1883", "account of its own"},
		{"mqtt://cam-1:x@broker.example.org:1883", "mqtt://cam-1-signal:y@broker.example.org:1883", ""},
	} {
		err := ownSignalAccount(tc.command, tc.signal)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s, %q: %v, want %q", tc.command, tc.signal, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), ":x@") {
			t.Errorf("the error shows a password: %v", err)
		}
	}
}
