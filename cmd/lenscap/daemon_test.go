package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lenscap/lenscap/rtc/rtctest"
)

// testDaemon is lenscap in this process, on a free loopback port.
type testDaemon struct {
	*daemon
	url    string
	cancel context.CancelFunc
	done   chan error
	log    *logBuffer
}

// logBuffer collects the daemon's log and reports the address it listens on.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
}

var listening = regexp.MustCompile(`listening on (https?://[0-9.:]+)`)

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m := listening.FindSubmatch(p); m != nil {
		select {
		case b.addr <- string(m[1]):
		default:
		}
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startDaemon(t testing.TB, stateDir string, extra ...string) *testDaemon {
	t.Helper()
	args := append([]string{"--board", "sim", "--listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--state-dir", stateDir, "--log-level", "debug"}, extra...)
	lb := &logBuffer{addr: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	env := func(string) string { return "" }
	cfg, err := loadConfig(args, env)
	if err != nil {
		t.Fatal(err)
	}
	dm, err := newDaemon(cfg, newLogger(cfg, lb), env)
	if err != nil {
		t.Fatal(err)
	}
	d := &testDaemon{daemon: dm, cancel: cancel, done: make(chan error, 1), log: lb}
	go func() {
		err := dm.run(ctx)
		dm.close()
		d.done <- err
	}()
	select {
	case d.url = <-lb.addr:
	case err := <-d.done:
		t.Fatalf("daemon exited: %v\n%s", err, lb)
	case <-time.After(10 * time.Second):
		t.Fatalf("daemon did not listen\n%s", lb)
	}
	t.Cleanup(func() { d.stop(t) })
	return d
}

// stop cancels run and checks that it returns nil promptly; it is idempotent.
func (d *testDaemon) stop(t testing.TB) {
	t.Helper()
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("run did not return after cancel\n%s", d.log)
	}
}

type apiState struct {
	Board string `json:"board"`
	Video struct {
		Private bool   `json:"private"`
		By      string `json:"by"`
		Live    bool   `json:"live"`
	} `json:"video"`
	Audio struct {
		Private bool   `json:"private"`
		By      string `json:"by"`
		Live    bool   `json:"live"`
	} `json:"audio"`
	Viewers int    `json:"viewers"`
	Seq     uint64 `json:"seq"`
	Idle    bool   `json:"idle"`
}

func (d *testDaemon) do(t testing.TB, method, path, token string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, d.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (d *testDaemon) state(t testing.TB) apiState {
	t.Helper()
	code, b := d.do(t, "GET", "/api/state", "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/state: %d %s", code, b)
	}
	var st apiState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state %s: %v", b, err)
	}
	return st
}

// waitState waits until the state satisfies cond.
func (d *testDaemon) waitState(t testing.TB, what string, cond func(apiState) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if cond(d.state(t)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: state %+v", what, d.state(t))
		}
	}
}

