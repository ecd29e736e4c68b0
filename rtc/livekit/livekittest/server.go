// Package livekittest runs a real LiveKit server for tests (livekit-server --dev built from the
// module proxy by scripts/livekit-server.sh, cached) and subscribes to a room with LiveKit's Go
// SDK, recording what arrives.
package livekittest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Key and Secret are the API key pair the test server accepts.
const (
	Key    = "lenscap-test"
	Secret = "lenscap-test-secret-of-at-least-32-bytes"
)

// Server is a livekit-server on loopback ports of its own.
type Server struct {
	URL string // ws://127.0.0.1:PORT

	bin, config string
	mu          sync.Mutex // guards cmd, done
	cmd         *exec.Cmd
	done        chan struct{}
	logMu       sync.Mutex // guards log
	log         *bytes.Buffer
}

// Binary returns the livekit-server to run: $LENSCAP_LIVEKIT_SERVER, or the one
// scripts/livekit-server.sh builds (once; a few minutes the first time).
func Binary(tb testing.TB) string {
	tb.Helper()
	if b := os.Getenv("LENSCAP_LIVEKIT_SERVER"); b != "" {
		return b
	}
	root, err := moduleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := exec.Command("bash", filepath.Join(root, "scripts", "livekit-server.sh")).Output()
	if err != nil {
		tb.Fatalf("building livekit-server (scripts/livekit-server.sh): %v", err)
	}
	return strings.TrimSpace(string(out))
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("livekittest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Start runs a server until the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := Binary(tb)
	var s *Server
	for attempt := 1; ; attempt++ {
		// A port found free may be taken by another process before the server binds it:
		// then other ports.
		port, rtcTCP, udp := freeTCP(tb), freeTCP(tb), freeUDP(tb)
		s = &Server{
			URL: fmt.Sprintf("ws://127.0.0.1:%d", port),
			bin: bin,
			config: fmt.Sprintf("port: %d\nbind_addresses: [127.0.0.1]\nrtc:\n  tcp_port: %d\n  udp_port: %d\n"+
				"  use_external_ip: false\n  node_ip: 127.0.0.1\n  enable_loopback_candidate: true\n"+
				"keys:\n  %s: %s\nlogging:\n  level: info\n", port, rtcTCP, udp, Key, Secret),
		}
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			tb.Logf("livekit-server log (last 4 KiB):\n%s", s.Log(4096))
		}
	})
	return s
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	log := &bytes.Buffer{}
	s.logMu.Lock()
	s.log = log
	s.logMu.Unlock()
	cmd := exec.Command(s.bin, "--config-body", s.config)
	cmd.Stdout, cmd.Stderr = &syncWriter{w: log, mu: &s.logMu}, &syncWriter{w: log, mu: &s.logMu}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("livekittest: start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	addr := strings.TrimPrefix(s.URL, "ws://")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("livekittest: livekit-server exited at start:\n%s", s.Log(4096))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("livekittest: livekit-server not listening on %s after 20s", addr)
		}
	}
}

// Stop stops the server (SIGKILL: as a crash or a power cut would); it is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart stops the server and starts it again on the same ports, with no room.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
}

// Log returns the server's output, its last n bytes.
func (s *Server) Log(n int) string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	b := s.log.Bytes()
	return string(b[max(0, len(b)-n):])
}

type syncWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func freeTCP(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeUDP(tb testing.TB) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
