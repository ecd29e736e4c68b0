// Package chromiumtest runs a headless Chromium for tests and drives one page
// of it over the DevTools protocol: navigate, evaluate JavaScript, take
// screenshots, read WebRTC statistics, and collect console messages and
// uncaught exceptions for failure logs.
//
// It is test-support code and is not part of the lenscap binary. A Browser is
// started by Start (or New, for a test) and must be closed; Close kills the
// Chromium process group, waits for it and removes its profile directory.
// Chromium runs with a fixed set of flags (headless, no sandbox, no GPU, no
// QUIC, no background networking, autoplay without a user gesture), a fresh
// --user-data-dir and --remote-debugging-port=0; on Linux the kernel kills it
// if the test process dies without Close.
//
// In a test:
//
//	b := chromiumtest.New(t) // skips when Chromium is not installed
//	if err := b.Navigate(ctx, srv.URL); err != nil { ... }
//	var title string
//	err := b.Eval(ctx, `document.title`, &title)
package chromiumtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned by Start when no Chromium executable is installed.
// Tests skip on it; see New.
var ErrNotFound = errors.New("chromiumtest: chromium not found")

// DefaultPath is where Debian installs Chromium's launcher.
const DefaultPath = "/usr/bin/chromium"

// defaultStartTimeout bounds Start unless Options.StartTimeout is set.
const defaultStartTimeout = 30 * time.Second

// Options configure Start. The zero value is ready to use.
type Options struct {
	// Path is the Chromium executable. Empty means $CHROMIUM, then DefaultPath.
	Path string
	// StartTimeout bounds launching Chromium and attaching to its page.
	// Zero means 30 seconds.
	StartTimeout time.Duration
}

// Browser is one headless Chromium process and a DevTools session attached to
// its single page. Its methods may be called from several goroutines.
type Browser struct {
	cmd    *exec.Cmd
	dir    string // the --user-data-dir, removed by Close
	output *tailBuffer
	exited chan struct{} // closed when the process has been waited for

	cdp        *cdpConn
	stopReader context.CancelFunc
	readerDone chan struct{}

	mu         sync.Mutex
	console    []ConsoleMessage
	exceptions []Exception

	closeOnce sync.Once
	closeErr  error
}

// Start launches Chromium headless with a fresh profile and attaches to its
// page. ctx bounds the start only: the browser lives until Close. When no
// Chromium is installed the error wraps ErrNotFound.
func Start(ctx context.Context, opts Options) (*Browser, error) {
	path, err := findChromium(opts.Path)
	if err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = defaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "lenscap-chromium-")
	if err != nil {
		return nil, fmt.Errorf("chromiumtest: profile dir: %w", err)
	}
	b := &Browser{
		dir:        dir,
		output:     &tailBuffer{max: 64 << 10},
		exited:     make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	b.cmd = exec.Command(path,
		"--headless",
		"--no-sandbox",
		"--disable-gpu",
		"--disable-quic",
		"--no-first-run",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--autoplay-policy=no-user-gesture-required",
		"--user-data-dir="+dir,
		"--remote-debugging-port=0",
		"about:blank",
	)
	b.cmd.Stdout = b.output
	b.cmd.Stderr = b.output
	b.cmd.WaitDelay = 2 * time.Second // a child holding the output pipe must not hang Wait
	setProcessGroup(b.cmd)
	if err := b.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("chromiumtest: start %s: %w", path, err)
	}
	go func() {
		_ = b.cmd.Wait() // the exit status of a killed browser says nothing useful
		close(b.exited)
	}()

	if err := b.attach(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func findChromium(path string) (string, error) {
	if path == "" {
		path = os.Getenv("CHROMIUM")
	}
	if path == "" {
		path = DefaultPath
	}
	found, err := exec.LookPath(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("%w at %s (install the Debian package chromium, or set $CHROMIUM to its path)", ErrNotFound, path)
		}
		return "", fmt.Errorf("chromiumtest: %s: %w", path, err)
	}
	return found, nil
}

// attach finds the DevTools port, connects to the page target and enables the
// domains whose events the Browser records.
func (b *Browser) attach(ctx context.Context) error {
	port, err := b.waitForPort(ctx)
	if err != nil {
		return err
	}
	wsURL, err := b.waitForPage(ctx, port)
	if err != nil {
		return err
	}
	cdp, err := dialCDP(ctx, wsURL, b.record)
	if err != nil {
		return err
	}
	b.cdp = cdp
	readerCtx, stop := context.WithCancel(context.Background())
	b.stopReader = stop
	go func() {
		defer close(b.readerDone)
		b.cdp.run(readerCtx)
	}()
	for _, method := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		if err := b.cdp.call(ctx, method, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// waitForPort polls <user-data-dir>/DevToolsActivePort, which Chromium writes
// once it listens: the port on the first line, the browser's path on the second.
func (b *Browser) waitForPort(ctx context.Context) (int, error) {
	name := filepath.Join(b.dir, "DevToolsActivePort")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if data, err := os.ReadFile(name); err == nil {
			first, _, complete := strings.Cut(string(data), "\n")
			if port, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && complete && port > 0 {
				return port, nil
			}
		}
		select {
		case <-tick.C:
		case <-b.exited:
			return 0, fmt.Errorf("chromiumtest: chromium exited before listening: %s", b.output.String())
		case <-ctx.Done():
			return 0, fmt.Errorf("chromiumtest: waiting for %s: %w; output: %s", name, ctx.Err(), b.output.String())
		}
	}
}

// waitForPage polls /json/list until the about:blank page target appears and
// returns its DevTools WebSocket URL.
func (b *Browser) waitForPage(ctx context.Context, port int) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	listURL := fmt.Sprintf("http://127.0.0.1:%d/json/list", port)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		wsURL, err := pageTarget(ctx, client, listURL)
		if err == nil {
			return wsURL, nil
		}
		lastErr = err
		select {
		case <-tick.C:
		case <-b.exited:
			return "", fmt.Errorf("chromiumtest: chromium exited: %s", b.output.String())
		case <-ctx.Done():
			return "", fmt.Errorf("chromiumtest: waiting for a page target: %w (last: %v)", ctx.Err(), lastErr)
		}
	}
}

func pageTarget(ctx context.Context, client *http.Client, listURL string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, listURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", listURL, resp.Status)
	}
	var targets []struct {
		Type                 string `json:"type"`
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		return "", fmt.Errorf("GET %s: %w", listURL, err)
	}
	for _, t := range targets {
		if t.Type == "page" && t.WebSocketDebuggerURL != "" {
			return t.WebSocketDebuggerURL, nil
		}
	}
	return "", fmt.Errorf("GET %s: no page target yet", listURL)
}

// Close ends the DevTools session, kills Chromium and every process it
// started, waits for them and removes the profile directory. It is
// idempotent and returns the first call's result.
func (b *Browser) Close() error {
	b.closeOnce.Do(func() {
		if b.cdp != nil {
			b.stopReader()
			b.cdp.close()
			<-b.readerDone
		}
		killProcessGroup(b.cmd)
		<-b.exited
		waitProcessGroupGone(b.cmd, 2*time.Second)
		if err := os.RemoveAll(b.dir); err != nil {
			b.closeErr = fmt.Errorf("chromiumtest: remove profile: %w", err)
		}
	})
	return b.closeErr
}

// Output returns the last 64 KiB Chromium wrote to stdout and stderr.
func (b *Browser) Output() string { return b.output.String() }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
