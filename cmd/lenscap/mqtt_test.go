package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/cmd/internal/auth"
	"github.com/lenscap/lenscap/mqtt"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
	"github.com/lenscap/lenscap/rtc/rtctest"
)

// operator is an MQTT client playing lenscapctl: it publishes commands and collects acks.
type operator struct {
	c    paho.Client
	mu   sync.Mutex
	acks map[string]json.RawMessage
}

func newOperator(t *testing.T, url string) *operator {
	t.Helper()
	o := &operator{acks: map[string]json.RawMessage{}}
	opts := paho.NewClientOptions().AddBroker(strings.Replace(url, "mqtt://", "tcp://", 1)).
		SetClientID("operator").SetUsername("operator").SetPassword("op-secret")
	o.c = paho.NewClient(opts)
	if tok := o.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("operator connect: %v", tok.Error())
	}
	t.Cleanup(func() { o.c.Disconnect(100) })
	tok := o.c.Subscribe("lenscap/+/ack", 1, func(_ paho.Client, m paho.Message) {
		var a struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Payload(), &a) == nil {
			o.mu.Lock()
			o.acks[a.ID] = append(json.RawMessage(nil), m.Payload()...)
			o.mu.Unlock()
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("operator subscribe: %v", tok.Error())
	}
	return o
}

