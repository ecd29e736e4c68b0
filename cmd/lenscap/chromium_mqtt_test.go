package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
	"github.com/lenscap/lenscap/rtc/rtctest"
	"github.com/lenscap/lenscap/rtc/rtctest/chromiumtest"
)

// The accounts of the signalling tests' broker: the camera cam-1, and alice who may watch it
// (and, for the switches, command it).
const (
	camPassword   = "cam-secret-0123"
	alicePassword = "alice-secret-0123"
)

// signallingACL is signal-spec's ACL for cam-1 and alice, with the camera's fleet topics
// (mqtt_test.go) and alice's command topics for the switches.
const signallingACL = `pattern read lenscap/%u/cmd
pattern write lenscap/%u/ack
pattern write lenscap/%u/state
pattern write lenscap/%u/availability
pattern write homeassistant/+/%u/+/config
pattern read lenscap/all/cmd

user cam-1
topic read lenscap/cam-1/session/+/+/viewer
topic write lenscap/cam-1/session/+/+/camera

user alice
topic write lenscap/cam-1/session/alice/+/viewer
topic read lenscap/cam-1/session/alice/+/camera
topic write lenscap/cam-1/cmd
topic read lenscap/cam-1/ack
`

// startSignallingBroker starts mosquitto with a WebSocket listener and the signalling ACL.
func startSignallingBroker(t *testing.T) *mqtttest.Broker {
	t.Helper()
	return mqtttest.Start(t, mqtttest.Options{
		Users:      map[string]string{"cam-1": camPassword, "alice": alicePassword},
		ACL:        signallingACL,
		WebSockets: true,
	})
}

// writePage writes the static page for cam-1 on broker with `lenscap page`, and returns its
// file:// URL.
func writePage(t *testing.T, broker *mqtttest.Broker) string {
	t.Helper()
	dir := t.TempDir()
	err := runPage([]string{"--out", dir, "--broker", broker.WebSocketURL(), "--device", "cam-1"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return (&url.URL{Scheme: "file", Path: filepath.Join(dir, "index.html")}).String()
}

// pageLink is the static page's link with alice's account and a token in its fragment.
func pageLink(page, password, token string) string {
	return page + "#user=alice&password=" + url.QueryEscape(password) + "&token=" + url.QueryEscape(token)
}

// sigMsg is a signalling message as the camera's side reads it.
type sigMsg struct {
	Topic, Session string
	Type           string `json:"type"`
	Token          string `json:"token"`
}

// fakeCamera plays the camera's side of MQTT signalling with no media: it records what
// viewers publish and answers what the test says.
type fakeCamera struct {
	c    paho.Client
	msgs chan sigMsg
}

var viewerTopicRE = regexp.MustCompile(`^lenscap/cam-1/session/alice/([^/]+)/viewer$`)

func newFakeCamera(t *testing.T, broker *mqtttest.Broker) *fakeCamera {
	t.Helper()
	f := &fakeCamera{msgs: make(chan sigMsg, 64)}
	opts := paho.NewClientOptions().AddBroker("tcp://" + broker.Addr()).SetClientID("cam-1").
		SetUsername("cam-1").SetPassword(camPassword)
	f.c = paho.NewClient(opts)
	if tok := f.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("camera connect: %v", tok.Error())
	}
	t.Cleanup(func() { f.c.Disconnect(100) })
	tok := f.c.Subscribe("lenscap/cam-1/session/+/+/viewer", 0, func(_ paho.Client, m paho.Message) {
		var msg sigMsg
		if err := json.Unmarshal(m.Payload(), &msg); err != nil {
			msg.Type = "malformed: " + string(m.Payload())
		}
		msg.Topic = m.Topic()
		if sm := viewerTopicRE.FindStringSubmatch(m.Topic()); sm != nil {
			msg.Session = sm[1]
		}
		f.msgs <- msg
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("camera subscribe: %v", tok.Error())
	}
	return f
}

// next waits for the viewers' next message.
func (f *fakeCamera) next(t *testing.T, want string) sigMsg {
	t.Helper()
	select {
	case m := <-f.msgs:
		if m.Type != want {
			t.Fatalf("the page sent %q on %s, want %q", m.Type, m.Topic, want)
		}
		return m
	case <-time.After(15 * time.Second):
		t.Fatalf("the page sent no %q", want)
	}
	return sigMsg{}
}

// send publishes messages on a session's camera topic.
func (f *fakeCamera) send(t *testing.T, session string, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		tok := f.c.Publish("lenscap/cam-1/session/alice/"+session+"/camera", 1, false, m)
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("camera publish: %v", tok.Error())
		}
	}
}

