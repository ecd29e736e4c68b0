package rtctest

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TURN is a coturn (Debian's turnserver) on loopback, with TURN REST credentials
// (use-auth-secret) and loopback peers allowed: tests relay a camera through it.
type TURN struct {
	// URL is the server's turn: URL (UDP); Secret its shared secret.
	URL, Secret string
	log         *lockedLog
	bin         string
	args        []string
	cmd         *exec.Cmd
}

// StartTURN runs turnserver until the test ends; it fails the test when turnserver is missing
// (scripts/install-deps.sh installs coturn).
func StartTURN(tb testing.TB) *TURN {
	tb.Helper()
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		tb.Fatalf("rtctest: no turnserver (Debian's coturn; scripts/install-deps.sh installs it): %v", err)
	}
	port := freeUDPPort(tb)
	t := &TURN{URL: fmt.Sprintf("turn:127.0.0.1:%d?transport=udp", port), Secret: "lenscap-turn-test-secret",
		log: &lockedLog{}, bin: bin}
	relayLow := 40000 + port%20000
	t.args = []string{"-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
		"--listening-port=" + strconv.Itoa(port), "--min-port=" + strconv.Itoa(relayLow), "--max-port=" + strconv.Itoa(relayLow+200),
		"--use-auth-secret", "--static-auth-secret=" + t.Secret, "--realm=lenscap.test",
		"--no-tls", "--no-dtls", "--no-tcp-relay", "--allow-loopback-peers", "--no-cli", "--fingerprint",
		"--log-file=stdout", "--simple-log", "--verbose"}
	t.start(tb)
	tb.Cleanup(func() {
		t.Stop()
		if tb.Failed() {
			tb.Logf("turnserver log:\n%s", t.log.tail(4096))
		}
	})
	return t
}

// start runs turnserver and waits until it is up (it logs its listeners).
func (t *TURN) start(tb testing.TB) {
	tb.Helper()
	before := bytes.Count(t.log.bytes(), []byte("Total General servers"))
	t.cmd = exec.Command(t.bin, t.args...)
	t.cmd.Stdout, t.cmd.Stderr = t.log, t.log
	if err := t.cmd.Start(); err != nil {
		tb.Fatalf("rtctest: start turnserver: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); bytes.Count(t.log.bytes(), []byte("Total General servers")) == before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("rtctest: turnserver not ready after 10 s:\n%s", t.log.tail(4096))
		}
	}
}

// Stop kills turnserver (a relay that went away); it is idempotent.
func (t *TURN) Stop() {
	if t.cmd == nil {
		return
	}
	_ = t.cmd.Process.Kill()
	_ = t.cmd.Wait()
	t.cmd = nil
}

// Restart stops turnserver and starts it again on the same port, with no allocation left.
func (t *TURN) Restart(tb testing.TB) {
	tb.Helper()
	t.Stop()
	t.start(tb)
}

// Allocations counts the relay allocations turnserver reported so far.
func (t *TURN) Allocations() int {
	return bytes.Count(t.log.bytes(), []byte("ALLOCATE processed, success"))
}

func freeUDPPort(tb testing.TB) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.buf.Bytes())
}

func (l *lockedLog) tail(n int) string {
	b := l.bytes()
	return string(b[max(0, len(b)-n):])
}
