package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/cmd/internal/settings"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
)

// eventLog is view --json's standard output, parsed as it is written.
type eventLog struct {
	mu      sync.Mutex
	partial []byte
	events  []map[string]any
	lines   []string
	changed chan struct{}
}

func newEventLog() *eventLog { return &eventLog{changed: make(chan struct{})} }

func (l *eventLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil {
			e = map[string]any{"event": "not-json", "line": line}
		}
		l.events = append(l.events, e)
		l.lines = append(l.lines, line)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// since returns the events from index from on.
func (l *eventLog) since(from int) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	if from > len(l.events) {
		return nil
	}
	return append([]map[string]any(nil), l.events[from:]...)
}

// waitFor waits until an event from index from on satisfies match, and returns its index.
func (l *eventLog) waitFor(t *testing.T, from int, timeout time.Duration, what string, match func(map[string]any) bool) int {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for i := from; i < len(l.events); i++ {
			if match(l.events[i]) {
				l.mu.Unlock()
				return i
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %s within %s; the view printed:\n%s", what, timeout, l)
		}
	}
}

// is matches an event by name and fields (JSON numbers are float64).
func is(event string, fields map[string]any) func(map[string]any) bool {
	return func(e map[string]any) bool {
		if e["event"] != event {
			return false
		}
		for k, v := range fields {
			if e[k] != v {
				return false
			}
		}
		return true
	}
}

// buildLenscap builds the camera's daemon from this module.
func buildLenscap(t *testing.T) string { return buildCommand(t, "lenscap") }

// buildCommand builds ./cmd/NAME of this module.
func buildCommand(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/lenscap/lenscap/cmd/"+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	return bin
}

// lockedBuffer is a process's log.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// simCamera is lenscap running the simulated board as a process, on a free loopback port.
type simCamera struct {
	url string
	log *lockedBuffer
}

func startSimCamera(t *testing.T, bin string, args ...string) *simCamera {
	t.Helper()
	listeningOn := regexp.MustCompile(`listening on (http://127\.0\.0\.1:[0-9]+)`)
	args = append([]string{"--board", "sim", "--listen", "127.0.0.1:0", "--state-dir", t.TempDir(),
		"--mqtt-listen", "off", "--log-level", "info"}, args...)
	cmd := exec.Command(bin, args...)
	c := &simCamera{log: &lockedBuffer{}}
	cmd.Stdout, cmd.Stderr = c.log, c.log
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start lenscap: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("lenscap log:\n%s", c.log)
		}
	})
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		if m := listeningOn.FindStringSubmatch(c.log.String()); m != nil {
			c.url = m[1]
			return c
		}
		select {
		case <-exited:
			t.Fatalf("lenscap exited at start:\n%s", c.log)
		case <-time.After(20 * time.Millisecond): // polling its log, with a deadline
		}
	}
	t.Fatalf("lenscap did not listen within 15s:\n%s", c.log)
	return nil
}

// press presses the simulated privacy button, with a control credential.
func (c *simCamera) press(t *testing.T, token string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, c.url+"/api/button", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("press the button: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("press the button: %s: %s", resp.Status, body)
	}
}

// mintTokens makes a fleet key and two tokens for cam-1 with it: view and control. It returns
// the public key's file, for the camera's --token-keys.
func mintTokens(t *testing.T) (pubFile, view, control string) {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "fleet.key")
	var pub bytes.Buffer
	if err := runEnv(t.Context(), []string{"token", "keygen", "--out", key}, env(nil), &pub, io.Discard); err != nil {
		t.Fatal(err)
	}
	pubFile = filepath.Join(dir, "fleet.pub")
	if err := os.WriteFile(pubFile, pub.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	mint := func(name, role string) string {
		var out bytes.Buffer
		args := []string{"token", "create", "--key", key, "--name", name, "--role", role, "--ttl", "1h", "--aud", "cam-1"}
		if err := runEnv(t.Context(), args, env(nil), &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out.String())
	}
	return pubFile, mint("alice", "view"), mint("test-operator", "control")
}

// viewRig is a real mosquitto with the contract's ACL, lenscap's simulated board as a
// process (camera cam-1, trusting a fleet key), and tokens for alice (view) and the test
// (control).
type viewRig struct {
	broker           *mqtttest.Broker
	cam              *simCamera
	viewTok, ctrlTok string
}

// cameraSignalFlags turn on the camera's MQTT signalling (mqtt_signalling).
func cameraSignalFlags() []string { return []string{"--mqtt-signalling"} }

