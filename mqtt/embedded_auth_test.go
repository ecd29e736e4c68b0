package mqtt

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// startEmbedded starts an embedded broker on a free loopback port, closed when the test ends.
func startEmbedded(t *testing.T, opts ...EmbeddedOption) *EmbeddedBroker {
	t.Helper()
	b, err := NewEmbeddedBroker("127.0.0.1:0", testLogger(t).With("component", "mqtt-broker"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() }) // after the camera's client stopped (cleanups run last first)
	return b
}

// connect connects a plain paho client with a clean session, without reconnecting; edit
// adjusts its options. It returns the connection's error (a refused CONNACK).
func connect(t *testing.T, brokerURL, clientID string, edit func(*paho.ClientOptions)) (paho.Client, error) {
	t.Helper()
	opts, err := BrokerOptions(brokerURL, TLS{})
	if err != nil {
		t.Fatal(err)
	}
	opts.SetClientID(clientID).SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(time.Second)
	if edit != nil {
		edit(opts)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(waitTimeout) {
		t.Fatalf("%s: connect: no answer", clientID)
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

func withUser(brokerURL, user, password string) string {
	u, _ := url.Parse(brokerURL)
	u.User = url.UserPassword(user, password)
	return u.String()
}

func TestEmbeddedBrokerWithAccountsKeepsAnonymousClientsToWatching(t *testing.T) {
	t.Parallel()
	b := startEmbedded(t, EmbeddedCamera("cam-1", "cam-secret"), EmbeddedOperator("operator", "op-secret"))
	if u := b.CameraURL(); !strings.Contains(u, "cam-1:cam-secret@") {
		t.Fatalf("CameraURL %s: want the camera's account in it", u)
	}
	cam := newCamera(t, b.CameraURL(), "cam-1", func(c *Config) { c.KeepAlive = 5 * time.Second })
	watch := newObserver(t, b.URL(), topics.Availability("cam-1"), topics.Ack("cam-1"), topics.State("cam-1"))
	cam.startClient()
	waitOnline(watch, topics, "cam-1")
	watch.waitFor("state", func(ms []msg) bool { _, ok := last(ms, topics.State("cam-1")); return ok })
	snoop := newSnoop(t, b.URL(), "lenscap/#")
	dials := cam.dials()

	tryForgeriesAsAnonymous(t, b)

	// The operator commands; its command after the forgeries is the camera's only ack.
	op := newObserver(t, withUser(b.URL(), "operator", "op-secret"), topics.Ack("cam-1"))
	op.publish(topics.Cmd("cam-1"), false, Command{ID: "genuine", Action: ActionPrivacy, Audio: ptr(true)})
	ms := watch.waitFor("ack of genuine", func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-1"), "genuine")) > 0 })
	if a := acksWithID(ms, topics.Ack("cam-1"), "genuine")[0]; !a.OK {
		t.Errorf("operator's command: ack %+v, want ok", a)
	}
	snoop.syncAck(topics.Ack("cam-1"), "genuine")
	for _, m := range append(ms, snoop.all()...) {
		if strings.Contains(m.Payload, "forged") {
			t.Errorf("an anonymous client's publication reached a subscriber: %s %s", m.Topic, m.Payload)
		}
		if m.Topic == topics.Cmd("cam-1") {
			t.Errorf("an anonymous subscriber received a command: %s", m.Payload)
		}
	}
	if st := cam.dev.Status(); st.Video.Private || !st.Audio.Private {
		t.Errorf("status %+v, want only the operator's command applied (audio private)", st)
	}
	checkRetainedAreTheCameras(t, b.URL())
	if n := cam.dials(); n != dials {
		t.Errorf("the camera connected %d more times: its session was taken over", n-dials)
	}
}

func TestEmbeddedBrokerRefusesWrongAccountsAndClientIDs(t *testing.T) {
	t.Parallel()
	b := startEmbedded(t, EmbeddedCamera("cam-1", "cam-secret"), EmbeddedOperator("operator", "op-secret"))
	refused := []struct {
		what, url, clientID string
	}{
		{"the operator with the camera's client id", withUser(b.URL(), "operator", "op-secret"), "cam-1"},
		{"the camera's user with a wrong password", withUser(b.URL(), "cam-1", "guess"), "cam-1"},
		{"the camera's account with another client id", withUser(b.URL(), "cam-1", "cam-secret"), "not-the-camera"},
		{"an unknown user", withUser(b.URL(), "mallory", "x"), "mallory"},
		{"the operator with a wrong password", withUser(b.URL(), "operator", "cam-secret"), "ctl-1"},
	}
	for _, r := range refused {
		if _, err := connect(t, r.url, r.clientID, nil); err == nil {
			t.Errorf("%s: connected", r.what)
		}
	}
	if _, err := connect(t, withUser(b.URL(), "operator", "op-secret"), "ctl-1", nil); err != nil {
		t.Errorf("the operator: %v", err)
	}
	// The operator publishes commands only.
	op, err := connect(t, withUser(b.URL(), "operator", "op-secret"), "ctl-2", nil)
	if err != nil {
		t.Fatal(err)
	}
	op.Publish(topics.State("cam-1"), 1, true, `{"forged":true}`).WaitTimeout(time.Second)
	// A late subscriber would get a retained state at once, before a marker published after.
	watch := newObserver(t, b.URL(), topics.State("cam-1"), topics.Ack("cam-1"))
	if err := b.Publish(topics.Ack("cam-1"), []byte("marker"), false, 1); err != nil {
		t.Fatal(err)
	}
	ms := watch.waitFor("marker", func(ms []msg) bool { _, ok := last(ms, topics.Ack("cam-1")); return ok })
	if m, ok := last(ms, topics.State("cam-1")); ok {
		t.Errorf("the operator published a state: %s", m.Payload)
	}
}

func TestEmbeddedBrokerWithAccountsLetsTheCameraReconnect(t *testing.T) {
	t.Parallel()
	b := startEmbedded(t, EmbeddedCamera("cam-1", "cam-secret"))
	cam := newCamera(t, b.CameraURL(), "cam-1", func(c *Config) { c.KeepAlive = 5 * time.Second })
	watch := newObserver(t, b.URL(), topics.Availability("cam-1"))
	cam.startClient()
	waitOnline(watch, topics, "cam-1")
	n := len(watch.all())
	cam.cut()
	watch.waitFor("last will", func(ms []msg) bool { m, _ := last(ms[n:], topics.Availability("cam-1")); return m.Payload == Offline })
	cam.restore()
	watch.waitFor("online again", func(ms []msg) bool { m, _ := last(ms[n:], topics.Availability("cam-1")); return m.Payload == Online })
}

func TestEmbeddedBrokerOptionsAreChecked(t *testing.T) {
	bad := [][]EmbeddedOption{
		{EmbeddedOperator("operator", "x")},
		{EmbeddedCamera("all", "x")},
		{EmbeddedCamera("cam-1", "")},
		{EmbeddedCamera("cam-1", "x"), EmbeddedOperator("cam-1", "y")},
		{EmbeddedCamera("cam-1", "x"), EmbeddedOperator("operator", "")},
		{EmbeddedCamera("cam-1", "x"), EmbeddedTopics("$SYS", "")},
	}
	for i, opts := range bad {
		if _, err := NewEmbeddedBroker("127.0.0.1:0", nil, opts...); err == nil {
			t.Errorf("options %d: accepted", i)
		}
	}
	if _, err := NewEmbeddedBroker("127.0.0.1:0", nil, EmbeddedCamera("cam-1", "x"), EmbeddedTopics("site/cams", "ha")); err != nil {
		t.Error(err)
	}
}

func TestEmbeddedACL(t *testing.T) {
	a := &embeddedAuth{camera: account{"cam-1", "x"}, operator: &account{"op", "y"}, topics: Topics{Prefix: "lc"}, discovery: "ha"}
	cases := []struct {
		r     role
		topic string
		write bool
		want  bool
	}{
		{roleCamera, "lc/cam-1/state", true, true},
		{roleCamera, "lc/cam-1/availability", true, true},
		{roleCamera, "lc/cam-1/ack", true, true},
		{roleCamera, "ha/switch/cam-1/video_privacy/config", true, true},
		{roleCamera, "ha/switch/cam-2/video_privacy/config", true, false},
		{roleCamera, "lc/cam-2/state", true, false},
		{roleCamera, "lc/cam-1/cmd", true, false},
		{roleCamera, "lc/cam-1/cmd", false, true},
		{roleCamera, "lc/all/cmd", false, true},
		{roleCamera, "lc/group/hall/cmd", false, true},
		{roleCamera, "lc/cam-2/cmd", false, false},
		{roleOperator, "lc/cam-1/cmd", true, true},
		{roleOperator, "lc/all/cmd", true, true},
		{roleOperator, "lc/group/hall/cmd", true, true},
		{roleOperator, "lc/group//cmd", true, false},
		{roleOperator, "lc/cam-1/state", true, false},
		{roleOperator, "ha/switch/cam-1/video_privacy/config", true, false},
		{roleOperator, "lc/cam-2/cmd", false, true},
		{roleAnonymous, "lc/cam-1/cmd", true, false},
		{roleAnonymous, "other/topic", true, false},
		{roleAnonymous, "lc/cam-1/cmd", false, false},
		{roleAnonymous, "lc/all/cmd", false, false},
		{roleAnonymous, "lc/cam-1/state", false, true},
		{roleAnonymous, "lc/cam-1/ack", false, true},
		{roleAnonymous, "ha/switch/cam-1/video_privacy/config", false, true},
		{roleAnonymous, "lc/#", false, true}, // a filter: checked message by message
		{roleAnonymous, "other/topic", false, false},
	}
	for _, c := range cases {
		if got := a.allowed(c.r, c.topic, c.write); got != c.want {
			t.Errorf("role %d, %s, write %t: %t, want %t", c.r, c.topic, c.write, got, c.want)
		}
	}
}

func TestLoadOrCreatePasswordKeepsOneSecretPassword(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", EmbeddedPasswordFile)
	pw, err := LoadOrCreatePassword(path)
	if err != nil || len(pw) < 40 {
		t.Fatalf("new password %q, %v: want 43 characters", pw, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v, %v; want mode 0600", fi, err)
	}
	again, err := LoadOrCreatePassword(path)
	if err != nil || again != pw {
		t.Errorf("second load %q, %v; want the same password", again, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	leaked, err := LoadOrCreatePassword(path)
	if err != nil || leaked == pw {
		t.Errorf("a password readable by others was kept (%v)", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after replacing it, want 0600", fi.Mode().Perm())
	}
	if err := os.WriteFile(path, []byte("  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pw, err := LoadOrCreatePassword(path); err != nil || pw == "" {
		t.Errorf("empty file: %q, %v; want a new password", pw, err)
	}
	if err := os.WriteFile(path, []byte("chosen-by-the-owner\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pw, err := LoadOrCreatePassword(path); err != nil || pw != "chosen-by-the-owner" {
		t.Errorf("a password written by the owner: %q, %v", pw, err)
	}
}

// tryForgeriesAsAnonymous tries, as anonymous clients, to command the camera, forge its state
// and availability, and take its client id (or the broker's own).
func tryForgeriesAsAnonymous(t *testing.T, b *EmbeddedBroker) {
	t.Helper()
	pub := func(clientID, topic string, retained bool, payload string) {
		t.Helper()
		c, err := connect(t, b.URL(), clientID, nil)
		if err != nil {
			t.Fatalf("anonymous client %s refused: %v", clientID, err)
		}
		c.Publish(topic, 1, retained, payload).WaitTimeout(time.Second) // mochi disconnects it
	}
	pub("intruder-1", topics.Cmd("cam-1"), false, `{"id":"forged","action":"privacy","video":true}`)
	pub("intruder-2", topics.AllCmd(), false, `{"id":"forged-all","action":"privacy","audio":true}`)
	pub("intruder-3", topics.State("cam-1"), true, `{"id":"cam-1","forged":true}`)
	pub("intruder-4", topics.Availability("cam-1"), true, Offline)
	if _, err := connect(t, b.URL(), "cam-1", nil); err == nil {
		t.Error("an anonymous client connected with the camera's client id")
	}
	if _, err := connect(t, b.URL(), "inline", nil); err == nil {
		t.Error("a client connected with the broker's own client id")
	}
	will := func(o *paho.ClientOptions) { o.SetWill(topics.State("cam-1"), `{"forged":"will"}`, 1, true) }
	if _, err := connect(t, b.URL(), "will-forger", will); err == nil {
		t.Error("an anonymous client connected with a will on the camera's state")
	}
}

// checkRetainedAreTheCameras checks that cam-1's retained state (with audio private) and
// availability are the ones it published.
func checkRetainedAreTheCameras(t *testing.T, brokerURL string) {
	t.Helper()
	late := newObserver(t, brokerURL, topics.State("cam-1"), topics.Availability("cam-1"))
	ms := late.waitFor("retained state and availability", func(ms []msg) bool {
		_, okS := last(ms, topics.State("cam-1"))
		_, okA := last(ms, topics.Availability("cam-1"))
		return okS && okA
	})
	if m, _ := last(ms, topics.State("cam-1")); strings.Contains(m.Payload, "forged") || !parseState(t, m.Payload).Audio.Private {
		t.Errorf("retained state %s, want the camera's", m.Payload)
	}
	if m, _ := last(ms, topics.Availability("cam-1")); m.Payload != Online {
		t.Errorf("retained availability %s, want online", m.Payload)
	}
}

// newSnoop is an anonymous observer of filter (a wildcard), subscribed once the camera's
// retained messages are in place: it has them all when it returns. (mochi v2.7.9 reads a
// topic's retained path without its lock while a wildcard subscription collects the retained
// messages: a retained publication meanwhile is a data race in mochi.)
func newSnoop(t *testing.T, brokerURL, filter string) *observer {
	t.Helper()
	o := newObserver(t, brokerURL, filter)
	o.waitFor("the retained state and availability", func(ms []msg) bool {
		_, okS := last(ms, topics.State("cam-1"))
		_, okA := last(ms, topics.Availability("cam-1"))
		return okS && okA
	})
	return o
}

// syncAck waits until o received the ack of id.
func (o *observer) syncAck(ackTopic, id string) {
	o.t.Helper()
	o.waitFor("ack of "+id, func(ms []msg) bool { return len(acksWithID(ms, ackTopic, id)) > 0 })
}
