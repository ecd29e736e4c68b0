package mqtttest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func dialOK(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.Close()
}

func TestStartStopRestartOnTheSamePort(t *testing.T) {
	b := Start(t, Options{Users: map[string]string{"a": "pa", "b": "pb"}, ACL: "user a\ntopic readwrite x/#\n", Persistence: true})
	dialOK(t, b.Addr())
	port := b.Port()
	if u := b.URL("a", "p@ss"); !strings.HasPrefix(u, "mqtt://a:p%40ss@127.0.0.1:") {
		t.Errorf("URL = %s", u)
	}
	pw, err := os.ReadFile(b.Dir() + "/passwd")
	if err != nil || !strings.Contains(string(pw), "a:$") || !strings.Contains(string(pw), "b:$") {
		t.Errorf("password file: %q, %v", pw, err)
	}
	b.Restart()
	if b.Port() != port || !b.Running() {
		t.Fatalf("after Restart: port %d running %t, want %d true", b.Port(), b.Running(), port)
	}
	dialOK(t, b.Addr())
	b.Kill()
	if b.Running() {
		t.Error("running after Kill")
	}
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the port still accepts connections after Kill")
	}
	b.Restart()
	dialOK(t, b.Addr())
	b.Stop()
	b.Stop() // idempotent
	if !strings.Contains(b.Log(), "mosquitto version") {
		t.Errorf("log: %q", b.Log())
	}
}

func TestTLSBrokerURLAndCertificates(t *testing.T) {
	b := Start(t, Options{TLS: true, RequireCertificate: true})
	if !strings.HasPrefix(b.URL("", ""), "mqtts://127.0.0.1:") || b.CAFile() == "" {
		t.Errorf("URL %s, CA %q", b.URL("", ""), b.CAFile())
	}
	cert, key := b.ClientCert("cam-1")
	for _, f := range []string{cert, key} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
}

// recordingTB records Skipf and Fatalf, and stops the function that called them as the real
// ones do (runtime.Goexit there, a panic caught by the test here).
type recordingTB struct {
	testing.TB
	skipped, failed string
}

type stopped struct{}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	panic(stopped{})
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(stopped{})
}

func find(tb *recordingTB, env map[string]string) (path string) {
	defer func() {
		if v := recover(); v != nil && v != (stopped{}) {
			panic(v)
		}
	}()
	return findBinary(tb, func(k string) string { return env[k] }, func(string) bool { return false },
		func(string) (string, error) { return "", errors.New("not found") })
}

func TestMissingMosquittoSkipsUnlessRequired(t *testing.T) {
	r := &recordingTB{TB: t}
	find(r, nil)
	if r.skipped == "" || r.failed != "" || !strings.Contains(r.skipped, RequireEnv) {
		t.Errorf("without %s: skipped %q failed %q, want a skip that names it", RequireEnv, r.skipped, r.failed)
	}
	r = &recordingTB{TB: t}
	find(r, map[string]string{RequireEnv: "1"})
	if r.failed == "" || r.skipped != "" {
		t.Errorf("with %s: skipped %q failed %q, want a failure", RequireEnv, r.skipped, r.failed)
	}
}

func TestWebSocketListenerCarriesMQTTWithTheSameAccounts(t *testing.T) {
	b := Start(t, Options{
		Users:      map[string]string{"cam": "pc", "viewer": "pv"},
		ACL:        "user cam\ntopic write x/out\nuser viewer\ntopic read x/out\n",
		WebSockets: true,
	})
	if !strings.HasPrefix(b.WebSocketURL(), "ws://127.0.0.1:") || b.WebSocketAddr() == b.Addr() {
		t.Fatalf("WebSocketURL %q, Addr %q", b.WebSocketURL(), b.Addr())
	}
	got := make(chan string, 1)
	viewer := connect(t, b.WebSocketURL(), "viewer", "pv")
	if tok := viewer.Subscribe("x/out", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe over WebSocket: %v", tok.Error())
	}
	cam := connect(t, "tcp://"+b.Addr(), "cam", "pc")
	if tok := cam.Publish("x/out", 1, false, "hello"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m != "hello" {
			t.Errorf("got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing arrived over the WebSocket")
	}
	bad := paho.NewClient(paho.NewClientOptions().AddBroker(b.WebSocketURL()).SetUsername("viewer").SetPassword("wrong"))
	if tok := bad.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		bad.Disconnect(0)
		t.Error("a wrong password was accepted over the WebSocket")
	}
	if !listensOnLoopbackOnly(t, b.wsPort) {
		t.Errorf("the WebSocket listener on port %d reaches beyond 127.0.0.1", b.wsPort)
	}
	b.Restart()
	dialOK(t, b.WebSocketAddr())
}

func TestNoWebSocketListenerUnlessAsked(t *testing.T) {
	b := Start(t, Options{})
	if b.WebSocketURL() != "" || b.WebSocketAddr() != "" {
		t.Errorf("WebSocketURL %q, WebSocketAddr %q without the option", b.WebSocketURL(), b.WebSocketAddr())
	}
}

func connect(t *testing.T, broker, user, password string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetUsername(user).SetPassword(password).SetClientID(user))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s as %s: %v", broker, user, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// listensOnLoopbackOnly reports whether the sockets listening on port (in /proc/net/tcp and
// tcp6) are all bound to 127.0.0.1. Elsewhere than Linux it reports true.
func listensOnLoopbackOnly(t *testing.T, port int) bool {
	t.Helper()
	found := false
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			addr, p, ok := strings.Cut(fields[1], ":")
			if !ok || p != fmt.Sprintf("%04X", port) {
				continue
			}
			found = true
			if addr != "0100007F" {
				return false
			}
		}
	}
	if !found {
		t.Logf("no listening socket on port %d in /proc/net", port)
	}
	return true
}
