package mqtttest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
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