func TestAPIPrivacyFollowsTheContract(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--capture", "always") // live with no viewer
	if st := d.state(t); st.Board != "sim" || st.Video.Private || !st.Video.Live || !st.Audio.Live {
		t.Fatalf("initial state %+v", st)
	}
	code, b := d.do(t, "POST", "/api/privacy", "", strings.NewReader(`{"video":true}`))
	if code != http.StatusOK {
		t.Fatalf("cut video: %d %s", code, b)
	}
	st := d.state(t)
	if !st.Video.Private || st.Video.By != "remote" || st.Video.Live || st.Audio.Private || !st.Audio.Live {
		t.Fatalf("after remote video cut: %+v", st)
	}
	// The simulated button cuts both and wins over remote lifts.
	if code, b := d.do(t, "POST", "/api/button", "", nil); code != http.StatusOK {
		t.Fatalf("button: %d %s", code, b)
	}
	seq := d.state(t).Seq
	code, b = d.do(t, "POST", "/api/privacy", "", strings.NewReader(`{"video":false,"audio":false}`))
	if code != http.StatusConflict || !strings.Contains(string(b), "button") {
		t.Fatalf("remote lift of button privacy: %d %s, want 409", code, b)
	}
	if st := d.state(t); !st.Video.Private || !st.Audio.Private || st.Seq != seq {
		t.Fatalf("refused lift changed the state: %+v", st)
	}
	for _, bad := range []struct {
		body string
		code int
	}{
		{`{"video":`, http.StatusBadRequest},
		{`{"video":"yes"}`, http.StatusBadRequest},
		{`{}`, http.StatusBadRequest},
		{`{"colour":true}`, http.StatusBadRequest},
		{`{"video":false,"pad":"` + strings.Repeat("x", 8<<10) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		code, b := d.do(t, "POST", "/api/privacy", "", strings.NewReader(bad.body))
		if code != bad.code || !strings.Contains(string(b), `"error"`) {
			t.Errorf("%.40s: %d %s, want %d with an error", bad.body, code, b, bad.code)
		}
	}
	if st := d.state(t); st.Seq != seq {
		t.Errorf("bad input changed the state: %+v", st)
	}
	if code, b := d.do(t, "POST", "/api/button", "", nil); code != http.StatusOK {
		t.Fatalf("button: %d %s", code, b)
	}
	if st := d.state(t); st.Video.Private || st.Audio.Private || !st.Video.Live {
		t.Fatalf("after second press: %+v", st)
	}
}

func TestRestartWhilePrivateStartsPrivate(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	if code, b := d.do(t, "POST", "/api/button", "", nil); code != http.StatusOK {
		t.Fatalf("button: %d %s", code, b)
	}
	d.stop(t)
	d = startDaemon(t, dir)
	st := d.state(t)
	if !st.Video.Private || !st.Audio.Private || st.Video.By != "button" || st.Video.Live || st.Audio.Live {
		t.Fatalf("after restart: %+v", st)
	}
	if strings.Contains(d.log.String(), "source opened") {
		t.Error("a source was opened while private")
	}
}

func TestCorruptStateFileStartsPrivate(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "privacy.json"), []byte("{\x00garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir, "--capture", "always") // a lift opens the sources with no viewer
	st := d.state(t)
	if !st.Video.Private || !st.Audio.Private || st.Video.By != "boot" || st.Video.Live {
		t.Fatalf("corrupt state file: %+v", st)
	}
	if !strings.Contains(d.log.String(), "unreadable") {
		t.Errorf("corruption not logged:\n%s", d.log)
	}
	// Boot privacy counts as the button's: a remote lift is refused, a press lifts it.
	if code, b := d.do(t, "POST", "/api/privacy", "", strings.NewReader(`{"video":false,"audio":false}`)); code != http.StatusConflict {
		t.Fatalf("remote lift of boot privacy: %d %s, want 409", code, b)
	}
	if code, b := d.do(t, "POST", "/api/button", "", nil); code != http.StatusOK {
		t.Fatalf("button: %d %s", code, b)
	}
	if st := d.state(t); st.Video.Private || !st.Video.Live {
		t.Fatalf("after the press: %+v", st)
	}
}

func TestRunFailsClearlyOnBadConfig(t *testing.T) {
	err := run(context.Background(), []string{"--board", "sim", "--listen", "not-an-address"}, func(string) string { return "" }, nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("run with a bad listen address: %v", err)
	}
	err = run(context.Background(), []string{"--board", "moon-rover", "--listen", "127.0.0.1:0", "--state-dir", t.TempDir()}, func(string) string { return "" }, nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "moon-rover") {
		t.Fatalf("run with an unknown board: %v", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal("cancellation is not an error")
	}
}

func TestMetricsFollowTheCameraAndTheCut(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--capture", "always") // capturing with no viewer
	metric := func(name string) string {
		t.Helper()
		code, b := d.do(t, "GET", "/metrics", "", nil)
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, name+" ") {
				return strings.TrimPrefix(line, name+" ")
			}
		}
		return ""
	}
	deadline := time.Now().Add(5 * time.Second)
	for metric(`lenscap_frames_encoded_total{kind="video"}`) == "0" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if v := metric(`lenscap_frames_encoded_total{kind="video"}`); v == "" || v == "0" {
		t.Fatalf("frames encoded: %q", v)
	}
	if v := metric(`lenscap_live{kind="video"}`); v != "1" {
		t.Errorf("live: %q", v)
	}
	if code, b := d.do(t, "POST", "/api/button", "", nil); code != http.StatusOK {
		t.Fatalf("button: %d %s", code, b)
	}
	if v := metric(`lenscap_private{kind="video"}`); v != "1" {
		t.Errorf("private after the press: %q", v)
	}
	if v := metric(`lenscap_cut_duration_seconds_count{by="button",kind="video"}`); v != "1" {
		t.Errorf("cuts observed: %q", v)
	}
	if v := metric(`lenscap_source_closes_total{kind="video"}`); v != "1" {
		t.Errorf("source closes: %q", v)
	}
}

func TestSystemdIsToldReadyAndStopping(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make(chan string, 16)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	lb := &logBuffer{addr: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	env := func(k string) string {
		if k == "NOTIFY_SOCKET" {
			return sock
		}
		return ""
	}
	go func() {
		done <- run(ctx, []string{"--board", "sim", "--listen", "127.0.0.1:0", "--mqtt-listen", "off", "--state-dir", t.TempDir()}, env, nil, lb)
	}()
	want := func(state string) {
		t.Helper()
		select {
		case s := <-got:
			if s != state {
				t.Fatalf("notified %q, want %q", s, state)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s\n%s", state, lb)
		}
	}
	want("READY=1")
	cancel()
	want("STOPPING=1")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestOnDemandTheCameraIsOpenOnlyWhileSomeoneWatches(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--capture", "on_demand", "--capture-linger", "300ms")
	if st := d.state(t); st.Video.Live || st.Audio.Live {
		t.Fatalf("no viewer, on demand: %+v, want nothing live", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := rtctest.Dial(ctx, "ws"+strings.TrimPrefix(d.url, "http")+"/ws", rtctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})); err != nil {
		t.Fatalf("the first viewer gets no video: %v", err)
	}
	v.Close()
	d.waitState(t, "the sources closed after the last viewer left and the linger passed", func(st apiState) bool {
		return st.Idle && !st.Video.Live && !st.Audio.Live
	})
}
