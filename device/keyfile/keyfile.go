// Package keyfile keeps an Ed25519 signing key in a PKCS #8 PEM file of mode 0600, written
// durably (device/atomicfile). The camera's token key and its journal key are such files.
package keyfile

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/lenscap/lenscap/device/atomicfile"
)

// Encode is k as PKCS #8 PEM.
func Encode(k ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Read reads the key at path; a missing file is an error wrapping fs.ErrNotExist.
func Read(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("keyfile: %s: not a PKCS #8 PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("keyfile: %s: %T, not an Ed25519 key", path, k)
	}
	return ek, nil
}

// LoadOrCreate reads the key at path, or, when there is no file, makes one and saves it
// (created then says so). An unreadable key is an error and is never replaced: a new key
// would silently invalidate everything the old one signed.
func LoadOrCreate(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = Read(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if _, key, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, false, fmt.Errorf("keyfile: make key: %w", err)
	}
	b, err := Encode(key)
	if err != nil {
		return nil, false, err
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		return nil, false, fmt.Errorf("keyfile: save key: %w", err)
	}
	return key, true, nil
}