func startViewRig(t *testing.T) *viewRig {
	t.Helper()
	bin := buildLenscap(t)
	r := &viewRig{broker: mqtttest.Start(t, mqtttest.Options{
		Users: map[string]string{"alice": "a-pw", "cam-1": "c-pw", "operator": "op-pw"}, ACL: signallingACL})}
	pubFile, viewTok, ctrlTok := mintTokens(t)
	r.viewTok, r.ctrlTok = viewTok, ctrlTok
	r.cam = startSimCamera(t, bin, append([]string{"--id", "cam-1", "--mqtt", r.broker.URL("cam-1", "c-pw"),
		"--token-keys", pubFile}, cameraSignalFlags()...)...)
	// The camera says online once it has subscribed (signalling included): a hello before that
	// would be lost (the camera subscribes at QoS 0).
	operator := map[string]string{"LENSCAP_MQTT": r.broker.URL("operator", "op-pw"), "LENSCAP_TIMEOUT": "2s"}
	for deadline := time.Now().Add(15 * time.Second); ; {
		out, _, err := ctl(t, operator, "state", "--device", "cam-1", "--json")
		if err == nil && strings.Contains(out, `"availability":"online"`) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera cam-1 not online on the broker within 15s: %v %s\n%s", err, out, r.cam.log)
		}
		time.Sleep(50 * time.Millisecond) // polling the broker, with a deadline
	}
}

// runningView is lenscapctl view --json running in this process.
type runningView struct {
	log    *eventLog
	stderr *lockedBuffer
	done   chan error
	stop   context.CancelFunc // Ctrl-C
}

func (r *viewRig) view(t *testing.T, token string, args ...string) *runningView {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	t.Cleanup(stop)
	v := &runningView{log: newEventLog(), stderr: &lockedBuffer{}, done: make(chan error, 1), stop: stop}
	e := env(map[string]string{"LENSCAP_MQTT": r.broker.URL("alice", "a-pw"), envViewToken: token})
	args = append([]string{"view", "--device", "cam-1", "--json", "--ice-ip", "127.0.0.1/8"}, args...)
	go func() { v.done <- runEnv(ctx, args, e, v.log, v.stderr) }()
	return v
}

// end presses Ctrl-C and returns the view's result.
func (v *runningView) end(t *testing.T) error {
	t.Helper()
	v.stop()
	select {
	case err := <-v.done:
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("view did not end after Ctrl-C:\n%s", v.log)
		return nil
	}
}

// TestViewWatchesASimulatedCameraThroughTheBroker is the end-to-end test: a real mosquitto
// with the contract's ACL, lenscap's simulated board as a process, and lenscapctl view. The
// view connects, its first video frame is a keyframe; the button's cut makes the offer send no
// video and the video stop; the lift resumes it with a keyframe; Ctrl-C ends it with status 0
// and a summary; a bad credential is refused with status 1 and the camera's reason.
func TestViewWatchesASimulatedCameraThroughTheBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lenscap")
	}
	r := startViewRig(t)
	v := r.view(t, r.viewTok)
	l := v.log
	l.waitFor(t, 0, 10*time.Second, "state", is("state", nil))
	l.waitFor(t, 0, 10*time.Second, "connected over loopback", is("connected", map[string]any{"pair": "host"}))
	first := l.waitFor(t, 0, 10*time.Second, "the first video frame", is("first-frame", map[string]any{"kind": "video", "add": 1.0}))
	if e := l.since(first)[0]; e["keyframe"] != true {
		t.Errorf("the first video frame is not a keyframe: %v", e)
	}
	l.waitFor(t, 0, 5*time.Second, "video stats", is("stats", map[string]any{"kind": "video"}))

	cut := r.cutStopsTheVideo(t, l)

	r.cam.press(t, r.ctrlTok) // the lift
	lift := l.waitFor(t, cut, 10*time.Second, "the lift's offer", is("offer", map[string]any{"video": "sendonly"}))
	l.waitFor(t, lift, 5*time.Second, "the second video track", is("track", map[string]any{"kind": "video", "add": 2.0}))
	first = l.waitFor(t, lift, 10*time.Second, "the first frame after the lift", is("first-frame", map[string]any{"kind": "video", "add": 2.0}))
	if e := l.since(first)[0]; e["keyframe"] != true {
		t.Errorf("the first video frame after the lift is not a keyframe: %v", e)
	}

	if err := v.end(t); err != nil {
		t.Errorf("view ended with %v, want nil (Ctrl-C); stderr:\n%s", err, v.stderr)
	}
	sum := l.since(l.waitFor(t, 0, time.Second, "the video summary", is("summary", map[string]any{"kind": "video"})))[0]
	if fk, _ := sum["first-keyframes"].([]any); len(fk) != 2 || fk[0] != true || fk[1] != true || sum["adds"] != 2.0 ||
		sum["packets"].(float64) == 0 || sum["first-frame-ms"] == nil {
		t.Errorf("summary %v", sum)
	}
	t.Logf("the view printed:\n%s", l)
	r.badTokenIsRefused(t)
}

