// Package mqtttest runs a real mosquitto broker for tests: on a free 127.0.0.1 port, with its
// own configuration, password and ACL files in the test's temporary directory, optionally with
// TLS and client certificates, and optionally a second listener that speaks MQTT over
// WebSocket (for browsers). It can be stopped and restarted on the same ports.
//
// mosquitto is $LENSCAP_MOSQUITTO, /usr/sbin/mosquitto or mosquitto on PATH. When it is missing
// the test is skipped, unless the environment variable LENSCAP_REQUIRE_MOSQUITTO is set, which
// makes it a failure (CI sets it).
package mqtttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing mosquitto into a failure.
const RequireEnv = "LENSCAP_REQUIRE_MOSQUITTO"

// Options configure a Broker. The zero value is an anonymous broker without ACLs.
type Options struct {
	// Users are the accounts of the password file (user name -> password). When empty and
	// TLS is off, anonymous clients are allowed.
	Users map[string]string
	// ACL is the content of the ACL file ("user", "topic" and "pattern" lines); empty: none.
	ACL string
	// Persistence keeps sessions and retained messages across Restart (in the temporary
	// directory). Off, a restart loses them, as a crash of a broker without persistence does.
	Persistence bool
	// TLS makes the listener TLS-only with a CA made for the test; RequireCertificate
	// additionally requires a client certificate, whose CN is the user name (mTLS).
	TLS, RequireCertificate bool
	// UsernameAsClientID makes every client's id its user name (or its certificate's CN),
	// whatever id it asks for (use_username_as_clientid): an account cannot take over another
	// account's session, so one camera cannot take another camera's client id, as README's "A
	// broker for a fleet" sets it up. Each account then has one connection at a time.
	UsernameAsClientID bool
	// WebSockets adds a listener with mosquitto's "protocol websockets" on another free
	// 127.0.0.1 port, for MQTT over WebSocket (WebSocketURL); the same accounts and ACL apply.
	// It is plain ws:// (TLS applies to the MQTT listener only).
	WebSockets bool
	// Extra are more lines of mosquitto.conf (e.g. "max_queued_messages 10000").
	Extra []string
}

// Broker is a running mosquitto.
type Broker struct {
	tb   testing.TB
	opts Options
	dir  string
	conf string
	port int
	// wsPort is the WebSocket listener's port; 0 without one.
	wsPort int
	ca     *testCA

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exited
	runs int
}

// Start starts mosquitto and waits until it accepts connections. It is stopped when the test
// ends; its log is printed if the test failed.
func Start(tb testing.TB, opts Options) *Broker {
	tb.Helper()
	bin := binary(tb)
	b := &Broker{tb: tb, opts: opts, dir: tb.TempDir()}
	if opts.TLS {
		ca, err := newTestCA(b.dir)
		if err != nil {
			tb.Fatalf("mqtttest: %v", err)
		}
		b.ca = ca
	}
	if len(opts.Users) > 0 {
		b.writePasswords()
	}
	if opts.ACL != "" {
		if err := os.WriteFile(b.path("acl"), []byte(opts.ACL), 0o600); err != nil {
			tb.Fatalf("mqtttest: %v", err)
		}
	}
	tb.Cleanup(func() {
		b.Stop()
		if tb.Failed() {
			tb.Logf("mosquitto log:\n%s", b.Log())
		}
	})
	var err error
	for range 5 { // a free port can be taken between the probe and mosquitto's bind
		b.port = freePort(tb)
		if opts.WebSockets {
			b.wsPort = freePort(tb)
		}
		b.writeConfig()
		if err = b.start(bin); err == nil {
			return b
		}
	}
	tb.Fatalf("mqtttest: %v", err)
	return nil
}

func binary(tb testing.TB) string {
	tb.Helper()
	return findBinary(tb, os.Getenv, func(p string) bool { _, err := os.Stat(p); return err == nil }, exec.LookPath)
}

// findBinary returns mosquitto's path: $LENSCAP_MOSQUITTO, /usr/sbin/mosquitto or mosquitto on
// PATH. When there is none it skips the test, or fails it when RequireEnv is set.
func findBinary(tb testing.TB, getenv func(string) string, exists func(string) bool, lookPath func(string) (string, error)) string {
	tb.Helper()
	if p := getenv("LENSCAP_MOSQUITTO"); p != "" {
		if !exists(p) {
			tb.Fatalf("mqtttest: LENSCAP_MOSQUITTO=%s: no such file", p)
		}
		return p
	}
	if exists("/usr/sbin/mosquitto") {
		return "/usr/sbin/mosquitto"
	}
	if p, err := lookPath("mosquitto"); err == nil {
		return p
	}
	if getenv(RequireEnv) != "" {
		tb.Fatalf("mqtttest: mosquitto is not installed (apt install mosquitto mosquitto-clients) and %s is set", RequireEnv)
	}
	tb.Skipf("mqtttest: mosquitto is not installed (apt install mosquitto mosquitto-clients); set %s=1 to fail instead of skipping", RequireEnv)
	return ""
}

func (b *Broker) path(name string) string { return filepath.Join(b.dir, name) }

func (b *Broker) writePasswords() {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		b.tb.Fatalf("mqtttest: mosquitto_passwd not found (it comes with mosquitto): %v", err)
	}
	users := make([]string, 0, len(b.opts.Users))
	for u := range b.opts.Users {
		users = append(users, u)
	}
	slices.Sort(users)
	for i, u := range users {
		args := []string{"-b", b.path("passwd"), u, b.opts.Users[u]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			b.tb.Fatalf("mqtttest: mosquitto_passwd %s: %v: %s", u, err, out)
		}
	}
}