func TestChromiumStaticPageSpeaksTheSignallingContract(t *testing.T) {
	broker := startSignallingBroker(t)
	cam := newFakeCamera(t, broker)
	page := writePage(t, broker)
	b := chromiumtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := b.Navigate(ctx, pageLink(page, alicePassword, "first-token")); err != nil {
		t.Fatal(err)
	}
	hello := cam.next(t, "hello")
	if hello.Token != "first-token" || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(hello.Session) {
		t.Fatalf("hello %+v: want the link's token on a 128-bit session", hello)
	}
	// The secrets left the address bar; the account stays.
	pageWait(ctx, t, b, "the secrets out of the address", `location.hash === '#user=alice'`)
	cam.send(t, hello.Session, `{"type":"state","state":{"video":{"private":true,"by":"button"},"audio":{"private":true,"by":"button"},"viewers":1,"seq":3}}`)
	pageWait(ctx, t, b, "the state shown", `document.getElementById('banner-text').textContent.includes('privacy button')`)

	// A refused token: error then bye, as the camera does; the page asks for another.
	cam.send(t, hello.Session, `{"type":"error","error":"a valid credential is required: the token has expired"}`, `{"type":"bye"}`)
	pageWait(ctx, t, b, "the prompt", `!document.getElementById('token-form').hidden && !document.getElementById('token-input').hidden`)
	pageWait(ctx, t, b, "the reason", `document.getElementById('banner-detail').textContent.includes('expired')`)
	submitForm(ctx, t, b, "token-input", "second-token")
	second := cam.next(t, "hello")
	if second.Token != "second-token" || second.Session == hello.Session {
		t.Fatalf("second hello %+v: want the new token on a new session", second)
	}
	// bye: the page comes back on a new session.
	cam.send(t, second.Session, `{"type":"bye"}`)
	third := cam.next(t, "hello")
	if third.Session == second.Session || third.Token != "second-token" {
		t.Fatalf("after bye: %+v", third)
	}
	// The page goes away without a word: the broker says bye for it (its will).
	if err := b.Navigate(ctx, "about:blank"); err != nil {
		t.Fatal(err)
	}
	if bye := cam.next(t, "bye"); bye.Session != third.Session {
		t.Fatalf("will on session %s, want %s", bye.Session, third.Session)
	}
	if errs := pageConsoleErrors(b); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}

func TestChromiumStaticPageAsksAgainForARefusedBrokerAccount(t *testing.T) {
	broker := startSignallingBroker(t)
	cam := newFakeCamera(t, broker)
	page := writePage(t, broker)
	b := chromiumtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Navigate(ctx, pageLink(page, "wrong-password", "a-token")); err != nil {
		t.Fatal(err)
	}
	pageWait(ctx, t, b, "the account refused", `document.getElementById('banner-text').textContent === 'The broker refused this account'`)
	pageWait(ctx, t, b, "the password asked for", `!document.getElementById('password-field').hidden && document.getElementById('token-input').hidden`)
	submitForm(ctx, t, b, "password-input", alicePassword)
	if hello := cam.next(t, "hello"); hello.Token != "a-token" {
		t.Fatalf("hello %+v after the password was given", hello)
	}
	var stored string
	if err := b.Eval(ctx, `sessionStorage.getItem('lenscap.password')`, &stored); err != nil || stored != alicePassword {
		t.Errorf("the password is not kept for the tab: %q %v", stored, err)
	}
}