// cutStopsTheVideo presses the button while video flows: the offer sends neither kind, the
// video track ends and no more video packets come. It returns the cut offer's index.
func (r *viewRig) cutStopsTheVideo(t *testing.T, l *eventLog) int {
	t.Helper()
	r.cam.press(t, r.ctrlTok)
	cut := l.waitFor(t, 0, 10*time.Second, "the cut's offer", is("offer", map[string]any{"video": "inactive", "audio": "inactive"}))
	ended := l.waitFor(t, cut, 5*time.Second, "the video track's end", is("ended", map[string]any{"kind": "video"}))
	time.Sleep(2500 * time.Millisecond) // two stats ticks: at most one (the packets before the cut)
	var after []map[string]any
	for _, e := range l.since(ended) {
		if e["event"] == "stats" && e["kind"] == "video" {
			after = append(after, e)
		}
	}
	if len(after) > 1 {
		t.Errorf("video packets still flow after the cut: %v", after)
	}
	return cut
}

// badTokenIsRefused: a credential the camera does not take ends the view with status 1 and the
// camera's reason, without a connection.
func (r *viewRig) badTokenIsRefused(t *testing.T) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runEnv(t.Context(), []string{"view", "--device", "cam-1", "--for", "10s"},
		env(map[string]string{"LENSCAP_MQTT": r.broker.URL("alice", "a-pw"), envViewToken: "not-a-token-at-all"}), &out, &errb)
	var exitOut, exitErr bytes.Buffer
	if code := settings.Exit("lenscapctl", err, &exitOut, &exitErr); code != 1 || !strings.Contains(exitErr.String(), "refused the session") {
		t.Errorf("a bad token: status %d, stderr %q; output:\n%s", code, exitErr.String(), out.String())
	}
	if strings.Contains(out.String(), "connected") || !strings.Contains(out.String(), "\nbye\n") {
		t.Errorf("a bad token: want an error and a bye, no connection:\n%s", out.String())
	}
	t.Logf("a bad token: status 1, stderr %q, output:\n%s", exitErr.String(), out.String())
}

// TestViewWillSaysByeWhenTheViewerDies: a view killed with SIGKILL leaves its session through
// its MQTT will, a bye on its session's viewer topic, so the camera does not keep it.
func TestViewWillSaysByeWhenTheViewerDies(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lenscapctl")
	}
	bin := buildCommand(t, "lenscapctl")
	b := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"alice": "a-pw", "operator": "op-pw", "cam-1": "c-pw"},
		ACL: signallingACL})
	got := watchTopic(t, b, "lenscap/cam-1/session/+/+/viewer")
	cmd := exec.Command(bin, "view", "--device", "cam-1", "--timeout", "60s")
	cmd.Env = []string{"LENSCAP_MQTT=" + b.URL("alice", "a-pw"), envViewToken + "=view-token-1234567890"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() { _ = cmd.Process.Kill(); <-exited }()
	hello := nextMessage(t, got, "the hello")
	if !strings.Contains(string(hello.Payload()), `"type":"hello"`) {
		t.Fatalf("first message %s", hello.Payload())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	bye := nextMessage(t, got, "the will")
	if string(bye.Payload()) != byeMessage || bye.Topic() != hello.Topic() {
		t.Errorf("after the kill: %s on %s, want %s on %s", bye.Payload(), bye.Topic(), byeMessage, hello.Topic())
	}
}

// watchTopic subscribes the operator to filter and returns what arrives.
func watchTopic(t *testing.T, b *mqtttest.Broker, filter string) <-chan paho.Message {
	t.Helper()
	got := make(chan paho.Message, 16)
	opts := paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetUsername("operator").SetPassword("op-pw").
		SetClientID("watcher").SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		select {
		case got <- m:
		default:
		}
	})
	watcher := paho.NewClient(opts)
	if tok := watcher.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher: %v", tok.Error())
	}
	t.Cleanup(func() { watcher.Disconnect(0) })
	if tok := watcher.Subscribe(filter, 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return got
}

func nextMessage(t *testing.T, got <-chan paho.Message, what string) paho.Message {
	t.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
		return nil
	}
}