func (b *Broker) writeConfig() {
	var c strings.Builder
	fmt.Fprintf(&c, "user root\n") // stay the test's user when run as root, to read the files here
	fmt.Fprintf(&c, "log_dest file %s\n", b.path("mosquitto.log"))
	fmt.Fprintf(&c, "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	fmt.Fprintf(&c, "connection_messages true\nlog_timestamp_format %%H:%%M:%%S\n")
	if b.opts.Persistence {
		fmt.Fprintf(&c, "persistence true\npersistence_location %s/\nautosave_interval 0\n", b.dir)
	} else {
		fmt.Fprintf(&c, "persistence false\n")
	}
	fmt.Fprintf(&c, "listener %d 127.0.0.1\n", b.port)
	if b.ca != nil {
		fmt.Fprintf(&c, "cafile %s\ncertfile %s\nkeyfile %s\n", b.ca.caFile, b.ca.serverCert, b.ca.serverKey)
		if b.opts.RequireCertificate {
			fmt.Fprintf(&c, "require_certificate true\nuse_identity_as_username true\n")
		}
	}
	if b.opts.WebSockets {
		// socket_domain ipv4: without it libwebsockets binds [::] whatever the address says.
		fmt.Fprintf(&c, "listener %d 127.0.0.1\nsocket_domain ipv4\nprotocol websockets\n", b.wsPort)
	}
	if b.opts.UsernameAsClientID {
		fmt.Fprintf(&c, "use_username_as_clientid true\n")
	}
	anonymous := len(b.opts.Users) == 0 && !b.opts.RequireCertificate
	fmt.Fprintf(&c, "allow_anonymous %t\n", anonymous)
	if len(b.opts.Users) > 0 {
		fmt.Fprintf(&c, "password_file %s\n", b.path("passwd"))
	}
	if b.opts.ACL != "" {
		fmt.Fprintf(&c, "acl_file %s\n", b.path("acl"))
	}
	for _, l := range b.opts.Extra {
		fmt.Fprintln(&c, l)
	}
	b.conf = b.path("mosquitto.conf")
	if err := os.WriteFile(b.conf, []byte(c.String()), 0o600); err != nil {
		b.tb.Fatalf("mqtttest: %v", err)
	}
}

func freePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mqtttest: no free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs mosquitto and waits until it accepts connections.
func (b *Broker) start(bin string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return errors.New("already running")
	}
	cmd := exec.Command(bin, "-c", b.conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mosquitto: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	b.cmd, b.done = cmd, done
	b.runs++
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Ours is up once it logged "running" (after its listener bound) as many times as it
		// was started, and accepts connections: another broker that took the port between
		// freePort and the bind would accept them too.
		if strings.Count(b.Log(), " running") >= b.runs && b.accepts() {
			return nil
		}
		select {
		case <-done:
			b.cmd, b.done = nil, nil
			b.runs-- // it never logged "running": the next start must not wait for one more
			return fmt.Errorf("mosquitto exited at start: %s%s", stderr.String(), b.logTail())
		case <-time.After(10 * time.Millisecond): // polling the port, with a deadline
		}
		if time.Now().After(deadline) {
			b.stopLocked()
			return fmt.Errorf("mosquitto did not accept connections on %s within 10s%s", b.Addr(), b.logTail())
		}
	}
}

// accepts reports whether every listener accepts connections.
func (b *Broker) accepts() bool {
	addrs := []string{b.Addr()}
	if b.wsPort != 0 {
		addrs = append(addrs, b.WebSocketAddr())
	}
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

func (b *Broker) logTail() string {
	l := b.Log()
	if len(l) > 2000 {
		l = l[len(l)-2000:]
	}
	if l == "" {
		return ""
	}
	return "\n" + l
}

// Stop stops mosquitto (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. It is
// idempotent.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked()
}

func (b *Broker) stopLocked() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd, b.done = nil, nil
}

// Kill kills mosquitto with SIGKILL, as a crash or power cut does, and waits for it to exit.
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.done
	b.cmd, b.done = nil, nil
}

// Restart stops mosquitto (if running) and starts it again on the same port with the same
// files, waiting until it accepts connections.
func (b *Broker) Restart() {
	b.tb.Helper()
	b.Stop()
	var err error
	for range 50 { // the port may be busy for a moment
		if err = b.start(binary(b.tb)); err == nil {
			return
		}
	}
	b.tb.Fatalf("mqtttest: restart: %v", err)
}

// Running reports whether mosquitto is running.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd != nil
}

// Port is the broker's port on 127.0.0.1.
func (b *Broker) Port() int { return b.port }

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// URL is the broker's URL (mqtts:// with TLS) with the given credentials; an empty user gives
// a URL without credentials.
func (b *Broker) URL(user, password string) string {
	u := url.URL{Scheme: "mqtt", Host: b.Addr()}
	if b.ca != nil {
		u.Scheme = "mqtts"
	}
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

// WebSocketAddr is the WebSocket listener's host:port; empty without Options.WebSockets.
func (b *Broker) WebSocketAddr() string {
	if b.wsPort == 0 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.wsPort))
}

// WebSocketURL is the URL of the WebSocket listener, ws://127.0.0.1:PORT/mqtt (mosquitto
// takes any path); empty without Options.WebSockets. Browsers give credentials in the MQTT
// CONNECT, never in this URL.
func (b *Broker) WebSocketURL() string {
	if b.wsPort == 0 {
		return ""
	}
	return "ws://" + b.WebSocketAddr() + "/mqtt"
}

// Log returns what mosquitto logged so far.
func (b *Broker) Log() string {
	l, _ := os.ReadFile(b.path("mosquitto.log"))
	return string(l)
}

// Dir is the broker's directory (configuration, passwords, ACL, certificates, log).
func (b *Broker) Dir() string { return b.dir }
