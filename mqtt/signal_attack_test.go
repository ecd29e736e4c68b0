package mqtt

// Attacks on MQTT signalling's demux (signal.go, signal_route.go) through a real mosquitto:
// odd topics, malformed first messages, session ids reused or shared across accounts,
// floods, retained messages and a compromised camera account. Each test states what the
// camera must withstand; see cmd/lenscap/signal_attack_test.go for the daemon's side.

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
)

// unlimited lifts the per-account rate, for the tests of what lies behind it.
func unlimited(c *SignalConfig) { c.Rate, c.Burst = 1e6, 1e6 }

// refuser is a SignalConfig.Serve that refuses every session at once, as the daemon does a
// hello without a valid credential: an error, then a bye.
type refuser struct {
	mu     sync.Mutex
	served int
}

func (r *refuser) serve(ctx context.Context, s *SignalSession) {
	r.mu.Lock()
	r.served++
	r.mu.Unlock()
	if s.Send(ctx, errorMessage("a valid credential is required")) == nil {
		_ = s.Send(ctx, []byte(`{"type":"bye"}`))
	}
}

// flooder publishes at QoS 0 without waiting, as an attacker would; flush waits until the
// broker has taken everything it published (one QoS 1 message after them, on the same
// connection).
type flooder struct {
	t  testing.TB
	pc paho.Client
}

func newFlooder(t testing.TB, url string) *flooder {
	t.Helper()
	opts, err := BrokerOptions(url, TLS{})
	if err != nil {
		t.Fatal(err)
	}
	opts.SetClientID(fmt.Sprintf("flooder-%d", observerSeq.Add(1))).SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false)
	f := &flooder{t: t, pc: paho.NewClient(opts)}
	if tok := f.pc.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("flooder: connect: %v", tok.Error())
	}
	t.Cleanup(func() { f.pc.Disconnect(50) })
	return f
}

func (f *flooder) send(topic string, retained bool, payload []byte) {
	f.pc.Publish(topic, 0, retained, payload)
}

func (f *flooder) flush() {
	f.t.Helper()
	if tok := f.pc.Publish("flooder/flush", 1, false, "x"); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		f.t.Fatalf("flooder: flush: %v", tok.Error())
	}
}

