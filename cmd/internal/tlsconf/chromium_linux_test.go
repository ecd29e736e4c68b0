package tlsconf

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chromiumPath is Debian's Chromium launcher, or $CHROMIUM (as in rtc/rtctest/chromiumtest).
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("LENSCAP_REQUIRE_CHROMIUM") == "" {
			t.Skipf("skipping: no Chromium: %v", err)
		}
		t.Fatalf("no Chromium: %v", err)
	}
	return path
}

// dumpDOM loads url in a headless Chromium with a fresh profile and extra flags, and returns
// the document as it is after the load event (--dump-dom) and what Chromium said.
func dumpDOM(t *testing.T, url string, extra ...string) (dom, stderr string) {
	t.Helper()
	path := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--user-data-dir=" + t.TempDir()}, extra...)
	cmd := exec.CommandContext(ctx, path, append(args, "--dump-dom", url)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// Chromium's helpers are in its process group: killed with it, and reaped before the
	// profile directory is removed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("chromium: %v\n%s", err, errOut.String())
	}
	return out.String(), errOut.String()
}

func TestTLSChromiumTrustsTheSelfSignedCertificateByItsSPKIHash(t *testing.T) {
	r := loadSelfSigned(t)
	site := newTestSite()
	url := serveHTTPS(t, r, site)
	dom, stderr := dumpDOM(t, url+"/", "--ignore-certificate-errors-spki-list="+r.SPKIHash())
	if !strings.Contains(dom, "ws: hello over wss") {
		t.Fatalf("the page did not talk over wss://; DOM:\n%s\nchromium:\n%s", dom, stderr)
	}
	if !strings.Contains(dom, "HTTP/2.0") {
		t.Errorf("the page was not served over HTTP/2; DOM:\n%s", dom)
	}
}

func TestTLSChromiumRefusesTheSelfSignedCertificateWithoutTheFlag(t *testing.T) {
	r := loadSelfSigned(t)
	site := newTestSite()
	url := serveHTTPS(t, r, site)
	other := loadSelfSigned(t) // trusting another key is not trusting this one
	for name, flags := range map[string][]string{
		"another key's hash": {"--ignore-certificate-errors-spki-list=" + other.SPKIHash()},
		"no flag":            nil,
	} {
		dom, stderr := dumpDOM(t, url+"/", flags...)
		if n := site.pages.Load(); n != 0 || strings.Contains(dom, "lenscap tls") {
			t.Errorf("%s: Chromium fetched the page %d times; DOM:\n%s", name, n, dom)
		}
		// Chromium 156 says "Page load failed: net::ERR_CERT_AUTHORITY_INVALID".
		if !strings.Contains(stderr, "ERR_CERT_AUTHORITY_INVALID") {
			t.Errorf("%s: Chromium did not refuse the certificate; it said:\n%s", name, stderr)
		}
	}
}
