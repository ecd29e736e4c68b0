package main

import (
	"strings"
	"testing"
)

// The package's default /etc/lenscap/lenscap.yaml (scripts/package/lenscap.yaml) must load: an
// unknown or malformed key there would stop every freshly installed camera.
func TestPackagedDefaultConfigLoads(t *testing.T) {
	const path = "../../scripts/package/lenscap.yaml"
	cfg, err := loadConfig([]string{"--config", path}, func(string) string { return "" })
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if cfg.Board != "auto" || cfg.StateDir != "/var/lib/lenscap" || cfg.RemoteMayLift {
		t.Errorf("board %q, state_dir %q, remote_may_lift %v; want auto, /var/lib/lenscap, false",
			cfg.Board, cfg.StateDir, cfg.RemoteMayLift)
	}
	if !strings.HasSuffix(cfg.Listen, ":8080") {
		t.Errorf("listen %q, want port 8080", cfg.Listen)
	}
}
