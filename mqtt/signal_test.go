package mqtt

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoServer is a SignalConfig.Serve that records its sessions and echoes each message back;
// with hold set it reads nothing until its context ends.
type echoServer struct {
	hold bool

	mu       sync.Mutex
	sessions []*SignalSession
	ended    int
}

func (e *echoServer) serve(ctx context.Context, s *SignalSession) {
	e.mu.Lock()
	e.sessions = append(e.sessions, s)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.ended++
		e.mu.Unlock()
		_ = s.Send(context.Background(), []byte(`{"type":"bye"}`))
	}()
	for {
		if e.hold {
			<-ctx.Done()
			return
		}
		select {
		case m := <-s.Recv():
			if err := s.Send(ctx, append([]byte("echo:"), m...)); err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (e *echoServer) count() (sessions, ended int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sessions), e.ended
}

// startSignalCamera runs cam-1's client with signalling served by e.
func startSignalCamera(t *testing.T, e *echoServer, edit func(*SignalConfig)) (*camera, *Client, string) {
	t.Helper()
	broker := startBroker(t)
	url := broker.URL("", "")
	cfg := &SignalConfig{Serve: e.serve}
	if edit != nil {
		edit(cfg)
	}
	cam := newCamera(t, url, "cam-1", func(c *Config) { c.Signal = cfg })
	c := cam.startClient()
	o := newObserver(t, url, "lenscap/cam-1/availability")
	o.waitFor("online", func(ms []msg) bool { m, ok := last(ms, "lenscap/cam-1/availability"); return ok && m.Payload == Online })
	return cam, c, url
}

// session is the viewer's side of one session: it follows the camera topic.
func session(t *testing.T, url, sid string) (o *observer, up, down string) {
	up = "lenscap/cam-1/session/alice/" + sid + "/viewer"
	down = "lenscap/cam-1/session/alice/" + sid + "/camera"
	return newObserver(t, url, down), up, down
}

func payloads(ms []msg, topic string) []string {
	var out []string
	for _, m := range ms {
		if m.Topic == topic {
			out = append(out, m.Payload)
		}
	}
	return out
}

func hasPayload(topic string, n int, sub string) func([]msg) bool {
	return func(ms []msg) bool {
		ps := payloads(ms, topic)
		return len(ps) >= n && strings.Contains(ps[n-1], sub)
	}
}

func TestSignalSessionStartsWithAHelloAndKeepsItsOrder(t *testing.T) {
	e := &echoServer{}
	_, c, url := startSignalCamera(t, e, nil)
	o, up, down := session(t, url, "s1")
	o.publish(up, false, `{"type":"hello","token":"T"}`)
	for i := range 5 {
		o.publish(up, false, map[string]any{"type": "candidate", "n": i})
	}
	ms := o.waitFor("five echoes", hasPayload(down, 5, `"n":4`))
	for i, p := range payloads(ms, down) {
		var m struct{ N int }
		if err := json.Unmarshal([]byte(strings.TrimPrefix(p, "echo:")), &m); err != nil || m.N != i {
			t.Fatalf("echo %d: %s", i, p)
		}
	}
	e.mu.Lock()
	s := e.sessions[0]
	e.mu.Unlock()
	if s.Account != "alice" || s.ID != "s1" || string(s.Hello) != `{"type":"hello","token":"T"}` {
		t.Errorf("session %q %q hello %s", s.Account, s.ID, s.Hello)
	}
	if st := c.SignalStats(); st.Active != 1 || st.Started != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestSignalRefusesBeyondItsLimitsAndTellsWhy(t *testing.T) {
	e := &echoServer{}
	_, c, url := startSignalCamera(t, e, func(c *SignalConfig) { c.MaxSessions = 2; c.MaxMessageBytes = 1024 })
	for _, sid := range []string{"a", "b"} {
		o, up, _ := session(t, url, sid)
		o.publish(up, false, `{"type":"hello"}`)
	}
	o, up, down := session(t, url, "c")
	o.publish(up, false, `{"type":"hello"}`)
	o.waitFor("refusal", hasPayload(down, 2, "bye"))
	if ps := payloads(o.all(), down); !strings.Contains(ps[0], "too many signalling sessions (at most 2)") {
		t.Errorf("refusal: %q", ps)
	}
	// No session: told so.
	o2, up2, down2 := session(t, url, "d")
	o2.publish(up2, false, `{"type":"answer","sdp":"v=0"}`)
	o2.waitFor("no session", hasPayload(down2, 2, "bye"))
	if ps := payloads(o2.all(), down2); !strings.Contains(ps[0], "no such session") {
		t.Errorf("no session: %q", ps)
	}
	// Too large for a live session: refused, and the session goes on.
	oa, upa, downa := session(t, url, "a")
	oa.publish(upa, false, strings.Repeat("x", 2000))
	oa.publish(upa, false, `{"type":"candidate"}`)
	// The refusal and the session's echo come from two goroutines: in either order.
	ps := payloads(oa.waitFor("the refusal and an echo", func(ms []msg) bool { return len(payloads(ms, downa)) >= 2 }), downa)
	slices.Sort(ps)
	if len(ps) != 2 || !strings.HasPrefix(ps[0], "echo:") || !strings.Contains(ps[1], "message of 2000 bytes refused: the most is 1024") {
		t.Errorf("too large: %q", ps)
	}
	if st := c.SignalStats(); st.Refused != 1 || st.Dropped != 2 || st.Active != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestSignalIgnoresARetainedHello(t *testing.T) {
	e := &echoServer{}
	broker := startBroker(t)
	url := broker.URL("", "")
	o, up, down := session(t, url, "stale")
	o.publish(up, true, `{"type":"hello"}`) // kept by the broker for whoever subscribes next
	cam := newCamera(t, url, "cam-1", func(c *Config) { c.Signal = &SignalConfig{Serve: e.serve} })
	c := cam.startClient()
	avail := newObserver(t, url, "lenscap/cam-1/availability")
	avail.waitFor("online", func(ms []msg) bool { m, ok := last(ms, "lenscap/cam-1/availability"); return ok && m.Payload == Online })
	o.sync(down) // the camera has had its chance to answer
	if n, _ := e.count(); n != 0 || c.SignalStats().Started != 0 {
		t.Fatalf("a retained hello started %d sessions", n)
	}
	if ps := payloads(o.all(), down); len(ps) != 1 {
		t.Errorf("camera answered a retained hello: %q", ps)
	}
}

func TestSignalDropsWhatAnAccountSendsBeyondItsRate(t *testing.T) {
	e := &echoServer{}
	_, c, url := startSignalCamera(t, e, func(c *SignalConfig) { c.Rate, c.Burst = 1, 10 })
	o, up, down := session(t, url, "s1")
	o.publish(up, false, `{"type":"hello"}`)
	for i := range 40 {
		o.publish(up, false, map[string]int{"n": i})
	}
	o.sync(down)
	time.Sleep(200 * time.Millisecond) // the camera's echoes of what it read
	if n := len(payloads(o.all(), down)); n > 12 {
		t.Errorf("%d echoes of 41 messages at 1/s, burst 10", n)
	}
	if st := c.SignalStats(); st.Limited < 29 {
		t.Errorf("stats %+v: want 29 or more limited", st)
	}
	// Another account is not held back by alice's bucket.
	ob, upb, downb := newObserver(t, url, "lenscap/cam-1/session/bob/b1/camera"), "lenscap/cam-1/session/bob/b1/viewer", "lenscap/cam-1/session/bob/b1/camera"
	ob.publish(upb, false, `{"type":"hello"}`)
	ob.publish(upb, false, `{"type":"x"}`)
	ob.waitFor("bob's echo", hasPayload(downb, 1, "echo:"))
}

func TestSignalSessionFloodedByItsViewerEnds(t *testing.T) {
	e := &echoServer{hold: true}
	_, c, url := startSignalCamera(t, e, func(c *SignalConfig) { c.Rate, c.Burst = 1e6, 1e6 })
	o, up, down := session(t, url, "s1")
	o.publish(up, false, `{"type":"hello"}`)
	for i := range signalQueue + 8 {
		o.publish(up, false, map[string]int{"n": i})
	}
	o.waitFor("bye", hasPayload(down, 1, "bye"))
	if _, ended := e.count(); ended != 1 {
		t.Errorf("%d sessions ended, want 1", ended)
	}
	deadline := time.Now().Add(2 * time.Second)
	for c.SignalStats().Active != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the session is forgotten once its Serve returned
	}
	if st := c.SignalStats(); st.Dropped == 0 || st.Active != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSignalSessionsEndWithTheClientAndSayBye(t *testing.T) {
	e := &echoServer{}
	cam, _, url := startSignalCamera(t, e, nil)
	o, up, down := session(t, url, "s1")
	o.publish(up, false, `{"type":"hello"}`)
	o.publish(up, false, `{"type":"x"}`)
	o.waitFor("echo", hasPayload(down, 1, "echo:"))
	cam.stopClient()
	o.waitFor("bye before the camera went", hasPayload(down, 2, "bye"))
	if n, ended := e.count(); n != 1 || ended != 1 {
		t.Errorf("%d sessions, %d ended", n, ended)
	}
}

func TestSessionTopicsParseOnlyWhatTheContractNames(t *testing.T) {
	tp := Topics{}
	if got := tp.Sessions("cam-1"); got != "lenscap/cam-1/session/+/+/viewer" {
		t.Errorf("filter %q", got)
	}
	for topic, ok := range map[string]bool{
		"lenscap/cam-1/session/alice/s1/viewer":                          true,
		"lenscap/cam-1/session/alice.b_c-d/S-1.x/camera":                 true,
		"lenscap/cam-2/session/alice/s1/viewer":                          false,
		"lenscap/cam-1/session/alice/viewer":                             false,
		"lenscap/cam-1/session/alice/s1/x/viewer":                        false,
		"lenscap/cam-1/session/al ice/s1/viewer":                         false,
		"lenscap/cam-1/session/" + strings.Repeat("a", 65) + "/s/viewer": false,
	} {
		if _, _, _, got := tp.SessionOf("cam-1", topic); got != ok {
			t.Errorf("SessionOf(%q) = %v, want %v", topic, got, ok)
		}
	}
}
