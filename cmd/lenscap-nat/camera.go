//go:build linux

package main

// The camera: the real lenscap binary on the simulated board in the home namespace, its
// broker account on the public mosquitto, coturn as its ICE servers (TURN REST secret), its
// HTTPS API on the home address only.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

const cameraPort = 8443

// camera is the running daemon and what it takes to talk to it.
type camera struct {
	bin, config, stateDir string
	owner, viewToken      string // control (the owner credential) and view tokens
	signalKey             string // the YAML key that turns MQTT signalling on; "" when lenscap has none
	p                     *proc
	api                   *http.Client // dials from the home namespace
}

// signallingKey is the daemon's setting for MQTT signalling, mqtt_signalling, when `lenscap -h`
// lists its flag; "" when this lenscap has none.
func signallingKey(bin string) string {
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	if !regexp.MustCompile(`(?m)^\s+-mqtt-signalling\s`).Match(out) {
		return ""
	}
	return "mqtt_signalling"
}

// writeCameraConfig writes the daemon's YAML file.
func writeCameraConfig(c *camera, s secrets) error {
	lines := []string{
		"board: sim",
		fmt.Sprintf("listen: %s:%d", cameraIP, cameraPort),
		"state_dir: " + c.stateDir,
		"id: " + cameraID,
		fmt.Sprintf("mqtt: mqtt://%s:%s@%s:%d", cameraID, s.camera, publicIP, mqttPort),
		"mqtt_listen: \"off\"",
		fmt.Sprintf("ice_servers: [\"stun:%s:%d\", \"turn:%s:%d?transport=udp\"]", publicIP, turnPort, publicIP, turnPort),
		"turn_secret: " + s.turn,
		"turn_ttl: 1h",
		"capture_linger: 1s",
		"max_viewers_per_credential: 16", // every viewer of the rig holds the same token
	}
	if c.signalKey != "" {
		lines = append(lines, c.signalKey+": true",
			fmt.Sprintf("mqtt_signal_url: mqtt://%s:%s@%s:%d", signalUser, s.signal, publicIP, mqttPort),
			// Every viewer of the rig uses one broker account; the benchmarks start 6 at once.
			"rate_signal: 200/s,400")
	}
	return os.WriteFile(c.config, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

// newCamera writes the configuration and mints the tokens (the owner credential must exist
// before a listener beyond loopback starts).
func newCamera(ctx context.Context, bin, dir, home string, s secrets) (*camera, error) {
	c := &camera{bin: bin, config: filepath.Join(dir, "lenscap.yaml"), stateDir: filepath.Join(dir, "state"),
		signalKey: signallingKey(bin)}
	if err := os.MkdirAll(c.stateDir, 0o700); err != nil {
		return nil, err
	}
	if err := writeCameraConfig(c, s); err != nil {
		return nil, err
	}
	var err error
	if c.owner, err = c.command(ctx, "token", "show", "--config", c.config); err != nil {
		return nil, err
	}
	if c.viewToken, err = c.command(ctx, "token", "create", "--config", c.config, "--name", viewerUser, "--role", "view", "--ttl", "1h"); err != nil {
		return nil, err
	}
	c.api = nsClient(home)
	return c, nil
}

// command runs a lenscap command and returns what it printed, trimmed.
func (c *camera) command(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("lenscap %s: %v: %s", args[0], err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// start runs the daemon in ns and waits for /healthz.
func (c *camera) start(ns string) error {
	p, err := startProc("lenscap", execIn(ns, c.bin, "--config", c.config), nil)
	if err != nil {
		return err
	}
	c.p = p
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if p.exited() {
			return fmt.Errorf("lenscap exited: %v: %s", p.err, p.out.last(20))
		}
		if _, err := c.get(context.Background(), "/healthz"); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("lenscap: /healthz not ready after 15 s: %v: %s", err, p.out.last(20))
		}
	}
}

func (c *camera) url(path string) string {
	return fmt.Sprintf("https://%s:%d%s", cameraIP, cameraPort, path)
}

// do makes one request to the camera's API with the owner credential.
func (c *camera) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.owner)
	resp, err := c.api.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err == nil && resp.StatusCode/100 != 2 {
		err = fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return b, err
}

func (c *camera) get(ctx context.Context, path string) ([]byte, error) {
	return c.do(ctx, http.MethodGet, path, nil)
}

// state is the part of /api/state the rig reads.
type apiState struct {
	Video struct {
		Private bool   `json:"private"`
		By      string `json:"by"`
		Live    bool   `json:"live"`
	} `json:"video"`
	Viewers int `json:"viewers"`
}

// press presses the simulated button (POST /api/button from the home namespace) and returns
// the times the request was sent and answered: the cut's trigger lies between them.
func (c *camera) press(ctx context.Context) (sent, answered time.Time, st apiState, err error) {
	// A request first, so that the press goes out on a connection already made (TCP and TLS
	// handshakes would come between the send and the trigger).
	if _, err := c.get(ctx, "/healthz"); err != nil {
		return sent, answered, st, err
	}
	sent = time.Now()
	b, err := c.do(ctx, http.MethodPost, "/api/button", nil)
	answered = time.Now()
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	return sent, answered, st, err
}

func (c *camera) state(ctx context.Context) (apiState, error) {
	var st apiState
	b, err := c.get(ctx, "/api/state")
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	return st, err
}

// cpu is the daemon's CPU time so far (utime + stime of /proc/PID/stat).
func (c *camera) cpu() (time.Duration, error) { return procCPU(c.p.pid()) }

// nsClient is an HTTP client whose connections are made inside ns; the camera's certificate is
// its own self-signed one, which the rig does not pin.
func nsClient(ns string) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ctx, ns, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the rig's own camera
		MaxIdleConns:    2,
		IdleConnTimeout: 30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// lastJournal is the time of the journal's last entry of event (GET /api/journal).
func (c *camera) lastJournal(ctx context.Context, event string) (time.Time, error) {
	b, err := c.get(ctx, "/api/journal?since=0")
	if err != nil {
		return time.Time{}, err
	}
	var page struct {
		Entries []struct {
			Event string    `json:"event"`
			Time  time.Time `json:"time"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		return time.Time{}, fmt.Errorf("/api/journal: %w", err)
	}
	for i := len(page.Entries) - 1; i >= 0; i-- {
		if page.Entries[i].Event == event {
			return page.Entries[i].Time, nil
		}
	}
	return time.Time{}, fmt.Errorf("/api/journal: no %s entry", event)
}
