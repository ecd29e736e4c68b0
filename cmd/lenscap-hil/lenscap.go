//go:build linux

package main

// The firmware under test: lenscap started as a child with a config file, its HTTP API, its log.

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/tlsconf"
)

// boardTemplate is the emulated board's profile for lenscap: a generic board described by config
// (issue 4), filled with what the test found. If lenscap refuses it (its config does not know
// these keys yet), the test falls back to --board sim and the board checks are skipped.
//
//go:embed board.yaml.tmpl
var boardTemplate string

// boardParams is what the template may use.
type boardParams struct {
	Camera, Encoder, CodedFormat string // /dev/videoN of vivid's capture node and vicodec's encoder
	Chip, ChipLabel              string // gpiochipN and its label
	Button, LEDPrivacy, LEDLive  string // line names
	CameraPower                  string // the camera's power line, empty: none
	Listen, StateDir, MQTT, ID   string
	Board                        string // generic or sim
	Latching                     bool
	WithCamera                   bool // the camera keys (issue 5)
	WithGPIO                     bool // the button and LEDs on gpio-sim
}

func renderBoard(p boardParams) (string, error) {
	t, err := template.New("board").Parse(boardTemplate)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		return "", err
	}
	return b.String(), nil
}

// firmware is a running lenscap.
type firmware struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:PORT, or https:// on a real board's profile
	log  *lockedBuffer
	done chan struct{}
	err  error // set when done is closed

	clientMu sync.Mutex
	https    *http.Client // made once: a TLS handshake per poll would load the emulated CPU
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tail is the last n lines of the log.
func (l *lockedBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var listeningRE = regexp.MustCompile(`listening on (https?://[0-9.:\[\]]+)`)

// startFirmware runs bin with args and waits until it logs the address it listens on.
func startFirmware(bin string, args []string, timeout time.Duration) (*firmware, error) {
	f := &firmware{log: &lockedBuffer{}, done: make(chan struct{})}
	f.cmd = exec.Command(bin, args...)
	f.cmd.Stdin = nil
	pr, pw := io.Pipe()
	f.cmd.Stderr = pw
	f.cmd.Stdout = f.log
	if err := f.cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(f.log, line)
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(f.log, pr)
	}()
	go func() {
		f.err = f.cmd.Wait()
		pw.Close()
		close(f.done)
	}()
	select {
	case a := <-addr:
		f.base = a
		return f, nil
	case <-f.done:
		return nil, fmt.Errorf("lenscap exited (%v): %s", f.err, lastError(f.log.tail(5)))
	case <-time.After(timeout):
		f.stop()
		return nil, fmt.Errorf("lenscap logged no address within %v: %s", timeout, f.log.tail(5))
	}
}

func lastError(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (f *firmware) pid() int { return f.cmd.Process.Pid }

// stop sends SIGTERM and waits up to 5 s, then kills.
func (f *firmware) stop() error {
	select {
	case <-f.done:
		return nil
	default:
	}
	_ = f.cmd.Process.Signal(os.Interrupt)
	select {
	case <-f.done:
		return nil
	case <-time.After(5 * time.Second):
		_ = f.cmd.Process.Kill()
		<-f.done
		return errors.New("lenscap did not stop within 5 s of SIGINT; killed")
	}
}

var plainClient = &http.Client{Timeout: 5 * time.Second}

// client is the HTTP client for the firmware: over HTTPS, one that trusts exactly the
// self-signed certificate the emulated board made in its state directory (pinned by its key).
func (f *firmware) client() (*http.Client, error) {
	if !strings.HasPrefix(f.base, "https://") {
		return plainClient, nil
	}
	f.clientMu.Lock()
	defer f.clientMu.Unlock()
	if f.https != nil {
		return f.https, nil
	}
	leaf, err := tlsconf.ReadLeaf(filepath.Join(stateDir, tlsconf.CertFileName))
	if err != nil {
		return nil, err
	}
	f.https = &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsconf.PinnedConfig(tlsconf.SPKIHash(leaf))}}
	return f.https, nil
}

func (f *firmware) get(ctx context.Context, path string) (int, []byte, error) {
	return f.do(ctx, http.MethodGet, path, nil)
}

func (f *firmware) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, f.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	// A real board makes its owner credential at first start: the test uses it, as the owner.
	if tok, err := os.ReadFile(filepath.Join(stateDir, "owner.token")); err == nil {
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	c, err := f.client()
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// apiState is the part of GET /api/state the test reads.
type apiState struct {
	Video   kindState `json:"video"`
	Audio   kindState `json:"audio"`
	Viewers int       `json:"viewers"`
	Board   string    `json:"board"`
	Seq     uint64    `json:"seq"`
}

type kindState struct {
	Private bool   `json:"private"`
	By      string `json:"by"`
	Live    *bool  `json:"live"`
	Error   string `json:"error"`
	// Powered and PowerError are the power interlock's (absent without one).
	Powered    *bool  `json:"powered"`
	PowerError string `json:"power_error"`
}

func (f *firmware) state(ctx context.Context) (apiState, error) {
	code, b, err := f.get(ctx, "/api/state")
	if err != nil {
		return apiState{}, err
	}
	if code != http.StatusOK {
		return apiState{}, fmt.Errorf("GET /api/state: %d %s", code, b)
	}
	var s apiState
	if err := json.Unmarshal(b, &s); err != nil {
		return apiState{}, fmt.Errorf("GET /api/state: %w: %s", err, b)
	}
	return s, nil
}

// waitState polls /api/state until ok(state), up to timeout; it answers how long it took.
func (f *firmware) waitState(ctx context.Context, timeout time.Duration, ok func(apiState) bool) (apiState, time.Duration, error) {
	start := time.Now()
	for {
		s, err := f.state(ctx)
		if err == nil && ok(s) {
			return s, time.Since(start), nil
		}
		if time.Since(start) > timeout {
			if err != nil {
				return s, 0, err
			}
			return s, 0, fmt.Errorf("state not reached within %v: video=%+v audio=%+v", timeout, s.Video, s.Audio)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitHolds polls /proc/<pid>/fd until the firmware holds (or no longer holds) a /dev/video*
// node; it answers how long it took.
func (f *firmware) waitHolds(want bool, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		held := holders(f.pid(), "/dev/video")
		if (len(held) > 0) == want {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("after %v lenscap holds %v", timeout, held)
		}
		time.Sleep(time.Millisecond)
	}
}

// metric reads one sample of /metrics, named with its labels as Prometheus prints them
// (lenscap_frames_captured_total{kind="video"}).
func (f *firmware) metric(ctx context.Context, sample string) (float64, error) {
	code, b, err := f.get(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %d", code)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			var x float64
			if _, err := fmt.Sscan(v, &x); err != nil {
				return 0, fmt.Errorf("%s: %q", sample, v)
			}
			return x, nil
		}
	}
	return 0, fmt.Errorf("no sample %s", sample)
}

// holders lists the open files of process pid whose paths start with prefix ("/dev/video").
func holders(pid int, prefix string) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		t, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(t, prefix) {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}