// seenByBroker reports whether mosquitto's log has a line with every one of parts.
func seenByBroker(broker *mqtttest.Broker, parts ...string) bool {
	for _, line := range strings.Split(broker.Log(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// pageEvents is the page's window.lenscap.events.
func pageEvents(ctx context.Context, t *testing.T, b *chromiumtest.Browser) []struct{ Type, Kind string } {
	t.Helper()
	var events []struct{ Type, Kind string }
	if err := b.Eval(ctx, "window.lenscap.events", &events); err != nil {
		t.Fatal(err)
	}
	return events
}

// signallingFlags turn on the camera's side of MQTT signalling.
var signallingFlags = []string{"--mqtt-signalling=true"}

// startSignallingCamera starts lenscap as cam-1 on broker, signalling through it, with a static
// control token and the extra flags.
func startSignallingCamera(t *testing.T, broker *mqtttest.Broker, token string, extra ...string) *testDaemon {
	t.Helper()
	args := append([]string{"--mqtt", broker.URL("cam-1", camPassword), "--id", "cam-1", "--token", token}, signallingFlags...)
	return startDaemon(t, t.TempDir(), append(args, extra...)...)
}

// waitStateWith waits until the camera's state, read with token, satisfies cond.
func waitStateWith(t *testing.T, d *testDaemon, token, what string, cond func(apiState) bool) {
	t.Helper()
	var st apiState
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		code, body := d.do(t, "GET", "/api/state", token, nil)
		if code != http.StatusOK {
			t.Fatalf("GET /api/state: %d %s", code, body)
		}
		st = apiState{}
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("state %s: %v", body, err)
		}
		if cond(st) {
			return
		}
	}
	t.Fatalf("waiting for %s: state %+v", what, st)
}

// pageNow is the page's performance.now().
func pageNow(ctx context.Context, t *testing.T, b *chromiumtest.Browser) float64 {
	t.Helper()
	var mark float64
	if err := b.Eval(ctx, "performance.now()", &mark); err != nil {
		t.Fatal(err)
	}
	return mark
}

// waitCut waits, for one second, for the page to see the cut of kinds after mark (a
// removetrack each) and its video to stop decoding.
func waitCut(ctx context.Context, t *testing.T, b *chromiumtest.Browser, mark float64, kinds ...string) {
	t.Helper()
	cutCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for _, kind := range kinds {
		js := fmt.Sprintf("window.lenscap.events.some(e => e.type === 'removetrack' && e.kind === %q && e.t > %f)", kind, mark)
		if err := b.WaitFor(cutCtx, js, 20*time.Millisecond); err != nil {
			t.Fatalf("no removetrack for %s within 1 s: %v\nevents %v", kind, err, pageEvents(ctx, t, b))
		}
	}
	n1, _ := framesDecoded(ctx, b)
	time.Sleep(300 * time.Millisecond)
	if n2, _ := framesDecoded(ctx, b); n2 != n1 && n2 != -1 {
		t.Fatalf("video still decoding after the cut: %d then %d frames", n1, n2)
	}
}

// submitForm types value into the prompt's input and submits it.
func submitForm(ctx context.Context, t *testing.T, b *chromiumtest.Browser, input, value string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { document.getElementById(%q).value = %q;
	  document.getElementById('token-form').requestSubmit(); return true; })()`, input, value)
	if err := b.Eval(ctx, js, nil); err != nil {
		t.Fatal(err)
	}
}

// useCameraSwitch turns the camera off and on with the page's switch: fleet commands through
// the broker, applied, acknowledged, and renegotiated with the page.
func useCameraSwitch(ctx context.Context, t *testing.T, b *chromiumtest.Browser, d *testDaemon, token string) {
	t.Helper()
	pageWait(ctx, t, b, "the camera switch", shown("toggle-video")+` && !document.getElementById('toggle-video').disabled`)
	mark := pageNow(ctx, t, b)
	pageClick(ctx, t, b, "toggle-video")
	waitCut(ctx, t, b, mark, "video")
	waitStateWith(t, d, token, "video private by remote", func(s apiState) bool {
		return s.Video.Private && s.Video.By == "remote" && !s.Audio.Private
	})
	pageWait(ctx, t, b, "the switch off", `document.getElementById('toggle-video').getAttribute('aria-checked') === 'false' && !document.getElementById('toggle-video').disabled`)
	pageClick(ctx, t, b, "toggle-video")
	waitDecoding(ctx, t, b, 0)
}

// pageClick clicks a page element by id.
func pageClick(ctx context.Context, t *testing.T, b *chromiumtest.Browser, id string) {
	t.Helper()
	if err := b.Eval(ctx, fmt.Sprintf("document.getElementById(%q).click()", id), nil); err != nil {
		t.Fatal(err)
	}
}

func TestChromiumWatchesThroughTheBrokerFromAStaticPage(t *testing.T) {
	broker := startSignallingBroker(t)
	const token = "a-static-control-token-for-the-page"
	d := startSignallingCamera(t, broker, token)
	page := writePage(t, broker)
	b := chromiumtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// A token the camera refuses: the page asks for another, then watches with it.
	if err := b.Navigate(ctx, pageLink(page, alicePassword, "not-the-token")); err != nil {
		t.Fatal(err)
	}
	pageWait(ctx, t, b, "the refusal", `document.getElementById('banner-text').textContent === 'The camera refused this token'`)
	submitForm(ctx, t, b, "token-input", token)
	waitDecoding(ctx, t, b, 0)
	var via string
	if err := b.Eval(ctx, "window.lenscap.signalling", &via); err != nil || via != "mqtt" {
		t.Fatalf("the page signals over %q (%v), want mqtt", via, err)
	}
	if !seenByBroker(broker, "New client connected", "as lenscap-viewer-", "u'alice'") {
		t.Errorf("mosquitto saw no viewer connect as alice:\n%s", broker.Log())
	}

	// The button (the simulated one, pressed through the camera's API) cuts both and lifts.
	press := func() {
		t.Helper()
		if code, body := d.do(t, "POST", "/api/button", token, nil); code != http.StatusOK {
			t.Fatalf("press: %d %s", code, body)
		}
	}
	mark := pageNow(ctx, t, b)
	press()
	waitCut(ctx, t, b, mark, "video", "audio")
	pageWait(ctx, t, b, "the button's privacy shown", `document.getElementById('banner-text').textContent.includes('privacy button')`)
	press()
	waitDecoding(ctx, t, b, 0)

	useCameraSwitch(ctx, t, b, d, token)
	if errs := pageConsoleErrors(b); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}

	// The page goes away (its connection to the broker drops, its will says bye): the camera
	// lets the viewer go.
	if err := b.Navigate(ctx, "about:blank"); err != nil {
		t.Fatal(err)
	}
	waitStateWith(t, d, token, "no viewer once the page is gone", func(s apiState) bool { return s.Viewers == 0 })
}

func TestChromiumWatchesThroughTheBrokerAndATURNRelay(t *testing.T) {
	broker := startSignallingBroker(t)
	turn := rtctest.StartTURN(t)
	const token = "a-static-control-token-for-the-page"
	startSignallingCamera(t, broker, token, "--ice-servers", turn.URL, "--turn-secret", turn.Secret, "--ice-transport-policy", "relay")
	page := writePage(t, broker)
	b := chromiumtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := b.Navigate(ctx, pageLink(page, alicePassword, token)); err != nil {
		t.Fatal(err)
	}
	waitDecoding(ctx, t, b, 0)
	// The config message gave the page the camera's TURN server, with credentials minted for it.
	var servers []struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
	}
	if err := b.Eval(ctx, "window.lenscap.pc.getConfiguration().iceServers", &servers); err != nil {
		t.Fatal(err)
	}
	if len(servers) != 1 || len(servers[0].URLs) != 1 || servers[0].URLs[0] != turn.URL || servers[0].Username == "" || servers[0].Credential == "" {
		t.Errorf("the page's ICE servers: %+v, want %s with credentials", servers, turn.URL)
	}
	js := `(async () => { const s = await window.lenscap.pc.getStats(); let pair = null, remote = {};
	  s.forEach(r => { if (r.type === 'candidate-pair' && r.state === 'succeeded' && r.nominated) pair = r;
	    if (r.type === 'remote-candidate') remote[r.id] = r.candidateType; });
	  return pair ? remote[pair.remoteCandidateId] : 'none'; })()`
	var typ string
	if err := b.Eval(ctx, js, &typ); err != nil || typ != "relay" {
		t.Errorf("the selected pair ends at a %q candidate (%v), want relay", typ, err)
	}
}