// settle waits until no signalling session is left and the goroutines are back within tol
// of base; it fails the test otherwise.
func settle(t *testing.T, c *Client, base, tol int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		st := c.SignalStats()
		if st.Active == 0 && n <= base+tol {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("not settled: %+v, %d goroutines (base %d)\n%s", st, n, base, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A viewer account can write any level under its session topics: empty levels, characters
// beyond the contract's, unicode, very long levels, the camera's leaf, extra levels. None
// starts a session or draws a reply (a reply would go to a topic nobody may have asked for),
// and a well-formed hello afterwards is served.
func TestAttackOddSessionTopicsStartNothingAndDrawNoReply(t *testing.T) {
	e := &echoServer{}
	_, c, url := startSignalCamera(t, e, nil)
	spy := newObserver(t, url, "lenscap/cam-1/session/#")
	hello := []byte(`{"type":"hello","token":"T"}`)
	odd := []string{
		"lenscap/cam-1/session//s1/viewer",
		"lenscap/cam-1/session/alice//viewer",
		"lenscap/cam-1/session///viewer",
		"lenscap/cam-1/session/al ice/s1/viewer",
		"lenscap/cam-1/session/alice/s\u00e9/viewer",
		"lenscap/cam-1/session/\u202ealice/s1/viewer",
		"lenscap/cam-1/session/alice/s%2B/viewer",
		"lenscap/cam-1/session/alice/" + strings.Repeat("s", 65) + "/viewer",
		"lenscap/cam-1/session/" + strings.Repeat("a", 4000) + "/s1/viewer",
		"lenscap/cam-1/session/alice/s1/camera",
		"lenscap/cam-1/session/alice/s1/viewer/x",
		"lenscap/cam-1/session/alice/s1/VIEWER",
		"lenscap/cam-1/session/alice/s1/viewer ",
		"lenscap/cam-1//session/alice/s1/viewer",
		"lenscap/cam-1/session/alice/s1",
	}
	f := newFlooder(t, url)
	o, up, down := session(t, url, "good")
	base := runtime.NumGoroutine()
	for _, topic := range odd {
		f.send(topic, false, hello)
	}
	f.flush()
	o.publish(up, false, hello)
	o.publish(up, false, `{"type":"x"}`)
	o.waitFor("the good session's echo", hasPayload(down, 1, "echo:"))
	spy.sync("lenscap/cam-1/session/sync/sync/camera")
	for _, m := range spy.all() {
		if strings.HasSuffix(m.Topic, "/camera") && m.Topic != down && !strings.HasPrefix(m.Payload, "marker-") && m.Payload != string(hello) {
			t.Errorf("the camera answered an odd topic: %s %s", m.Topic, m.Payload)
		}
	}
	e.mu.Lock()
	for _, s := range e.sessions {
		if s.Account != "alice" || s.ID != "good" {
			t.Errorf("a session for %q/%q", s.Account, s.ID)
		}
	}
	e.mu.Unlock()
	st := c.SignalStats()
	if st.Started != 1 || st.Active != 1 {
		t.Errorf("stats %+v: want the good session only", st)
	}
	// The first nine match the filter and are dropped by name; the others never reach it.
	if st.Dropped != 9 {
		t.Errorf("stats %+v: odd topics not counted as dropped", st)
	}
	if n := runtime.NumGoroutine(); n > base+5 { // the good session's goroutine, nothing else
		t.Errorf("goroutines %d, base %d", n, base)
	}
}

// First messages that are not hellos (non-JSON, wrong JSON types, a hello's type in the wrong
// type) get an error and a bye and make no session; a hello above 64 KiB makes none and gets
// no reply; a hello whose token is not a string is still a hello at this layer (the daemon's
// ParseHello refuses it: cmd/lenscap).
func TestAttackMalformedFirstMessagesMakeNoSession(t *testing.T) {
	r := &refuser{}
	_, c, url := startSignalCamera(t, &echoServer{}, func(cfg *SignalConfig) { cfg.Serve = r.serve })
	cases := []struct {
		payload string
		hello   bool
	}{
		{`not json`, false},
		{``, false},
		{`null`, false},
		{`[]`, false},
		{`"hello"`, false},
		{`{"type":1}`, false},
		{`{"type":["hello"]}`, false},
		{`{"type":"HELLO"}`, false},
		{`{"type":"hello "}`, false},
		{`{"Type":"hello"}`, true}, // encoding/json matches keys case-insensitively
		{`{"type":"hello","token":5}`, true},
		{`{"type":"hello","type":"answer"}`, false}, // the last key wins
		{"\xff\xfe{\"type\":\"hello\"}", false},
	}
	type viewer struct {
		o        *observer
		up, down string
	}
	var vs []viewer
	for i := range cases {
		o, up, down := session(t, url, fmt.Sprintf("m%d", i))
		vs = append(vs, viewer{o, up, down})
	}
	o, up, down := session(t, url, "huge")
	base := runtime.NumGoroutine()
	for i, tc := range cases {
		o, up, down := vs[i].o, vs[i].up, vs[i].down
		o.publish(up, false, tc.payload)
		ms := o.waitFor(fmt.Sprintf("bye for %q", tc.payload), hasPayload(down, 2, "bye"))
		ps := payloads(ms, down)
		want := "no such session"
		if tc.hello {
			want = "valid credential"
		}
		if !strings.Contains(ps[0], want) {
			t.Errorf("%q: got %q, want an error with %q", tc.payload, ps, want)
		}
	}
	// A hello above the limit: refused, no session.
	o.publish(up, false, `{"type":"hello","token":"`+strings.Repeat("A", 70<<10)+`"}`)
	o.waitFor("huge hello refused", hasPayload(down, 2, "bye"))
	if ps := payloads(o.all(), down); !strings.Contains(ps[0], "refused: the most is 65536") {
		t.Errorf("huge hello answered %q", ps)
	}
	r.mu.Lock()
	served := r.served
	r.mu.Unlock()
	if served != 2 {
		t.Errorf("%d sessions served, want 2 (the two hellos that parse as hellos)", served)
	}
	settle(t, c, base, 5)
}

// Session ids are per account: alice/s1 and bob/s1 are two sessions that never see each
// other's messages. A session id reused after its bye starts a new session; a message after
// the bye gets "no such session" and starts nothing.
func TestAttackSessionIDsAreKeptPerAccountAndReusedCleanly(t *testing.T) {
	e := &echoServer{}
	_, c, url := startSignalCamera(t, e, unlimited) // its own flood must reach the session's queue
	base := runtime.NumGoroutine()
	a := newObserver(t, url, "lenscap/cam-1/session/alice/s1/camera")
	b := newObserver(t, url, "lenscap/cam-1/session/bob/s1/camera")
	aup, adown := "lenscap/cam-1/session/alice/s1/viewer", "lenscap/cam-1/session/alice/s1/camera"
	bup, bdown := "lenscap/cam-1/session/bob/s1/viewer", "lenscap/cam-1/session/bob/s1/camera"
	a.publish(aup, false, `{"type":"hello","token":"A"}`)
	b.publish(bup, false, `{"type":"hello","token":"B"}`)
	a.publish(aup, false, `{"type":"from-alice"}`)
	b.publish(bup, false, `{"type":"from-bob"}`)
	a.waitFor("alice's echo", hasPayload(adown, 1, "from-alice"))
	b.waitFor("bob's echo", hasPayload(bdown, 1, "from-bob"))
	if st := c.SignalStats(); st.Active != 2 || st.Started != 2 {
		t.Fatalf("stats %+v", st)
	}
	for _, p := range payloads(a.all(), adown) {
		if strings.Contains(p, "bob") {
			t.Errorf("alice got bob's %s", p)
		}
	}
	// The camera ends alice's session (a client restart ends them all: here, flood it).
	f := newFlooder(t, url)
	for i := range signalQueue + 8 {
		f.send(aup, false, fmt.Appendf(nil, `{"n":%d}`, i))
	}
	f.flush()
	a.waitFor("alice's bye", func(ms []msg) bool {
		for _, p := range payloads(ms, adown) {
			if p == `{"type":"bye"}` {
				return true
			}
		}
		return false
	})
	deadline := time.Now().Add(5 * time.Second)
	for c.SignalStats().Active != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// bob's session is untouched.
	b.publish(bup, false, `{"type":"still-bob"}`)
	b.waitFor("bob's session goes on", hasPayload(bdown, 2, "still-bob"))
	// A late message for alice/s1: no session.
	n := len(payloads(a.all(), adown))
	a.publish(aup, false, `{"type":"candidate"}`)
	a.waitFor("no such session", hasPayload(adown, n+2, "bye"))
	if ps := payloads(a.all(), adown); !strings.Contains(ps[n], "no such session") {
		t.Errorf("late message: %q", ps[n:])
	}
	// The same id again: a new session.
	a.publish(aup, false, `{"type":"hello","token":"A2"}`)
	a.publish(aup, false, `{"type":"again"}`)
	a.waitFor("the new session's echo", hasPayload(adown, n+3, "again"))
	if st := c.SignalStats(); st.Active != 2 || st.Started != 3 {
		t.Errorf("stats %+v", st)
	}
	e.mu.Lock()
	last := e.sessions[len(e.sessions)-1]
	e.mu.Unlock()
	if string(last.Hello) != `{"type":"hello","token":"A2"}` {
		t.Errorf("reused id kept the old hello: %s", last.Hello)
	}
	_ = base
}

// One account floods hellos on fresh session ids (QoS 0, as fast as it can). Every one is
// either served and refused (no credential) or refused for the limit; afterwards no session,
// no goroutine is left, and a new viewer is served.
func TestAttackHelloFloodLeavesNothingBehind(t *testing.T) {
	r := &refuser{}
	_, c, url := startSignalCamera(t, &echoServer{}, func(cfg *SignalConfig) { cfg.Serve = r.serve; cfg.MaxSessions = 4 })
	f := newFlooder(t, url)
	o, up, down := session(t, url, "after")
	base := runtime.NumGoroutine()
	const n = 2000
	for i := range n {
		f.send(fmt.Sprintf("lenscap/cam-1/session/mallory/f%d/viewer", i), false, []byte(`{"type":"hello","token":"x"}`))
	}
	f.flush()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := c.SignalStats()
		if st.Started+st.Refused+st.Limited >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := c.SignalStats()
	t.Logf("after %d hellos: %+v", n, st)
	if st.Started+st.Refused+st.Limited != n || st.Limited == 0 {
		t.Errorf("%d hellos, %d started + %d refused + %d over the account's rate: some were lost on the way (broker queue), or none was limited",
			n, st.Started, st.Refused, st.Limited)
	}
	settle(t, c, base, 5)
	o.publish(up, false, `{"type":"hello"}`)
	o.waitFor("refusal of the new viewer by the server, not the limit", hasPayload(down, 1, "valid credential"))
}

// A viewer account floods messages for no session (each draws an error and a bye from the
// camera: two QoS 1 publishes). A privacy command sent behind the flood must still be
// applied and acknowledged promptly: the session topics must not delay the camera's
// commands.
func TestAttackNoSessionFloodDoesNotHoldBackAPrivacyCommand(t *testing.T) {
	_, c, url := startSignalCamera(t, &echoServer{}, nil)
	op := newObserver(t, url, "lenscap/cam-1/ack")
	f := newFlooder(t, url)
	base := runtime.NumGoroutine()
	const n = 5000
	start := time.Now()
	for i := range n {
		f.send(fmt.Sprintf("lenscap/cam-1/session/mallory/x%d/viewer", i%50), false, []byte(`{"type":"candidate"}`))
	}
	f.flush()
	sent := time.Now()
	op.publish("lenscap/cam-1/cmd", false, `{"id":"cut-1","action":"privacy","video":true}`)
	op.waitFor("ack of the cut", func(ms []msg) bool { return len(acksWithID(ms, "lenscap/cam-1/ack", "cut-1")) > 0 })
	took := time.Since(sent)
	t.Logf("flood of %d published in %v; the cut behind it acknowledged %v after it was sent; stats %+v",
		n, sent.Sub(start), took, c.SignalStats())
	if took > 2*time.Second {
		t.Errorf("a privacy command behind a flood of session messages took %v to be acknowledged", took)
	}
	settle(t, c, base, 5)
}

// Retained messages on session topics (a viewer may publish with the retain flag, or set a
// retained will): the camera gets them again each time it subscribes. Those delivered with
// the retain flag start nothing and draw no reply, however many there are, across a lost
// connection and a client restart.
func TestAttackRetainedSessionMessagesStartNothingAfterReconnects(t *testing.T) {
	r := &refuser{}
	cam, c, url := startSignalCamera(t, &echoServer{}, func(cfg *SignalConfig) { cfg.Serve = r.serve; unlimited(cfg) })
	spy := newObserver(t, url, "lenscap/cam-1/session/+/+/camera")
	f := newFlooder(t, url)
	const n = 200
	for i := range n {
		f.send(fmt.Sprintf("lenscap/cam-1/session/mallory/r%d/viewer", i), true, []byte(`{"type":"hello","token":"R"}`))
		f.send(fmt.Sprintf("lenscap/cam-1/session/mallory/g%d/viewer", i), true, []byte(`garbage`))
	}
	f.flush()
	// Live, these were messages like any other (the broker clears the retain flag for a
	// subscription in place): n hellos served or refused, n garbage dropped.
	deadline := time.Now().Add(waitTimeout)
	for st := c.SignalStats(); st.Started+st.Refused < n && time.Now().Before(deadline); st = c.SignalStats() {
		time.Sleep(10 * time.Millisecond)
	}
	if st := c.SignalStats(); st.Started+st.Refused != n || st.Dropped != n {
		t.Fatalf("live retained messages: %+v", st)
	}
	cam.stopClient() // every session ends
	spy.sync("lenscap/cam-1/session/sync/s/camera")
	before := len(spy.all())
	base := runtime.NumGoroutine()
	c = cam.startClient()
	avail := newObserver(t, url, "lenscap/cam-1/availability")
	avail.waitFor("online again", func(ms []msg) bool { m, ok := last(ms, "lenscap/cam-1/availability"); return ok && m.Payload == Online })
	cam.cut() // and a lost connection: the camera subscribes again when it is back
	cam.restore()
	deadline = time.Now().Add(waitTimeout)
	for cam.dials() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	avail.waitFor("online after the cut", func(ms []msg) bool {
		n := 0
		for _, m := range ms {
			if m.Payload == Online {
				n++
			}
		}
		return n >= 2
	})
	time.Sleep(300 * time.Millisecond) // the second subscription's retained messages
	spy.sync("lenscap/cam-1/session/sync/s/camera")
	st := c.SignalStats()
	if st.Started != 0 || st.Active != 0 {
		t.Errorf("retained messages started sessions after a restart: %+v", st)
	}
	if st.Dropped < 2*n {
		t.Errorf("stats %+v: want the %d retained messages dropped at least once", st, 2*n)
	}
	for _, m := range spy.all()[before:] {
		if !strings.HasPrefix(m.Payload, "marker-") {
			t.Errorf("camera answered a retained message: %s %s", m.Topic, m.Payload)
			break
		}
	}
	settle(t, c, base, 40) // the camera's new client and the extra observer
}

// A compromised camera account (the documented ACL: pattern read/write on its own session
// topics) reads its own viewers' hellos (SECURITY.md says so: give credentials an audience),
// but never another camera's, and cannot write to another camera's viewers. A viewer account
// cannot write the camera's leaf for another account's session, nor read another account's
// sessions on its own camera.
func TestAttackCompromisedCameraAccountStaysWithItsCamera(t *testing.T) {
	const acl = `pattern read lenscap/%u/cmd
pattern write lenscap/%u/ack
pattern write lenscap/%u/state
pattern write lenscap/%u/availability
pattern read lenscap/%u/session/+/+/viewer
pattern write lenscap/%u/session/+/+/camera

user alice
topic write lenscap/cam-1/session/alice/+/viewer
topic read lenscap/cam-1/session/alice/+/camera

user bob
topic write lenscap/cam-2/session/bob/+/viewer
topic read lenscap/cam-2/session/bob/+/camera
topic write lenscap/cam-1/session/bob/+/viewer
topic read lenscap/cam-1/session/bob/+/camera

pattern readwrite sync/%u
`
	b := mqtttest.Start(t, mqtttest.Options{ACL: acl, Users: map[string]string{
		"cam-1": "c1", "cam-2": "c2", "alice": "a", "bob": "b"}})
	rogue := newObserver(t, b.URL("cam-1", "c1"), "#", "lenscap/+/session/#", "lenscap/cam-2/session/+/+/viewer", "sync/cam-1")
	bob := newObserver(t, b.URL("bob", "b"), "lenscap/cam-2/session/bob/s/camera", "lenscap/cam-1/session/alice/+/camera", "lenscap/cam-1/session/+/+/viewer", "sync/bob")
	alice := newObserver(t, b.URL("alice", "a"), "lenscap/cam-1/session/alice/s/camera", "sync/alice")
	bob.publish("lenscap/cam-2/session/bob/s/viewer", false, `{"type":"hello","token":"BOB-SECRET"}`)
	alice.publish("lenscap/cam-1/session/alice/s/viewer", false, `{"type":"hello","token":"ALICE-SECRET"}`)
	// The rogue camera offers to cam-2's viewer and writes as alice to itself.
	rogue.publish("lenscap/cam-2/session/bob/s/camera", false, `{"type":"offer","sdp":"rogue"}`)
	// bob answers alice's session as the camera, and says bye in alice's name.
	bob.publish("lenscap/cam-1/session/alice/s/camera", false, `{"type":"offer","sdp":"bob"}`)
	bob.publish("lenscap/cam-1/session/alice/s/viewer", false, `{"type":"bye"}`)
	rogue.sync("sync/cam-1") // the broker handles each client's messages in order
	bob.sync("sync/bob")
	alice.sync("sync/alice")
	for _, m := range rogue.all() {
		if strings.Contains(m.Payload, "BOB-SECRET") || strings.Contains(m.Topic, "cam-2") {
			t.Errorf("the cam-1 account read cam-2's %s %s", m.Topic, m.Payload)
		}
	}
	sawAlice := false
	for _, m := range rogue.all() {
		sawAlice = sawAlice || strings.Contains(m.Payload, "ALICE-SECRET")
	}
	if !sawAlice {
		t.Log("the camera account did not read its own viewer's hello (the ACL is tighter than documented)")
	}
	for _, m := range bob.all() {
		if m.Payload == `{"type":"offer","sdp":"rogue"}` || strings.Contains(m.Payload, "ALICE-SECRET") || strings.Contains(m.Topic, "alice") {
			t.Errorf("bob got %s %s", m.Topic, m.Payload)
		}
	}
	for _, m := range alice.all() {
		if strings.Contains(m.Payload, `"sdp":"bob"`) {
			t.Errorf("bob wrote to alice's camera topic: %s", m.Payload)
		}
	}
}

// The same flood, sustained, from a few connections of one viewer account (what the
// documented ACL lets it write: its own session topics of the camera it may watch), while
// the fleet sends privacy commands. With signalling on a connection of its own
// (SignalConfig.BrokerURL, which lenscap requires for a broker beyond loopback) each command
// is acknowledged within a second and the broker drops nothing of the command connection.
// (Sharing the connection, commands came 0.6 to 1.3 s late and 2 of 8 were lost.)
func TestAttackSustainedSessionFloodLeavesCommandsAlone(t *testing.T) {
	acked, dropped := sustainedFlood(t)
	for i, d := range acked {
		if d == 0 || d > time.Second {
			t.Errorf("command c%d acknowledged after %v (0: never)", i, d.Round(time.Millisecond))
		}
	}
	if dropped {
		t.Error("the broker dropped messages of the camera's command connection")
	}
}

// sustainedFlood floods cam-1's session topics (signalling on a connection of its own) from 6
// connections while 8 commands are sent, 150 ms apart; it returns how long each took to be acknowledged (0: never) and whether the
// broker dropped messages for the command connection.
func sustainedFlood(t *testing.T) (acked []time.Duration, dropped bool) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	url := broker.URL("", "")
	cam := newCamera(t, url, "cam-1", func(c *Config) {
		c.Signal = &SignalConfig{Serve: (&refuser{}).serve, BrokerURL: url}
	})
	c := cam.startClient()
	op := newObserver(t, url, "lenscap/cam-1/ack", "lenscap/cam-1/availability")
	waitOnline(op, Topics{}, "cam-1")
	waitSignalling(t, url)
	stopFlood := startFlood(t, url, 6, 25000)
	const cmds = 8
	sent := make([]time.Time, cmds)
	for i := range cmds {
		time.Sleep(150 * time.Millisecond)
		sent[i] = time.Now()
		op.pc.Publish("lenscap/cam-1/cmd", 1, false, fmt.Sprintf(`{"id":"c%d","action":"privacy","video":%t}`, i, i%2 == 0))
	}
	acked = make([]time.Duration, cmds)
	for deadline := time.Now().Add(6 * time.Second); slices.Contains(acked, 0) && time.Now().Before(deadline); {
		ms := op.all()
		for i := range cmds {
			if acked[i] == 0 {
				for _, m := range ms {
					if m.Topic == "lenscap/cam-1/ack" && strings.Contains(m.Payload, fmt.Sprintf(`"id":"c%d"`, i)) {
						acked[i] = m.at.Sub(sent[i])
						break
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	flood := stopFlood()
	t.Logf("flood for %v; camera stats %+v; acks after %v", flood, c.SignalStats(), acked)
	return acked, droppedFor(broker.Log(), "cam-1")
}

// waitSignalling waits until cam-1's signalling answers a hello: its connection has subscribed
// (a hello before that, at QoS 0, is lost: it is sent again every 100 ms).
func waitSignalling(t *testing.T, url string) {
	t.Helper()
	o, up, down := session(t, url, "probe")
	for range 50 {
		o.publish(up, false, `{"type":"hello"}`)
		time.Sleep(100 * time.Millisecond)
		if len(payloads(o.all(), down)) > 0 {
			return
		}
	}
	t.Fatal("cam-1's signalling never answered a hello")
}

// startFlood publishes n messages for no session from each of conns connections; the func it
// returns waits for them all to reach the broker and says how long that took.
func startFlood(t *testing.T, url string, conns, n int) func() time.Duration {
	var fs []*flooder
	for range conns {
		fs = append(fs, newFlooder(t, url))
	}
	var wg sync.WaitGroup
	start := time.Now()
	for _, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				f.send(fmt.Sprintf(floodTopic, i%50), false, []byte(`{"type":"candidate"}`))
			}
		}()
	}
	return func() time.Duration {
		wg.Wait()
		for _, f := range fs {
			f.flush()
		}
		return time.Since(start)
	}
}

// droppedFor says whether mosquitto's log says it dropped outgoing messages for client id.
func droppedFor(log, id string) bool {
	return regexp.MustCompile(`dropped for client ` + regexp.QuoteMeta(id) + `(\.|\s|$)`).MatchString(log)
}

var floodTopic = func() string {
	if v := os.Getenv("FLOODTOPIC"); v != "" {
		return v
	}
	return "lenscap/cam-1/session/mallory/x%d/viewer"
}()
