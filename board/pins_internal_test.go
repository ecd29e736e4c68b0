package board

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPermissionErrorNamesTheGroupOrAUdevRule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gpiochip0")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := permissionError([]string{path})
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err %v", err)
	}
	group := groupOf(path)
	want := `usermod -aG ` + group
	if group == "" || group == "root" {
		want = `SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"`
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err %q does not say %q", err, want)
	}
}
