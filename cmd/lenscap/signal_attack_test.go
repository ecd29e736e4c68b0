package main

// Attacks on MQTT signalling against the real daemon and a real mosquitto with the documented
// ACL: refused hellos, a stolen credential, messages after a bye, a viewer gone without a
// word, a private camera, and an account without a credential flooding hellos. See
// mqtt/signal_attack_test.go for the demux's side.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
	"github.com/lenscap/lenscap/rtc/rtctest"
)

// attackACL is signalACL plus mallory, a viewer account the ACL lets ask cam-1 (as any
// viewer account of a camera) but who holds no lenscap credential.
const attackACL = signalACL + `
user mallory
topic write lenscap/cam-1/session/mallory/+/viewer
topic read lenscap/cam-1/session/mallory/+/camera
`

func startAttackCamera(t *testing.T, extra ...string) (*mqtttest.Broker, *testDaemon) {
	t.Helper()
	b := mqtttest.Start(t, mqtttest.Options{
		Users: func() map[string]string { u := signalUsers(); u["mallory"] = "mallory-secret"; return u }(),
		ACL:   attackACL,
	})
	args := append(signalArgs(b), extra...)
	d := startDaemon(t, t.TempDir(), args...)
	waitSignalOnline(t, b, d)
	return b, d
}

// rawSession is a viewer's session driven by hand: it records every camera message.
type rawSession struct {
	t        *testing.T
	c        paho.Client
	conn     net.Conn
	up, down string

	mu   sync.Mutex
	msgs []string
}

func newRawSession(t *testing.T, b *mqtttest.Broker, account, password, sid string) *rawSession {
	t.Helper()
	base := "lenscap/cam-1/session/" + account + "/" + sid + "/"
	r := &rawSession{t: t, up: base + "viewer", down: base + "camera"}
	opts := paho.NewClientOptions().AddBroker("tcp://"+b.Addr()).SetClientID(account+"-"+sid).
		SetUsername(account).SetPassword(password).SetWill(r.up, `{"type":"bye"}`, 1, false).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	opts.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
		c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		r.conn = c
		return c, err
	})
	r.c = paho.NewClient(opts)
	if tok := r.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s connect: %v", account, tok.Error())
	}
	tok := r.c.Subscribe(r.down, 1, func(_ paho.Client, m paho.Message) {
		r.mu.Lock()
		r.msgs = append(r.msgs, string(m.Payload()))
		r.mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s subscribe: %v", account, tok.Error())
	}
	t.Cleanup(r.close)
	return r
}

func (r *rawSession) close() { r.c.Disconnect(50) }

func (r *rawSession) send(payload string) {
	r.t.Helper()
	if tok := r.c.Publish(r.up, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		r.t.Fatalf("publish: %v", tok.Error())
	}
}

func (r *rawSession) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// types are the types of the camera's messages so far.
func (r *rawSession) types() []string {
	var out []string
	for _, p := range r.all() {
		var m struct{ Type string }
		_ = json.Unmarshal([]byte(p), &m)
		out = append(out, m.Type)
	}
	return out
}

func (r *rawSession) count(typ string) int {
	n := 0
	for _, ty := range r.types() {
		if ty == typ {
			n++
		}
	}
	return n
}

func (r *rawSession) waitFor(what string, cond func() bool) {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; got %q", what, r.all())
		}
	}
}

// settleDaemon waits until the camera serves no viewer and no signalling session and the
// goroutines are back within tol of base.
func settleDaemon(t *testing.T, d *testDaemon, base, tol int) {
	t.Helper()
	for deadline := time.Now().Add(8 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n, v, st := runtime.NumGoroutine(), d.srv.Viewers(), d.mq.SignalStats()
		if v == 0 && st.Active == 0 && n <= base+tol {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("not settled: %d viewers, %+v, %d goroutines (base %d)\n%s", v, st, n, base, buf)
		}
	}
}

