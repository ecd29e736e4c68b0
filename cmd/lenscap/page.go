package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/lenscap/lenscap/cmd/internal/settings"
	"github.com/lenscap/lenscap/mqtt"
)

// mqttClient is the viewer page's MQTT client, MQTT.js's browser bundle (web/vendor/README.md
// says where it comes from and how to update it), and mqttClientLicense its licence.
var (
	//go:embed web/vendor/mqtt.min.js
	mqttClient []byte
	//go:embed web/vendor/mqtt.LICENSE.md
	mqttClientLicense []byte
)

// The vendored client's version and the sha256 of mqtt.min.js, as web/vendor/README.md says.
const (
	mqttClientVersion = "5.16.0"
	mqttClientSHA256  = "f3cbeae580d3010048938ee370f2db0c15d16e6f7fc147cb32ae5510e571b387"
)

// mqttClientPath is where the camera serves the client, without a credential like the page and
// its icon; a static copy refers to it relatively (vendor/mqtt.min.js).
const mqttClientPath = "/vendor/mqtt.min.js"

// serveMQTTClient serves the vendored MQTT client.
func serveMQTTClient(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=86400")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(mqttClient)
}

// staticMarker is where a static copy of the page loads its configuration and the MQTT
// client; the camera's own page has only the comment (it signals over its /ws).
var (
	staticMarker  = []byte(`<!-- lenscap page: the static copy's scripts -->`)
	staticScripts = `<meta http-equiv="Content-Security-Policy" content="%s">
<script src="config.js"></script>
<script src="vendor/mqtt.min.js"></script>`
	// The camera serves its icon at /favicon.ico; a static host serves a file by its name.
	iconLink       = []byte(`<link rel="icon" href="/favicon.ico" type="image/svg+xml">`)
	staticIconLink = []byte(`<link rel="icon" href="favicon.svg" type="image/svg+xml">`)
)

// staticCSP is a static copy's Content-Security-Policy (a meta element: a static host sets no
// header for it): the page's own files and inline script, and nothing to talk to but its
// broker (any WebSocket when the page asks for the broker); the MQTT client runs its timers in
// a worker made from a blob.
func staticCSP(broker string) string {
	connect := "ws: wss:"
	if u, err := url.Parse(broker); broker != "" && err == nil {
		connect = u.Scheme + "://" + u.Host
	}
	return "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; " +
		"img-src 'self'; connect-src " + connect + "; worker-src blob:; base-uri 'none'; form-action 'none'"
}

// pageConfig is a static copy's window.LENSCAP_CONFIG: where the page finds the camera. It
// holds no secret: the broker account's password and the camera's token are given to the page
// (the link's #fragment, or its prompt), never written here.
type pageConfig struct {
	Broker string `json:"broker,omitempty"` // ws:// or wss:// URL of the broker's WebSocket listener
	Device string `json:"device,omitempty"` // the camera's id
	Prefix string `json:"prefix"`           // the MQTT topic prefix
}

const pageUsage = `usage: lenscap page --out DIR [--broker URL] [--device ID] [--topic-prefix P]

Page writes a static copy of the viewer page into DIR (index.html, favicon.svg, config.js and
the MQTT client in vendor/), to put on any static web host or open from disk (file://). It
watches a camera from anywhere: it signals through the fleet's MQTT broker over MQTT over
WebSocket (mosquitto's "protocol websockets" listener), so neither side needs an inbound port.
The camera keeps serving its own page. config.js holds the broker, the camera's id and the
topic prefix, never a secret: the page asks for what it lacks (broker, camera, the broker
account and its password, the camera's token), or takes it from the link's #fragment, which no
request carries:

  index.html#user=alice&password=BROKER-PASSWORD&token=LENSCAP-TOKEN

(also broker=, device= and prefix=). The broker must let the account publish to
PREFIX/ID/session/ACCOUNT/+/viewer and read PREFIX/ID/session/ACCOUNT/+/camera (DESIGN.md);
with a control token, also publish to PREFIX/ID/cmd and read PREFIX/ID/ack for the switches.

`

// pageFlags are page's command line.
type pageFlags struct {
	out string
	pageConfig
}

