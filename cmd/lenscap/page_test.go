package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readConfigJS reads a static copy's config.js back into its object.
func readConfigJS(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.js"))
	if err != nil {
		t.Fatal(err)
	}
	_, obj, ok := strings.Cut(string(b), "window.LENSCAP_CONFIG = ")
	obj, ok2 := strings.CutSuffix(strings.TrimSpace(obj), ";")
	if !ok || !ok2 {
		t.Fatalf("config.js is not window.LENSCAP_CONFIG = {...};\n%s", b)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(obj), &m); err != nil {
		t.Fatalf("config.js: %v\n%s", err, b)
	}
	return m
}

func TestPageWritesAStaticCopyThatSignalsThroughTheBroker(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "site") // made by page
	var out bytes.Buffer
	err := runPage([]string{"--out", dir, "--broker", "wss://broker.example:8081/mqtt", "--device", "cam-1", "--topic-prefix", "home/cams"},
		func(string) string { return "" }, &out)
	if err != nil {
		t.Fatal(err)
	}
	same := map[string][]byte{"favicon.svg": favicon, "vendor/mqtt.min.js": mqttClient, "vendor/mqtt.LICENSE.md": mqttClientLicense}
	for name, want := range same {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want the embedded %d bytes", name, len(got), err, len(want))
		}
	}
	index, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<script src="config.js"></script>`, `<script src="vendor/mqtt.min.js"></script>`, `href="favicon.svg"`,
		"connect-src wss://broker.example:8081;"} {
		if !strings.Contains(string(index), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	// Relative references only: the copy works from any directory and from file://.
	if strings.Contains(string(index), `src="/`) || strings.Contains(string(index), `href="/`) {
		t.Error("index.html refers to a file by an absolute path")
	}
	if cfg := readConfigJS(t, dir); len(cfg) != 3 || cfg["broker"] != "wss://broker.example:8081/mqtt" ||
		cfg["device"] != "cam-1" || cfg["prefix"] != "home/cams" {
		t.Errorf("config.js: %v", cfg)
	}
	if !strings.Contains(out.String(), filepath.Join(dir, "index.html")) {
		t.Errorf("page says %q, not where the page is", out.String())
	}
	// Again into the same directory: the files are replaced.
	if err := runPage([]string{"--out", dir}, func(string) string { return "" }, io.Discard); err != nil {
		t.Fatal(err)
	}
	if cfg := readConfigJS(t, dir); len(cfg) != 1 || cfg["prefix"] != "lenscap" {
		t.Errorf("config.js without --broker and --device: %v, want the prefix only (the page asks for the rest)", cfg)
	}
	if index, _ := os.ReadFile(filepath.Join(dir, "index.html")); !bytes.Contains(index, []byte("connect-src ws: wss:;")) {
		t.Error("without --broker the page cannot reach the broker it is given")
	}
}

func TestPageRefusesWhatABrowserCannotUseAndSecrets(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{},                  // no --out
		{"--out", dir, "x"}, // an argument
		{"--out", dir, "--broker", "mqtt://broker:1883"},
		{"--out", dir, "--broker", "tcp://broker:1883"},
		{"--out", dir, "--broker", "mqtts://broker:8883"},
		{"--out", dir, "--broker", "https://broker/mqtt"},
		{"--out", dir, "--broker", "ws://"},
		{"--out", dir, "--broker", "broker:9001"},
		{"--out", dir, "--broker", "ws://alice:secret@broker:9001/mqtt"},
		{"--out", dir, "--broker", "wss://broker:8081/mqtt?token=secret"},
		{"--out", dir, "--broker", "wss://broker:8081/mqtt#password=secret"},
		{"--out", dir, "--device", "all"},
		{"--out", dir, "--device", "cam/1"},
		{"--out", dir, "--topic-prefix", "a/+/b"},
		{"--out", dir, "--topic-prefix", "$SYS"},
		{"--out", dir, "--nonsense"},
	} {
		err := runPage(args, func(string) string { return "" }, io.Discard)
		if err == nil || errors.Is(err, flag.ErrHelp) {
			t.Errorf("page %q: %v, want an error", args, err)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("page %q: the error shows the secret: %v", args, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused commands wrote %d files", len(entries))
	}
}

func TestPageWritesNoSecret(t *testing.T) {
	secrets := map[string]string{
		"LENSCAP_TOKEN":           "static-token-0123456789",
		"LENSCAP_MQTT":            "mqtt://cam-1:broker-password@127.0.0.1:1883",
		"LENSCAP_TURN_SECRET":     "turn-shared-secret",
		"LENSCAP_LIVEKIT_TOKEN":   "livekit-join-token",
		"LENSCAP_TURN_CREDENTIAL": "turn-password",
		"LENSCAP_TOPIC_PREFIX":    "site-a",
	}
	dir := t.TempDir()
	err := runPage([]string{"--out", dir, "--broker", "ws://127.0.0.1:9001", "--device", "cam-1"},
		func(k string) string { return secrets[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := readConfigJS(t, dir); cfg["prefix"] != "site-a" {
		t.Errorf("prefix %v, want $LENSCAP_TOPIC_PREFIX", cfg["prefix"])
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		for k, s := range secrets {
			if k != "LENSCAP_TOPIC_PREFIX" && (bytes.Contains(b, []byte(s)) || bytes.Contains(b, []byte("broker-password"))) {
				t.Errorf("%s holds %s", p, k)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPageHelpListsItsFlags(t *testing.T) {
	err := run(context.Background(), []string{"page", "-h"}, func(string) string { return "" }, nil, io.Discard)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("page -h: %v, want help", err)
	}
	for _, want := range []string{"usage: lenscap page --out DIR", "-broker", "-device", "-topic-prefix", "-out", "#user="} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("page -h lacks %q", want)
		}
	}
	if !strings.Contains(daemonUsage("sim"), "\n  page ") {
		t.Error("lenscap -h does not list page")
	}
}

func TestStaticIndexNeedsItsMarkers(t *testing.T) {
	if _, err := staticIndex([]byte("<html>no marker</html>"), ""); err == nil {
		t.Error("a page without the markers was accepted")
	}
	if _, err := staticIndex(viewerPage, ""); err != nil {
		t.Errorf("the embedded page: %v", err)
	}
}

func TestVendoredMQTTClientIsThePinnedOne(t *testing.T) {
	sum := sha256.Sum256(mqttClient)
	if got := hex.EncodeToString(sum[:]); got != mqttClientSHA256 {
		t.Errorf("web/vendor/mqtt.min.js sha256 %s, want %s (web/vendor/README.md: update both)", got, mqttClientSHA256)
	}
	readme, err := os.ReadFile("web/vendor/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mqtt@" + mqttClientVersion, mqttClientSHA256} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("web/vendor/README.md does not say %s", want)
		}
	}
	if !bytes.Contains(mqttClientLicense, []byte("MIT License")) {
		t.Error("the vendored licence is not MQTT.js's MIT licence")
	}
}

func TestCameraServesTheMQTTClientWithoutACredential(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--token", "a-static-token-for-this-test")
	res, err := http.Get(d.url + mqttClientPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, mqttClient) ||
		!strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("GET %s: %d %s, %d bytes", mqttClientPath, res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
	// The camera's own page signals over its /ws: it loads neither config.js nor the client.
	code, page := d.do(t, "GET", "/", "", nil)
	if code != http.StatusOK || bytes.Contains(page, []byte(`<script src=`)) {
		t.Errorf("GET /: %d, loads the static copy's scripts", code)
	}
}
