package auth

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lenscap/lenscap/device/atomicfile"
	"github.com/lenscap/lenscap/device/keyfile"
)

// Files in the camera's state directory, each mode 0600.
const (
	// KeyFile is the camera's Ed25519 signing key (PKCS #8 PEM).
	KeyFile = "auth.key"
	// OwnerFile is the owner credential: a control token without expiry, named "owner".
	OwnerFile = "owner.token"
	// OwnerName is the owner credential's name.
	OwnerName = "owner"
)

// PublicKeyPEM encodes a public key as PKIX PEM (what token_keys files hold).
func PublicKeyPEM(k ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ReadPrivateKey reads an Ed25519 private key from a PKCS #8 PEM file.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) { return keyfile.Read(path) }

// ReadPublicKeys reads the Ed25519 public keys of PEM files (token_keys), each holding one or
// more "PUBLIC KEY" blocks.
func ReadPublicKeys(paths []string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("auth: token key: %w", err)
		}
		n := 0
		for blk, rest := pem.Decode(b); blk != nil; blk, rest = pem.Decode(rest) {
			k, err := x509.ParsePKIXPublicKey(blk.Bytes)
			ek, ok := k.(ed25519.PublicKey)
			if blk.Type != "PUBLIC KEY" || err != nil || !ok {
				return nil, fmt.Errorf("auth: token key %s: want Ed25519 PUBLIC KEY blocks", p)
			}
			keys, n = append(keys, ek), n+1
		}
		if n == 0 {
			return nil, fmt.Errorf("auth: token key %s: no PEM public key in it", p)
		}
	}
	return keys, nil
}

// CameraKey returns the camera's signing key from its state directory; with create, one is
// generated when there is none yet (created then says so). An unreadable key is an error:
// replacing it would silently revoke every token the owner gave out.
func CameraKey(stateDir string, create bool) (key ed25519.PrivateKey, created bool, err error) {
	path := filepath.Join(stateDir, KeyFile)
	if !create {
		key, err = keyfile.Read(path)
		return key, false, err
	}
	return keyfile.LoadOrCreate(path)
}

// Owner returns the owner credential of a camera (a control token named "owner", for id and
// without expiry, signed by key), minting and saving it in the state directory the first time.
func Owner(stateDir, id string, key ed25519.PrivateKey, now time.Time) (string, error) {
	path := filepath.Join(stateDir, OwnerFile)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("auth: owner credential: %w", err)
	}
	tok, err := Mint(key, Grant{Name: OwnerName, Role: RoleControl, Audience: []string{id}}, now)
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(path, []byte(tok+"\n")); err != nil {
		return "", fmt.Errorf("auth: save the owner credential: %w", err)
	}
	return tok, nil
}