// parsePageFlags parses and checks page's command line.
func parsePageFlags(args []string, getenv func(string) string) (pageFlags, error) {
	f := pageFlags{pageConfig: pageConfig{Prefix: mqtt.DefaultTopicPrefix}}
	if p := getenv("LENSCAP_TOPIC_PREFIX"); p != "" {
		f.Prefix = p
	}
	fs := flag.NewFlagSet("lenscap page", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.out, "out", "", "`directory` to write the page into, made if missing (required)")
	fs.StringVar(&f.Broker, "broker", "", "the broker's MQTT over WebSocket `URL`, ws:// or wss://, without credentials (default: the page asks)")
	fs.StringVar(&f.Device, "device", "", "the camera's `id` (default: the page asks)")
	fs.StringVar(&f.Prefix, "topic-prefix", f.Prefix, "MQTT topic `prefix` (default $LENSCAP_TOPIC_PREFIX, else lenscap)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, settings.Help(pageUsage, fs)
		}
		return f, fmt.Errorf("page: %w (lenscap page -h lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("page: unexpected argument %q (lenscap page -h)", fs.Arg(0))
	}
	if f.out == "" {
		return f, errors.New("page: --out is required (lenscap page -h)")
	}
	if f.Broker != "" {
		if err := checkPageBroker(f.Broker); err != nil {
			return f, fmt.Errorf("page: --broker: %w", err)
		}
	}
	if f.Device != "" {
		if err := mqtt.ValidID(f.Device); err != nil {
			return f, fmt.Errorf("page: --device %w", err)
		}
	}
	if err := mqtt.ValidTopicPrefix(f.Prefix); err != nil {
		return f, fmt.Errorf("page: --%w", err)
	}
	return f, nil
}

// checkPageBroker accepts the URL of a broker's WebSocket listener as a browser opens it:
// ws:// or wss:// with a host, and nothing secret (no user, password or query, which every
// copy of the page and every request would carry).
func checkPageBroker(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	// What errors show: never the user, password, query or fragment, which may be secrets.
	shown := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	switch {
	case u.Scheme != "ws" && u.Scheme != "wss":
		return fmt.Errorf("%q: want a ws:// or wss:// URL (the broker's WebSocket listener; a browser speaks no other)", shown)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q: no host", shown)
	case u.User != nil:
		return errors.New("credentials in the URL: the page asks for the broker account, or takes it from its link's #fragment")
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q with a query or fragment: every copy of the page would carry it, leave it out", shown)
	}
	return nil
}

// runPage is `lenscap page --out DIR ...`.
func runPage(args []string, getenv func(string) string, out io.Writer) error {
	f, err := parsePageFlags(args, getenv)
	if err != nil {
		return err
	}
	files, err := writeStaticPage(f.out, f.pageConfig)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "lenscap page: wrote %v in %s\n", files, f.out)
	fmt.Fprintf(out, "open %s (#user=ACCOUNT&password=...&token=... in the link, or the page asks)\n",
		filepath.Join(f.out, "index.html"))
	return nil
}

// writeStaticPage writes the static copy of the viewer page into dir and returns the files'
// names, relative to dir.
func writeStaticPage(dir string, cfg pageConfig) ([]string, error) {
	index, err := staticIndex(viewerPage, cfg.Broker)
	if err != nil {
		return nil, err
	}
	js, err := configJS(cfg)
	if err != nil {
		return nil, err
	}
	files := []struct {
		name string
		data []byte
	}{
		{"index.html", index},
		{"favicon.svg", favicon},
		{"config.js", js},
		{"vendor/mqtt.min.js", mqttClient},
		{"vendor/mqtt.LICENSE.md", mqttClientLicense},
	}
	var names []string
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("page: %w", err)
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return nil, fmt.Errorf("page: %w", err)
		}
		names = append(names, f.name)
	}
	return names, nil
}

// staticIndex is the page as a static copy serves it: its policy for broker (checked by
// checkPageBroker, or empty), config.js and the MQTT client, and its icon by the file's name.
func staticIndex(page []byte, broker string) ([]byte, error) {
	if bytes.Count(page, staticMarker) != 1 || bytes.Count(page, iconLink) != 1 {
		return nil, errors.New("page: the embedded viewer page lacks its static-copy marker or icon link")
	}
	page = bytes.Replace(page, staticMarker, fmt.Appendf(nil, staticScripts, staticCSP(broker)), 1)
	return bytes.Replace(page, iconLink, staticIconLink, 1), nil
}

// configJS is config.js: window.LENSCAP_CONFIG, a JSON object (JSON is JavaScript; Go's
// encoder escapes <, > and &, so no value can end the script).
func configJS(cfg pageConfig) ([]byte, error) {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("page: %w", err)
	}
	return fmt.Appendf(nil, "// Written by lenscap page: where the viewer page finds the camera. No secrets here.\n"+
		"window.LENSCAP_CONFIG = %s;\n", b), nil
}