// A hello without a valid credential, in every shape, gets exactly an error and a bye: no
// state, no ICE servers (TURN credentials), no offer; the credential is neither echoed nor
// logged, and nothing is left behind.
func TestAttackRefusedHelloLearnsNothing(t *testing.T) {
	b, d := startAttackCamera(t)
	secret := "S3CRET-" + strings.Repeat("x", 40)
	hellos := []string{
		`{"type":"hello"}`,
		`{"type":"hello","token":""}`,
		`{"type":"hello","token":"` + secret + `"}`,
		`{"type":"hello","token":"` + secret + strings.Repeat("y", 60<<10) + `"}`, // under 64 KiB
		`{"type":"hello","token":5}`,
		`{"type":"hello","token":["` + signalToken + `"]}`,
		`{"type":"hello","token":"` + signalToken + ` "}`,
		`{"type":"hello","token":"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}`,
		`{"type":"hello","token":"` + signalToken + `\u0000"}`,
	}
	var rs []*rawSession
	for i := range hellos {
		rs = append(rs, newRawSession(t, b, "mallory", "mallory-secret", fmt.Sprintf("h%d", i)))
	}
	base := runtime.NumGoroutine()
	for i, h := range hellos {
		r := rs[i]
		r.send(h)
		r.waitFor("bye", func() bool { return r.count("bye") > 0 })
		if ty := r.types(); len(ty) != 2 || ty[0] != "error" || ty[1] != "bye" {
			t.Errorf("hello %d: got %q", i, r.all())
		}
		for _, p := range r.all() {
			if strings.Contains(p, secret) || strings.Contains(p, signalToken) || strings.Contains(p, "iceServers") {
				t.Errorf("hello %d: the refusal carries %s", i, p)
			}
		}
	}
	if strings.Contains(d.log.String(), secret) {
		t.Error("a presented credential reached the log")
	}
	if st := d.mq.SignalStats(); st.Started != 0 || st.Unauthorized != uint64(len(hellos)) { // refused before any session
		t.Errorf("stats %+v", st)
	}
	settleDaemon(t, d, base, 5)
}

// A stolen credential (with an account that reaches the camera) opens at most
// max_viewers_per_credential sessions; the others are told and said bye. When they go,
// everything is given back.
func TestAttackStolenCredentialIsBoundedPerCredential(t *testing.T) {
	b, d := startAttackCamera(t, "--max-viewers-per-credential", "2")
	var rs []*rawSession
	for i := range 4 {
		rs = append(rs, newRawSession(t, b, "alice", "alice-secret", fmt.Sprintf("st%d", i)))
	}
	base := runtime.NumGoroutine()
	for _, r := range rs {
		r.send(`{"type":"hello","token":"` + signalToken + `"}`)
	}
	for _, r := range rs {
		r.waitFor("an offer or a bye", func() bool { return r.count("offer") > 0 || r.count("bye") > 0 })
	}
	served, refused := 0, 0
	for _, r := range rs {
		switch {
		case r.count("offer") > 0:
			served++
		case strings.Contains(strings.Join(r.all(), " "), "too many viewers with one credential"):
			refused++
		default:
			t.Errorf("neither served nor refused for the credential: %q", r.all())
		}
	}
	if served != 2 || refused != 2 || d.srv.Viewers() != 2 {
		t.Errorf("%d served, %d refused, %d viewers: want 2, 2, 2", served, refused, d.srv.Viewers())
	}
	for _, r := range rs {
		r.send(`{"type":"bye"}`)
	}
	settleDaemon(t, d, base, 5)
}

// Inside a session: a second hello is an unknown message (the session goes on); after the
// viewer's bye a message gets "no such session" and a bye, and starts nothing.
func TestAttackMessagesAfterByeStartNothing(t *testing.T) {
	b, d := startAttackCamera(t)
	r := newRawSession(t, b, "alice", "alice-secret", "late")
	base := runtime.NumGoroutine()
	r.send(`{"type":"hello","token":"` + signalToken + `"}`)
	r.waitFor("the offer", func() bool { return r.count("offer") > 0 })
	r.send(`{"type":"hello","token":"` + signalToken + `"}`)
	r.waitFor("an error for the second hello", func() bool { return r.count("error") > 0 })
	if d.srv.Viewers() != 1 || d.mq.SignalStats().Started != 1 {
		t.Errorf("a second hello: %d viewers, %+v", d.srv.Viewers(), d.mq.SignalStats())
	}
	r.send(`{"type":"bye"}`)
	for deadline := time.Now().Add(5 * time.Second); d.mq.SignalStats().Active != 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	n := len(r.all())
	r.send(`{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}}`)
	r.send(`{"type":"answer","sdp":"v=0"}`)
	r.waitFor("no such session", func() bool { return strings.Contains(strings.Join(r.all()[n:], " "), "no such session") })
	if st := d.mq.SignalStats(); st.Started != 1 || d.srv.Viewers() != 0 {
		t.Errorf("late messages: %d viewers, %+v", d.srv.Viewers(), st)
	}
	settleDaemon(t, d, base, 5)
}