// waitOnline waits for the device's retained availability to say online: its client is
// connected and subscribed (it publishes online after subscribing).
func (o *operator) waitOnline(t *testing.T, id string) {
	t.Helper()
	online := make(chan struct{}, 1)
	tok := o.c.Subscribe("lenscap/"+id+"/availability", 1, func(_ paho.Client, m paho.Message) {
		if string(m.Payload()) == "online" {
			select {
			case online <- struct{}{}:
			default:
			}
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe availability: %v", tok.Error())
	}
	select {
	case <-online:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never came online", id)
	}
}

func (o *operator) command(t *testing.T, topic, payload, id string) json.RawMessage {
	t.Helper()
	if tok := o.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		a, ok := o.acks[id]
		o.mu.Unlock()
		if ok {
			return a
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no ack for %s", id)
	return nil
}

func TestMQTTCommandCutsAViewerAsTheButtonDoes(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{
		Users: map[string]string{"cam-1": "cam-secret", "operator": "op-secret"},
		ACL: `pattern read lenscap/%u/cmd
pattern write lenscap/%u/ack
pattern write lenscap/%u/state
pattern write lenscap/%u/availability
pattern write homeassistant/+/%u/+/config
pattern read lenscap/all/cmd

user cam-1
topic read lenscap/group/hall/cmd

user operator
topic readwrite lenscap/#
topic read homeassistant/#
`,
	})
	url := broker.URL("cam-1", "cam-secret")
	d := startDaemon(t, t.TempDir(), "--mqtt", url, "--id", "cam-1", "--groups", "hall")
	op := newOperator(t, broker.URL("", ""))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := rtctest.Dial(ctx, "ws"+strings.TrimPrefix(d.url, "http")+"/ws", rtctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	video := func(since time.Time) func(*rtctest.Viewer) bool {
		return func(v *rtctest.Viewer) bool {
			for _, p := range v.Packets() {
				if p.Kind == "video" && p.Arrival.After(since) {
					return true
				}
			}
			return false
		}
	}
	if err := v.WaitFor(ctx, "video", video(time.Time{})); err != nil {
		t.Fatal(err)
	}

	n := v.OfferCount()
	ack := op.command(t, "lenscap/group/hall/cmd", `{"id":"cut-1","action":"privacy","video":true,"audio":true}`, "cut-1")
	if !strings.Contains(string(ack), `"ok":true`) {
		t.Fatalf("cut ack: %s", ack)
	}
	// Acked after the cut: the viewer is renegotiated, the sources are closed, nothing flows.
	if err := v.WaitFor(ctx, "renegotiation", rtctest.NothingSent(n)); err != nil {
		t.Fatal(err)
	}
	st := d.state(t)
	if !st.Video.Private || st.Video.By != "remote" || st.Video.Live || st.Audio.Live {
		t.Fatalf("after the MQTT cut: %+v", st)
	}
	quiet := time.Now().Add(100 * time.Millisecond)
	time.Sleep(400 * time.Millisecond)
	for _, p := range v.Packets() {
		if p.Arrival.After(quiet) {
			t.Fatalf("%s packet %v after the MQTT cut", p.Kind, p.Arrival.Sub(quiet))
		}
	}

	// The same id again: acknowledged with the first result, not applied twice.
	seq := st.Seq
	again := op.command(t, "lenscap/cam-1/cmd", `{"id":"cut-1","action":"privacy","video":false,"audio":false}`, "cut-1")
	if !strings.Contains(string(again), `"ok":true`) || d.state(t).Seq != seq || !d.state(t).Video.Private {
		t.Fatalf("repeated id: %s, state %+v", again, d.state(t))
	}

	lift := time.Now()
	ack = op.command(t, "lenscap/all/cmd", `{"id":"lift-1","action":"privacy","video":false,"audio":false}`, "lift-1")
	if !strings.Contains(string(ack), `"ok":true`) {
		t.Fatalf("lift ack: %s", ack)
	}
	if err := v.WaitFor(ctx, "video after the lift", video(lift)); err != nil {
		t.Fatal(err)
	}
	for _, p := range v.Packets() {
		if p.Kind == "video" && p.Arrival.After(lift) {
			if !p.KeyStart {
				t.Error("first video packet after the MQTT lift is not a keyframe")
			}
			break
		}
	}

	// The button wins over MQTT.
	if code, b := d.do(t, "POST", "/api/button", "", nil); code != 200 {
		t.Fatalf("button: %d %s", code, b)
	}
	ack = op.command(t, "lenscap/cam-1/cmd", `{"id":"lift-2","action":"privacy","video":false}`, "lift-2")
	if !strings.Contains(string(ack), `"ok":false`) || !strings.Contains(string(ack), "button") {
		t.Fatalf("remote lift of the button's privacy: %s", ack)
	}
}

func TestEmbeddedBrokerOnTheSimulatedBoard(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--id", "sim-cam")
	var url string
	for _, line := range strings.Split(d.log.String(), "\n") {
		if strings.Contains(line, "embedded MQTT broker") {
			if i := strings.Index(line, "url=mqtt://"); i >= 0 {
				url = strings.Fields(line[i+4:])[0]
			}
		}
	}
	if url == "" {
		t.Fatalf("no embedded broker in the log:\n%s", d.log)
	}
	op := newOperator(t, url)
	op.waitOnline(t, "sim-cam")
	ack := op.command(t, "lenscap/sim-cam/cmd", `{"id":"a","action":"privacy","audio":true}`, "a")
	if !strings.Contains(string(ack), `"ok":true`) {
		t.Fatalf("ack %s", ack)
	}
	if st := d.state(t); !st.Audio.Private || st.Video.Private {
		t.Fatalf("state %+v", st)
	}
}

func TestWithCredentialsTheEmbeddedBrokerTakesNoAnonymousCommand(t *testing.T) {
	k, pub := fleetKey(t)
	dir := t.TempDir()
	d := startDaemon(t, dir, "--id", "sim-cam", "--token-keys", pub)
	pw, err := os.ReadFile(filepath.Join(dir, mqtt.EmbeddedPasswordFile))
	if err != nil || len(pw) < 16 {
		t.Fatalf("the camera's broker password: %q, %v", pw, err)
	}
	var url string
	for _, line := range strings.Split(d.log.String(), "\n") {
		if i := strings.Index(line, "url=mqtt://"); strings.Contains(line, "embedded MQTT broker") && i >= 0 {
			url = strings.Fields(line[i+4:])[0]
		}
	}
	if url == "" || !strings.Contains(d.log.String(), "authenticated=true") || strings.Contains(d.log.String(), strings.TrimSpace(string(pw))) {
		t.Fatalf("embedded broker not authenticated, or its password logged:\n%s", d.log)
	}
	// Anonymous clients watch (the retained state and availability) but never command: the
	// publish is refused, no ack comes, nothing changes.
	var mu sync.Mutex
	var seen []string
	c := paho.NewClient(paho.NewClientOptions().AddBroker(strings.Replace(url, "mqtt://", "tcp://", 1)).SetClientID("anon"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("anonymous connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	c.Subscribe("lenscap/#", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		seen = append(seen, m.Topic())
		mu.Unlock()
	}).WaitTimeout(5 * time.Second)
	saw := func(topic string) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(seen, topic)
	}
	for deadline := time.Now().Add(5 * time.Second); !saw("lenscap/sim-cam/state"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("an anonymous client cannot read the state")
		}
	}
	c.Publish("lenscap/sim-cam/cmd", 1, false, `{"id":"y","action":"privacy","audio":true}`).WaitTimeout(2 * time.Second)
	time.Sleep(500 * time.Millisecond)
	if saw("lenscap/sim-cam/ack") {
		t.Error("an anonymous command was acknowledged")
	}
	view := grant(t, k, "v", auth.RoleView, "sim-cam", time.Hour, time.Now())
	if _, body := d.do(t, "GET", "/api/state", view, nil); strings.Contains(string(body), `"audio":{"private":true`) {
		t.Errorf("an anonymous command changed the state: %s", body)
	}
}

func TestAnMQTTBrokerWithoutCredentialsBeyondLoopbackIsRefused(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cfg := mustLoad(t, testPlatform(), []string{"--board", "sim", "--listen", "127.0.0.1:0", "--mqtt", "mqtt://192.0.2.1:1883", "--state-dir", t.TempDir()}, env(nil))
	if _, err := newDaemon(cfg, log, env(nil)); err == nil || !strings.Contains(err.Error(), "mqtt_insecure") {
		t.Fatalf("an anonymous broker beyond loopback: %v, want a refusal naming mqtt_insecure", err)
	}
	cfg.MQTTInsecure = true
	d, err := newDaemon(cfg, log, env(nil)) // the client connects only in run: no traffic leaves
	if err != nil {
		t.Fatalf("with mqtt_insecure: %v", err)
	}
	d.close()
}
