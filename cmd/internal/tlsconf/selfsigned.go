package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lenscap/lenscap/device/atomicfile"
)

// The files Ensure keeps in its directory.
const (
	CertFileName = "tls-cert.pem"
	KeyFileName  = "tls-key.pem"
)

const (
	// Validity is how long a generated certificate is valid.
	Validity = 10 * 365 * 24 * time.Hour
	// RenewBefore is how long before its end a generated certificate is replaced.
	RenewBefore = 30 * 24 * time.Hour
	// backdate starts a certificate's validity before its making, for clients whose clock is
	// behind the camera's.
	backdate = 24 * time.Hour
)

// Ensure returns the self-signed certificate and key files in dir, making them when needed
// (created is then true). The certificate (ECDSA P-256, random serial, digitalSignature,
// serverAuth, valid from now minus a day for Validity) names as SANs: id and id.local as DNS
// names (when id is not empty), localhost, and every entry of hosts (a host name or an IP
// address, without port; unspecified addresses such as 0.0.0.0 and empty entries are left out).
//
// An existing pair is reused unless the pair cannot be loaded (a file missing or malformed,
// or a key that is not the certificate's), the certificate ends within RenewBefore of now, or
// it lacks one of those names. It is not replaced when it is not yet valid: the camera's clock
// is then more likely wrong than the certificate. A replacement keeps the existing key when
// that is a readable ECDSA P-256 key, so that the SPKIHash (what browsers pin) stays the same.
// The key file has mode 0600, the certificate 0644; both are replaced atomically and durably,
// the key first.
func Ensure(dir, id string, hosts []string, now time.Time) (certFile, keyFile string, created bool, err error) {
	certFile, keyFile = filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName)
	names := sanNames(id, hosts)
	if cert, err := loadPair(certFile, keyFile); err == nil && reusable(cert.Leaf, names, now) {
		return certFile, keyFile, false, nil
	}
	key, reused := readKey(keyFile)
	if !reused {
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return "", "", false, fmt.Errorf("tls: generate key: %w", err)
		}
	}
	certPEM, keyPEM, err := selfSign(key, id, names, now)
	if err != nil {
		return "", "", false, err
	}
	if !reused {
		if err := atomicfile.WriteFile(keyFile, keyPEM); err != nil {
			return "", "", false, fmt.Errorf("tls: %w", err)
		}
	}
	if err := atomicfile.WriteFile(certFile, certPEM); err != nil {
		return "", "", false, fmt.Errorf("tls: %w", err)
	}
	if err := os.Chmod(certFile, 0o644); err != nil { // public: any client is sent it
		return "", "", false, fmt.Errorf("tls: %w", err)
	}
	return certFile, keyFile, true, nil
}

// names are a certificate's subject alternative names.
type names struct {
	dns []string // lower case
	ips []net.IP
}

// sanNames are the names Ensure puts in a certificate, without duplicates.
func sanNames(id string, hosts []string) names {
	var n names
	addDNS := func(h string) {
		if h = strings.ToLower(strings.TrimSuffix(h, ".")); h != "" && !slices.Contains(n.dns, h) {
			n.dns = append(n.dns, h)
		}
	}
	if id != "" {
		addDNS(id)
		addDNS(id + ".local")
	}
	addDNS("localhost")
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		ip := net.ParseIP(h)
		switch {
		case ip == nil:
			addDNS(h)
		case ip.IsUnspecified():
		case !slices.ContainsFunc(n.ips, ip.Equal):
			n.ips = append(n.ips, ip)
		}
	}
	return n
}

// reusable reports whether leaf names all of want and is not near its end.
func reusable(leaf *x509.Certificate, want names, now time.Time) bool {
	if now.After(leaf.NotAfter.Add(-RenewBefore)) {
		return false
	}
	for _, d := range want.dns {
		if !slices.ContainsFunc(leaf.DNSNames, func(s string) bool { return strings.EqualFold(s, d) }) {
			return false
		}
	}
	for _, ip := range want.ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// readKey reads an ECDSA P-256 key from a PEM file; ok is false when there is none.
func readKey(keyFile string) (key *ecdsa.PrivateKey, ok bool) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, false
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, false
	}
	var k any
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, false
	}
	key, ok = k.(*ecdsa.PrivateKey)
	if err != nil || !ok || key.Curve != elliptic.P256() {
		return nil, false
	}
	return key, true
}

// selfSign makes the certificate of key for names, and both in PEM.
func selfSign(key *ecdsa.PrivateKey, id string, n names, now time.Time) (certPEM, keyPEM []byte, err error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("tls: serial: %w", err)
	}
	cn := "lenscap"
	if id != "" {
		cn = id
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)), // positive
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"lenscap (self-signed)"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              n.dns,
		IPAddresses:           n.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: self-sign: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}

// InterfaceHosts are the addresses a camera is reached at, for Ensure: 127.0.0.1 and ::1, and
// every global unicast address of the machine's interfaces (private ranges included).
// Link-local addresses (169.254.0.0/16, fe80::/10) are left out: a URL cannot name their
// interface, and they come and go, which would replace the certificate each time.
func InterfaceHosts() ([]string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("tls: interface addresses: %w", err)
	}
	hosts := []string{"127.0.0.1", "::1"}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		if s := ipn.IP.String(); !slices.Contains(hosts, s) {
			hosts = append(hosts, s)
		}
	}
	return hosts, nil
}