// A viewer that vanishes without a bye (its connection cut) leaves through its will: the
// session ends at once, not at the ICE timeout.
func TestAttackVanishedViewerEndsThroughItsWill(t *testing.T) {
	b, d := startAttackCamera(t)
	r := newRawSession(t, b, "alice", "alice-secret", "will")
	base := runtime.NumGoroutine()
	r.send(`{"type":"hello","token":"` + signalToken + `"}`)
	r.waitFor("the offer", func() bool { return r.count("offer") > 0 })
	if d.srv.Viewers() != 1 {
		t.Fatalf("%d viewers", d.srv.Viewers())
	}
	cut := time.Now()
	_ = r.conn.Close() // no DISCONNECT: the broker publishes the will
	for d.srv.Viewers() != 0 && time.Since(cut) < 5*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if d.srv.Viewers() != 0 {
		t.Fatalf("the session outlived its viewer's will by %v", time.Since(cut))
	}
	t.Logf("session ended %v after the viewer's connection was cut", time.Since(cut).Round(time.Millisecond))
	settleDaemon(t, d, base, 5)
}

// While the camera is private, a viewer with a valid credential signalling through the broker
// gets a session and no media at all.
func TestAttackNoMediaWhilePrivate(t *testing.T) {
	b, d := startAttackCamera(t)
	if code, body := d.do(t, "POST", "/api/button", signalToken, nil); code != 200 {
		t.Fatalf("button: %d %s", code, body)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, body := d.do(t, "GET", "/api/state", signalToken, nil)
		var st apiState
		_ = json.Unmarshal(body, &st)
		if st.Video.Private && st.Audio.Private {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never private: %s", body)
		}
	}
	v := dialSignal(t, b, "alice", "alice-secret", "cam-1").hello(t, signalToken)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.WaitFor(ctx, "an offer", func(v *rtctest.Viewer) bool { return v.OfferCount() > 0 }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := len(v.Packets()); n != 0 {
		t.Errorf("%d media packets reached a viewer while private", n)
	}
	if sent, _ := d.srv.Sent("video"); sent != 0 {
		t.Errorf("%d video packets sent while private", sent)
	}
}

// mallory, a viewer account of cam-1 without any lenscap credential, floods hellos. alice,
// holding a valid credential, must still be served: an account that watches nothing should
// not be able to keep everyone else out.
func TestAttackHelloFloodWithoutCredentialKeepsOthersOut(t *testing.T) {
	b, d := startAttackCamera(t, "--max-viewers", "4")
	fl := newRawSession(t, b, "mallory", "mallory-secret", "flood")
	alice := newRawSession(t, b, "alice", "alice-secret", "legit")
	base := runtime.NumGoroutine()
	stop := make(chan struct{})
	flooded := make(chan int)
	go func() {
		i := 0
		defer func() { flooded <- i }()
		for ; i < 20000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			fl.c.Publish(fmt.Sprintf("lenscap/cam-1/session/mallory/f%d/viewer", i), 0, false, `{"type":"hello","token":"no"}`)
			if i%20 == 19 {
				time.Sleep(time.Millisecond) // at most 20,000 hellos a second, from one connection
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	tries, served := 0, false
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && !served; {
		tries++
		n := len(alice.all())
		alice.send(`{"type":"hello","token":"` + signalToken + `"}`)
		alice.waitFor("an answer to the hello", func() bool {
			ts := alice.types()[n:]
			for _, ty := range ts {
				if ty == "offer" || ty == "bye" {
					return true
				}
			}
			return false
		})
		served = alice.count("offer") > 0
	}
	close(stop)
	sent := <-flooded
	st := d.mq.SignalStats()
	t.Logf("mallory sent %d hellos; alice tried %d times, served: %v; stats %+v", sent, tries, served, st)
	if !served {
		t.Errorf("alice, with a valid credential, was refused %d times in 2 s while an account without one flooded hellos: %q", tries, alice.all()[:2])
	}
	alice.send(`{"type":"bye"}`)
	settleDaemon(t, d, base, 10)
}
