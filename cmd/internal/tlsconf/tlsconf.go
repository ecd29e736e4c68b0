// Package tlsconf is lenscap's HTTPS: the serving certificate, reloadable without a restart
// (Reloader, for SIGHUP), the server's tls.Config, a self-signed certificate made on the camera
// when the owner gives none (Ensure), and the two hashes by which a client trusts that
// certificate: the certificate's SHA-256 fingerprint ("SHA256 AB:CD:...", which lenscap doctor
// and the start log print, and which a browser shows) and the SHA-256 of its public key (base64,
// what Chromium's --ignore-certificate-errors-spki-list and PinnedConfig take). A regenerated
// self-signed certificate keeps its key whenever the key is still readable, so the public-key
// hash survives a change of address; the fingerprint does not.
//
// The standard library only.
package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
)

// Reloader holds the serving certificate read from a certificate file (PEM: the leaf, then any
// intermediates) and a key file (PEM). Its methods may be called from several goroutines.
type Reloader struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate] // Leaf is always set
}

// Load reads the pair; an unreadable file, a malformed one or a key that is not the
// certificate's is an error. The certificate's dates are not checked: Leaf tells them.
func Load(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again and serves the new pair from the next handshake on. When the
// new pair cannot be used (as in Load) the one in use is kept and the error says why.
func (r *Reloader) Reload() error {
	cert, err := loadPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.cur.Store(&cert)
	return nil
}

// loadPair reads a certificate and its key, with Leaf set.
func loadPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: load %s, %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil { // LoadX509KeyPair sets it unless GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("tls: %s: %w", certFile, err)
		}
	}
	return cert, nil
}

// GetCertificate returns the pair in use, for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// Leaf is the certificate in use (its names and dates).
func (r *Reloader) Leaf() *x509.Certificate { return r.cur.Load().Leaf }

// Fingerprint is the certificate in use's SHA-256 fingerprint, "SHA256 AB:CD:..." (see
// Fingerprint).
func (r *Reloader) Fingerprint() string { return Fingerprint(r.Leaf()) }

// SPKIHash is the base64 SHA-256 of the public key in use (see SPKIHash).
func (r *Reloader) SPKIHash() string { return SPKIHash(r.Leaf()) }

// Config is the HTTPS server's configuration: r's certificate, TLS 1.2 at least, Go's default
// cipher suites and curves, and ALPN h2 then http/1.1. For http.Server, set it as TLSConfig and
// call ServeTLS(ln, "", ""), or Serve(tls.NewListener(ln, Config(r))).
func Config(r *Reloader) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// Fingerprint is cert's SHA-256 fingerprint as lenscap prints it: "SHA256 " and the 32 bytes of
// the hash of the DER certificate in upper-case hex, separated by colons (as browsers and
// openssl x509 -fingerprint -sha256 show it).
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "SHA256 " + colonHex(sum[:])
}

func colonHex(b []byte) string {
	const digits = "0123456789ABCDEF"
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&0xf])
	}
	return sb.String()
}

// SPKIHash is the standard base64 of the SHA-256 of cert's SubjectPublicKeyInfo: the value of
// Chromium's --ignore-certificate-errors-spki-list and of HPKP-style pins.
func SPKIHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// ReadLeaf reads the first certificate of a PEM file, for lenscap doctor (which needs no key).
func ReadLeaf(certFile string) (*x509.Certificate, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			return nil, fmt.Errorf("tls: %s: no PEM certificate", certFile)
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("tls: %s: %w", certFile, err)
			}
			return cert, nil
		}
	}
}

// ErrNotPinned is the handshake error of a PinnedConfig client when the server's public key is
// none of the pinned ones.
var ErrNotPinned = errors.New("tls: the server's public key is not the pinned one")

// PinnedConfig is a client's configuration that trusts a server by the SPKIHash of its leaf
// certificate alone, as Chromium's --ignore-certificate-errors-spki-list does: names, dates
// and issuer are not checked. For clients of a camera with a self-signed certificate.
func PinnedConfig(spkiHashes ...string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // VerifyConnection checks the pin instead
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrNotPinned
			}
			got := SPKIHash(cs.PeerCertificates[0])
			for _, h := range spkiHashes {
				if h == got {
					return nil
				}
			}
			return fmt.Errorf("%w (it is %s)", ErrNotPinned, got)
		},
	}
}
