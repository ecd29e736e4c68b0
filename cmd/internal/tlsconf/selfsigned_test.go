package tlsconf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// ensure calls Ensure and fails t on an error.
func ensure(t *testing.T, dir, id string, hosts []string, now time.Time) (created bool) {
	t.Helper()
	certFile, keyFile, created, err := Ensure(dir, id, hosts, now)
	if err != nil {
		t.Fatal(err)
	}
	if certFile != filepath.Join(dir, CertFileName) || keyFile != filepath.Join(dir, KeyFileName) {
		t.Fatalf("files %s, %s; want %s and %s in %s", certFile, keyFile, CertFileName, KeyFileName, dir)
	}
	return created
}

func leafIn(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	r, err := Load(filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	return r.Leaf()
}

func TestEnsureMakesASelfSignedP256ServerCertificateWithTheCamerasNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if !ensure(t, dir, "Cam-Hall", []string{"192.168.1.20", "0.0.0.0", "cam.example.org", "[fe80::1]", "", "192.168.1.20"}, t0) {
		t.Fatal("created false in an empty directory")
	}
	leaf := leafIn(t, dir)
	wantDNS := []string{"cam-hall", "cam-hall.local", "localhost", "cam.example.org"}
	if !slices.Equal(leaf.DNSNames, wantDNS) {
		t.Errorf("DNS names %q, want %q", leaf.DNSNames, wantDNS)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"192.168.1.20", "fe80::1"}; !slices.Equal(ips, want) {
		t.Errorf("IP addresses %q, want %q (no unspecified address, no duplicate)", ips, want)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || leaf.IsCA {
		t.Errorf("key usage %v, extended %v, CA %v; want digitalSignature, serverAuth, not a CA", leaf.KeyUsage, leaf.ExtKeyUsage, leaf.IsCA)
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if !leaf.NotBefore.Before(t0) || !leaf.NotAfter.Equal(t0.Add(Validity)) {
		t.Errorf("valid %v to %v, want from before %v for %v", leaf.NotBefore, leaf.NotAfter, t0, Validity)
	}
	if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %v: want a large random positive number", leaf.SerialNumber)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "cam-hall.local", Roots: pool(leaf), CurrentTime: t0}); err != nil {
		t.Errorf("a client trusting the certificate rejects it for cam-hall.local: %v", err)
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func TestEnsureWritesTheKeyOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	ensure(t, dir, "cam", nil, t0)
	for name, want := range map[string]os.FileMode{KeyFileName: 0o600, CertFileName: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d entries in the directory, want the two files only", len(ents))
	}
}

func TestEnsureReusesAValidCertificate(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"10.0.0.7", "cam.example.org"}
	ensure(t, dir, "cam", hosts, t0)
	before := readFiles(t, dir)
	// A subset of the names, later, and a clock behind the certificate's start: all reuse it.
	for _, c := range []struct {
		hosts []string
		now   time.Time
	}{{hosts, t0.Add(time.Hour)}, {hosts[:1], t0.Add(365 * 24 * time.Hour)}, {nil, t0.Add(-30 * 24 * time.Hour)}} {
		if ensure(t, dir, "cam", c.hosts, c.now) {
			t.Errorf("hosts %q at %v: replaced a valid certificate", c.hosts, c.now)
		}
	}
	if after := readFiles(t, dir); !bytes.Equal(before, after) {
		t.Error("the files changed")
	}
}

func readFiles(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	for _, name := range []string{CertFileName, KeyFileName} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestEnsureRenewsANearlyExpiredCertificateWithTheSameKey(t *testing.T) {
	dir := t.TempDir()
	ensure(t, dir, "cam", nil, t0)
	old := leafIn(t, dir)
	if ensure(t, dir, "cam", nil, old.NotAfter.Add(-RenewBefore-time.Minute)) {
		t.Error("renewed long before the end")
	}
	later := old.NotAfter.Add(-RenewBefore + time.Minute)
	if !ensure(t, dir, "cam", nil, later) {
		t.Fatal("kept a certificate ending within RenewBefore")
	}
	renewed := leafIn(t, dir)
	if !renewed.NotAfter.Equal(later.Add(Validity)) {
		t.Errorf("renewed certificate ends %v, want %v", renewed.NotAfter, later.Add(Validity))
	}
	if SPKIHash(renewed) != SPKIHash(old) || Fingerprint(renewed) == Fingerprint(old) {
		t.Error("want a new certificate of the same key")
	}
}

func TestEnsureReplacesACertificateLackingANewAddress(t *testing.T) {
	dir := t.TempDir()
	ensure(t, dir, "cam", []string{"10.0.0.7"}, t0)
	old := leafIn(t, dir)
	for _, hosts := range [][]string{{"10.0.0.8"}, {"10.0.0.7", "cam.example.org"}} {
		if !ensure(t, dir, "cam", hosts, t0) {
			t.Errorf("hosts %q: kept a certificate lacking one", hosts)
		}
	}
	if ensure(t, dir, "other", []string{"10.0.0.7", "cam.example.org"}, t0) == false {
		t.Error("a new id: kept the certificate of the old one")
	}
	leaf := leafIn(t, dir)
	if err := leaf.VerifyHostname("other.local"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("10.0.0.8"); err == nil {
		t.Error("the replacement still names 10.0.0.8: want only the names asked for")
	}
	if SPKIHash(leaf) != SPKIHash(old) {
		t.Error("the key changed: browsers pinning it would have to trust the camera again")
	}
}

func TestEnsureReplacesAnUnusablePair(t *testing.T) {
	for _, c := range []struct {
		name, file, content string
		sameKey             bool
	}{
		{"garbage certificate", CertFileName, "not PEM", true},
		{"missing certificate", CertFileName, "", true},
		{"garbage key", KeyFileName, "not PEM", false},
		{"another key", KeyFileName, "other", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ensure(t, dir, "cam", nil, t0)
			oldKey := SPKIHash(leafIn(t, dir))
			path := filepath.Join(dir, c.file)
			switch c.content {
			case "":
				os.Remove(path)
			case "other": // a readable key of another certificate: kept, with a new certificate
				other := t.TempDir()
				ensure(t, other, "cam", nil, t0)
				oldKey = SPKIHash(leafIn(t, other))
				copyFile(t, filepath.Join(other, KeyFileName), path)
			default:
				os.WriteFile(path, []byte(c.content), 0o600)
			}
			if !ensure(t, dir, "cam", nil, t0) {
				t.Fatal("created false")
			}
			if same := SPKIHash(leafIn(t, dir)) == oldKey; same != c.sameKey {
				t.Errorf("kept the key %v, want %v", same, c.sameKey)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureFailsWhenItCannotWrite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Ensure(filepath.Join(file, "dir"), "cam", nil, t0); err == nil {
		t.Error("no error for a directory under a file")
	}
}

func TestInterfaceHostsHasLoopbackAndNoLinkLocal(t *testing.T) {
	hosts, err := InterfaceHosts()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(hosts, "127.0.0.1") || !slices.Contains(hosts, "::1") {
		t.Errorf("%q lacks loopback", hosts)
	}
	for _, h := range hosts {
		ip := net.ParseIP(h)
		if ip == nil || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
			t.Errorf("%q: %q is not a usable unicast address", hosts, h)
		}
	}
	t.Logf("interface hosts: %q", hosts)
}
