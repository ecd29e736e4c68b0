package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/auth"
	"github.com/lenscap/lenscap/cmd/internal/tlsconf"
	"github.com/lenscap/lenscap/rtc/rtctest"
)

// servedFingerprint is the fingerprint of the certificate a TLS server at url presents.
func servedFingerprint(t *testing.T, url string, pins ...string) (string, int) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsconf.PinnedConfig(pins...)}}
	res, err := c.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	return tlsconf.Fingerprint(res.TLS.PeerCertificates[0]), res.StatusCode
}

func TestHTTPSWithTheConfiguredCertificateReloadedOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _, err := tlsconf.Ensure(dir, "cam-1", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	first, err := tlsconf.ReadLeaf(certFile)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(d.url, "https://") || !strings.Contains(d.log.String(), tlsconf.SPKIHash(first)) {
		t.Fatalf("listening on %s; the log does not show the certificate's hash:\n%s", d.url, d.log)
	}
	if fp, code := servedFingerprint(t, d.url, tlsconf.SPKIHash(first)); fp != tlsconf.Fingerprint(first) || code != http.StatusOK {
		t.Fatalf("served %s (%d), want %s", fp, code, tlsconf.Fingerprint(first))
	}
	// Plain HTTP to the HTTPS port is refused.
	if res, err := http.Get("http" + strings.TrimPrefix(d.url, "https") + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered on the HTTPS port")
		}
	}
	// A new pair in the same files, then SIGHUP: served from the next handshake on.
	other := t.TempDir()
	c2, k2, _, err := tlsconf.Ensure(other, "cam-1", []string{"127.0.0.1", "10.0.0.7"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{c2: certFile, k2: keyFile} {
		b, err := os.ReadFile(src)
		if err != nil || os.WriteFile(dst, b, 0o600) != nil {
			t.Fatal(err)
		}
	}
	second, _ := tlsconf.ReadLeaf(filepath.Join(other, tlsconf.CertFileName))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fp, _ := servedFingerprint(t, d.url, tlsconf.SPKIHash(first), tlsconf.SPKIHash(second))
		if fp == tlsconf.Fingerprint(second) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %s after SIGHUP", fp)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestARealBoardServesHTTPSWithASelfSignedCertificate(t *testing.T) {
	dir := t.TempDir()
	cfg := mustLoad(t, testPlatform(), []string{"--board", "rpi4", "--id", "cam-1", "--listen", "127.0.0.1:0", "--state-dir", dir}, env(nil))
	r, err := newTLS(cfg, false, slog.New(slog.DiscardHandler))
	if err != nil || r == nil {
		t.Fatalf("real board: %v, %v", r, err)
	}
	leaf := r.Leaf()
	if leaf.PublicKeyAlgorithm.String() != "ECDSA" || leaf.VerifyHostname("cam-1") != nil || leaf.VerifyHostname("127.0.0.1") != nil {
		t.Errorf("certificate %s: names %v %v", leaf.PublicKeyAlgorithm, leaf.DNSNames, leaf.IPAddresses)
	}
	if !strings.Contains(tlsDoctorLine(cfg, false), r.Fingerprint()) {
		t.Errorf("doctor: %q, want the fingerprint %s", tlsDoctorLine(cfg, false), r.Fingerprint())
	}
	sim := mustLoad(t, testPlatform(), []string{"--board", "sim", "--state-dir", t.TempDir()}, env(nil))
	if r, err := newTLS(sim, true, slog.New(slog.DiscardHandler)); r != nil || err != nil {
		t.Errorf("sim without tls_cert: %v, %v; want plain HTTP", r, err)
	}
}

func TestAPionViewerWatchesOverWSSWithAViewToken(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _, err := tlsconf.Ensure(dir, "cam-1", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := tlsconf.ReadLeaf(certFile)
	k, pub := fleetKey(t)
	d := startDaemon(t, t.TempDir(), "--id", "cam-1", "--tls-cert", certFile, "--tls-key", keyFile, "--token-keys", pub)
	view := grant(t, k, "grandma", auth.RoleView, "cam-1", time.Hour, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pinned := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsconf.PinnedConfig(tlsconf.SPKIHash(leaf))}}
	wss := "wss" + strings.TrimPrefix(d.url, "https") + "/ws"
	if _, err := rtctest.Dial(ctx, wss, rtctest.Options{HTTPClient: pinned}); err == nil {
		t.Fatal("a viewer without a token was let in")
	}
	v, err := rtctest.Dial(ctx, wss, rtctest.Options{HTTPClient: pinned, Token: view})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, kind := range []string{"video", "audio"} {
		if err := v.WaitFor(ctx, kind, rtctest.Receiving(kind, time.Time{})); err != nil {
			t.Fatalf("%s over wss: %v", kind, err)
		}
	}
}
