package mqtttest

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
	"time"
)

// testCA is a certificate authority made for one broker: it signs the broker's certificate
// (for 127.0.0.1 and localhost) and the clients'.
type testCA struct {
	dir                   string
	cert                  *x509.Certificate
	key                   *ecdsa.PrivateKey
	caFile                string
	serverCert, serverKey string
	serial                int64
}

func newTestCA(dir string) (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "lenscap test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &testCA{dir: dir, cert: cert, key: key, caFile: filepath.Join(dir, "ca.pem"), serial: 1}
	if err := writePEM(ca.caFile, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	ca.serverCert, ca.serverKey, err = ca.issue("broker", true)
	if err != nil {
		return nil, err
	}
	return ca, nil
}

// issue makes a certificate for cn (a server one for 127.0.0.1 and localhost, or a client
// one) and returns its files.
func (ca *testCA) issue(cn string, server bool) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return "", "", err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile = filepath.Join(ca.dir, fmt.Sprintf("%s-%d.pem", cn, ca.serial))
	keyFile = filepath.Join(ca.dir, fmt.Sprintf("%s-%d-key.pem", cn, ca.serial))
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return "", "", err
	}
	if err := writePEM(keyFile, "EC PRIVATE KEY", kb); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// CAFile is the PEM file of the CA that signed the broker's certificate ("" without TLS).
func (b *Broker) CAFile() string {
	if b.ca == nil {
		return ""
	}
	return b.ca.caFile
}

// ClientCert issues a client certificate whose CN is user (the user name of a broker with
// RequireCertificate) and returns its PEM files. The broker must have been started with TLS.
func (b *Broker) ClientCert(user string) (certFile, keyFile string) {
	b.tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ca == nil {
		b.tb.Fatal("mqtttest: ClientCert needs a broker started with TLS")
	}
	certFile, keyFile, err := b.ca.issue(user, false)
	if err != nil {
		b.tb.Fatalf("mqtttest: client certificate: %v", err)
	}
	return certFile, keyFile
}
