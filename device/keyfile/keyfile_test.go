package keyfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestAKeyIsMadeOnceOwnerOnlyAndNeverReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	if _, err := Read(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing key: %v, want fs.ErrNotExist", err)
	}
	k, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first: created %v, %v", created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	k2, created, err := LoadOrCreate(path)
	if err != nil || created || !k.Equal(k2) {
		t.Fatalf("second: created %v, same %v, %v", created, k.Equal(k2), err)
	}
	if err := os.WriteFile(path, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(path); err == nil {
		t.Fatal("an unreadable key was replaced")
	}
	if b, _ := os.ReadFile(path); string(b) != "junk" {
		t.Error("the unreadable key file was changed")
	}
}
