package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// pairIn makes a self-signed pair in a new directory and returns its files.
func pairIn(t *testing.T, id string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile, _, err := Ensure(t.TempDir(), id, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// served is the leaf r hands to a handshake.
func served(t *testing.T, r *Reloader) string {
	t.Helper()
	c, err := Config(r).GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return SPKIHash(c.Leaf)
}

func TestReloadServesANewPair(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	c1, k1 := pairIn(t, "one")
	copyFile(t, c1, cert)
	copyFile(t, k1, key)
	r, err := Load(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	first := r.SPKIHash()
	if served(t, r) != first {
		t.Fatal("GetCertificate does not hand out the loaded pair")
	}
	c2, k2 := pairIn(t, "two")
	copyFile(t, c2, cert)
	copyFile(t, k2, key)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if r.SPKIHash() == first || served(t, r) != r.SPKIHash() || r.Leaf().Subject.CommonName != "two" {
		t.Error("the new pair is not served after Reload")
	}
}

func TestReloadKeepsThePairInUseWhenTheNewOneIsBad(t *testing.T) {
	for _, c := range []struct{ name, cert, key string }{
		{"garbage certificate", "garbage", ""},
		{"missing key", "", "missing"},
		{"key of another certificate", "", "other"},
		{"certificate of another key", "other", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
			c1, k1 := pairIn(t, "one")
			copyFile(t, c1, cert)
			copyFile(t, k1, key)
			r, err := Load(cert, key)
			if err != nil {
				t.Fatal(err)
			}
			before := r.Fingerprint()
			c2, k2 := pairIn(t, "two")
			spoil(t, cert, c.cert, c2)
			spoil(t, key, c.key, k2)
			if err := r.Reload(); err == nil {
				t.Fatal("no error")
			} else if !strings.Contains(err.Error(), cert) {
				t.Errorf("error %q does not name the files", err)
			}
			if r.Fingerprint() != before || served(t, r) != r.SPKIHash() {
				t.Error("the pair in use changed")
			}
		})
	}
}

// spoil replaces path as how says: "garbage", "missing", "other" (copies other), "" (leaves it).
func spoil(t *testing.T, path, how, other string) {
	t.Helper()
	switch how {
	case "garbage":
		os.WriteFile(path, []byte("-----BEGIN CERTIFICATE-----\nnope\n"), 0o600)
	case "missing":
		os.Remove(path)
	case "other":
		copyFile(t, other, path)
	}
}

func TestLoadFailsOnAMismatchedPair(t *testing.T) {
	c1, _ := pairIn(t, "one")
	_, k2 := pairIn(t, "two")
	if _, err := Load(c1, k2); err == nil {
		t.Error("no error")
	}
	if _, err := Load(c1, filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("no error for a missing key")
	}
}

func TestFingerprintAndSPKIHashAreTheHashesClientsShow(t *testing.T) {
	cert, key := pairIn(t, "cam")
	r, err := Load(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	fp := r.Fingerprint()
	if !regexp.MustCompile(`^SHA256 [0-9A-F]{2}(:[0-9A-F]{2}){31}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q is not SHA256 AB:CD:...", fp)
	}
	sum := sha256.Sum256(r.Leaf().Raw)
	if got := strings.ReplaceAll(strings.TrimPrefix(fp, "SHA256 "), ":", ""); got != strings.ToUpper(hex.EncodeToString(sum[:])) {
		t.Errorf("fingerprint %s, want the SHA-256 of the DER certificate", fp)
	}
	spki := sha256.Sum256(r.Leaf().RawSubjectPublicKeyInfo)
	if r.SPKIHash() != base64.StdEncoding.EncodeToString(spki[:]) {
		t.Errorf("SPKI hash %s, want base64 of the SHA-256 of the public key", r.SPKIHash())
	}
	leaf, err := ReadLeaf(cert)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(leaf) != fp {
		t.Error("ReadLeaf read another certificate")
	}
	if _, err := ReadLeaf(key); err == nil {
		t.Error("ReadLeaf of a key file: no error")
	}
}

func TestConfigIsTLS12AtLeastWithH2(t *testing.T) {
	cert, key := pairIn(t, "cam")
	r, err := Load(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	c := Config(r)
	if c.MinVersion != tls.VersionTLS12 || !slices.Equal(c.NextProtos, []string{"h2", "http/1.1"}) {
		t.Errorf("min version %x, ALPN %q", c.MinVersion, c.NextProtos)
	}
	if len(c.Certificates) != 0 || c.CipherSuites != nil {
		t.Error("want GetCertificate only (tls ignores it for clients without SNI when Certificates is set) and Go's cipher suites")
	}
}
