package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/settings"
)

// testPlatform is a non-root amd64 Linux host named cam-1.example.org.
func testPlatform() platform {
	return platform{
		goos: "linux", goarch: "amd64", root: false,
		hostname: func() (string, error) { return "cam-1.example.org", nil },
		homeDir:  func() (string, error) { return "", errors.New("no home") },
	}
}

// env is a getenv over a map; HOME is set unless the map says otherwise.
func env(m map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		if k == "HOME" {
			return "/home/u"
		}
		return ""
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, p platform, args []string, getenv func(string) string) Config {
	t.Helper()
	c, err := loadConfigOn(p, args, getenv)
	if err != nil {
		t.Fatalf("loadConfig(%q): %v", args, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	got := mustLoad(t, testPlatform(), nil, env(nil))
	want := Config{
		Board:       "sim",
		Listen:      "127.0.0.1:8080",
		MQTTListen:  "127.0.0.1:1883",
		StateDir:    "/home/u/.local/state/lenscap",
		ID:          "cam-1",
		Groups:      []string{},
		TopicPrefix: "lenscap",
		ButtonKinds: []string{"video", "audio"},
		ButtonMode:  "momentary", ButtonActive: "low", ButtonPull: "up", ButtonDebounce: 30 * time.Millisecond,
		PrivacyLEDActive: "high", LiveLEDActive: "high",
		CameraPowerActive: "high", MicPowerActive: "high", PowerTimeout: 5 * time.Second,
		ICE:        ICE{Servers: []string{}, TTL: 24 * time.Hour, Policy: "all"},
		AudioCodec: "opus",
		LogLevel:   "info",
		LogFormat:  "text",
		TokenKeys:  []string{}, TokenRevoked: []string{},
		MaxViewers: 16, MaxViewersPerCredential: 4, WSPing: 15 * time.Second, WSIdle: 45 * time.Second, MaxSDPBytes: 32768,
		RateWHEP: "1/s,10", RateWS: "1/s,10", RateAPI: "10/s,50", RateSignal: "20/s,40", BodyTimeout: 10 * time.Second,
		MaxConns: 256, MaxConnsPerClient: 32, Capture: "on_demand", CaptureLinger: 10 * time.Second,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestDefaultBoardIsAutoOnLinuxArm64Only(t *testing.T) {
	for _, tc := range []struct{ goos, goarch, want string }{
		{"linux", "arm64", "auto"},
		{"linux", "amd64", "sim"},
		{"darwin", "arm64", "sim"},
		{"linux", "arm", "sim"},
	} {
		p := testPlatform()
		p.goos, p.goarch = tc.goos, tc.goarch
		if got := mustLoad(t, p, nil, env(nil)).Board; got != tc.want {
			t.Errorf("%s/%s: board %q, want %q", tc.goos, tc.goarch, got, tc.want)
		}
	}
}

func TestDefaultStateDir(t *testing.T) {
	for _, tc := range []struct {
		name  string
		root  bool
		board string
		env   map[string]string
		want  string
	}{
		{"root on a real board", true, "auto", nil, "/var/lib/lenscap"},
		{"root on a named board", true, "rpi4", map[string]string{"XDG_STATE_HOME": "/x"}, "/var/lib/lenscap"},
		{"root on the simulated board", true, "sim", nil, "/home/u/.local/state/lenscap"},
		{"user on a real board", false, "auto", nil, "/home/u/.local/state/lenscap"},
		{"XDG_STATE_HOME", false, "sim", map[string]string{"XDG_STATE_HOME": "/xdg/state"}, "/xdg/state/lenscap"},
		{"relative XDG_STATE_HOME is ignored", false, "sim", map[string]string{"XDG_STATE_HOME": "rel"}, "/home/u/.local/state/lenscap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPlatform()
			p.root = tc.root
			got := mustLoad(t, p, []string{"--board", tc.board}, env(tc.env)).StateDir
			if got != tc.want {
				t.Errorf("state dir %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDefaultStateDirFallsBackToUserHomeDir(t *testing.T) {
	p := testPlatform()
	p.homeDir = func() (string, error) { return "/root", nil }
	got := mustLoad(t, p, nil, env(map[string]string{"HOME": ""})).StateDir
	if got != "/root/.local/state/lenscap" {
		t.Errorf("state dir %q", got)
	}
}

func TestNoHomeAndNoStateDirIsAnError(t *testing.T) {
	_, err := loadConfigOn(testPlatform(), nil, env(map[string]string{"HOME": ""}))
	if err == nil || !strings.Contains(err.Error(), "config: state_dir:") {
		t.Fatalf("err = %v, want a state_dir error", err)
	}
	// An explicit directory needs no home.
	mustLoad(t, testPlatform(), []string{"--state-dir", "/s"}, env(map[string]string{"HOME": ""}))
}

// layerCase is one key set to a different value by each layer.
type layerCase struct {
	key                 string
	yaml, env, flag     string // the YAML value (as YAML), the environment's and the flag's
	atYAML, atEnv, atFl func(Config) bool
}

func layerCases() []layerCase {
	str := func(get func(Config) string, want string) func(Config) bool {
		return func(c Config) bool { return get(c) == want }
	}
	list := func(get func(Config) []string, want ...string) func(Config) bool {
		return func(c Config) bool { return slices.Equal(get(c), want) }
	}
	board := func(c Config) string { return c.Board }
	return []layerCase{
		{"board", "rpi4", "rpi5", "sim", str(board, "rpi4"), str(board, "rpi5"), str(board, "sim")},
		{"listen", "127.0.0.1:1", "127.0.0.1:2", ":3",
			str(func(c Config) string { return c.Listen }, "127.0.0.1:1"),
			str(func(c Config) string { return c.Listen }, "127.0.0.1:2"),
			str(func(c Config) string { return c.Listen }, ":3")},
		{"state_dir", "/y", "/e", "/f",
			str(func(c Config) string { return c.StateDir }, "/y"),
			str(func(c Config) string { return c.StateDir }, "/e"),
			str(func(c Config) string { return c.StateDir }, "/f")},
		{"mqtt", "mqtt://y:1883", "mqtts://e:8883", "tcp://f:1",
			str(func(c Config) string { return c.MQTT }, "mqtt://y:1883"),
			str(func(c Config) string { return c.MQTT }, "mqtts://e:8883"),
			str(func(c Config) string { return c.MQTT }, "tcp://f:1")},
		{"mqtt_listen", "127.0.0.1:1", "off", "127.0.0.1:0",
			str(func(c Config) string { return c.MQTTListen }, "127.0.0.1:1"),
			str(func(c Config) string { return c.MQTTListen }, "off"),
			str(func(c Config) string { return c.MQTTListen }, "127.0.0.1:0")},
		{"mqtt_ca", "/y.pem", "/e.pem", "/f.pem",
			str(func(c Config) string { return c.MQTTCA }, "/y.pem"),
			str(func(c Config) string { return c.MQTTCA }, "/e.pem"),
			str(func(c Config) string { return c.MQTTCA }, "/f.pem")},
		{"mqtt_cert", "/y.crt", "/e.crt", "/f.crt",
			str(func(c Config) string { return c.MQTTCert }, "/y.crt"),
			str(func(c Config) string { return c.MQTTCert }, "/e.crt"),
			str(func(c Config) string { return c.MQTTCert }, "/f.crt")},
		{"mqtt_key", "/y.key", "/e.key", "/f.key",
			str(func(c Config) string { return c.MQTTKey }, "/y.key"),
			str(func(c Config) string { return c.MQTTKey }, "/e.key"),
			str(func(c Config) string { return c.MQTTKey }, "/f.key")},
		{"id", "y", "e", "f",
			str(func(c Config) string { return c.ID }, "y"),
			str(func(c Config) string { return c.ID }, "e"),
			str(func(c Config) string { return c.ID }, "f")},
		{"groups", "[y1, y2]", "e1,e2", "f1",
			list(func(c Config) []string { return c.Groups }, "y1", "y2"),
			list(func(c Config) []string { return c.Groups }, "e1", "e2"),
			list(func(c Config) []string { return c.Groups }, "f1")},
		{"token", "ytok-ytok-ytok-ytok", "etok-etok-etok-etok", "ftok-ftok-ftok-ftok",
			str(func(c Config) string { return c.Token }, "ytok-ytok-ytok-ytok"),
			str(func(c Config) string { return c.Token }, "etok-etok-etok-etok"),
			str(func(c Config) string { return c.Token }, "ftok-ftok-ftok-ftok")},
		{"topic_prefix", "y/l", "e", "f",
			str(func(c Config) string { return c.TopicPrefix }, "y/l"),
			str(func(c Config) string { return c.TopicPrefix }, "e"),
			str(func(c Config) string { return c.TopicPrefix }, "f")},
		{"remote_may_lift", "true", "false", "true",
			func(c Config) bool { return c.RemoteMayLift },
			func(c Config) bool { return !c.RemoteMayLift },
			func(c Config) bool { return c.RemoteMayLift }},
		{"button_kinds", "[audio]", "video", "audio,video",
			list(func(c Config) []string { return c.ButtonKinds }, "audio"),
			list(func(c Config) []string { return c.ButtonKinds }, "video"),
			list(func(c Config) []string { return c.ButtonKinds }, "audio", "video")},
		{"gpio_chip", "pinctrl-rp1", "gpiochip0", "/dev/gpiochip4",
			str(func(c Config) string { return c.GPIOChip }, "pinctrl-rp1"),
			str(func(c Config) string { return c.GPIOChip }, "gpiochip0"),
			str(func(c Config) string { return c.GPIOChip }, "/dev/gpiochip4")},
		{"button_pin", "GPIO5", "6", "none",
			str(func(c Config) string { return c.ButtonPin }, "GPIO5"),
			str(func(c Config) string { return c.ButtonPin }, "6"),
			str(func(c Config) string { return c.ButtonPin }, "none")},
		{"button_mode", "latching", "momentary", "Latching",
			str(func(c Config) string { return c.ButtonMode }, "latching"),
			str(func(c Config) string { return c.ButtonMode }, "momentary"),
			str(func(c Config) string { return c.ButtonMode }, "latching")},
		{"button_active", "high", "low", "high",
			str(func(c Config) string { return c.ButtonActive }, "high"),
			str(func(c Config) string { return c.ButtonActive }, "low"),
			str(func(c Config) string { return c.ButtonActive }, "high")},
		{"button_pull", "down", "none", "up",
			str(func(c Config) string { return c.ButtonPull }, "down"),
			str(func(c Config) string { return c.ButtonPull }, "none"),
			str(func(c Config) string { return c.ButtonPull }, "up")},
		{"button_debounce", "50ms", "10ms", "1s",
			func(c Config) bool { return c.ButtonDebounce == 50*time.Millisecond },
			func(c Config) bool { return c.ButtonDebounce == 10*time.Millisecond },
			func(c Config) bool { return c.ButtonDebounce == time.Second }},
		{"button_hold", "2s", "0", "1500ms",
			func(c Config) bool { return c.ButtonHold == 2*time.Second },
			func(c Config) bool { return c.ButtonHold == 0 },
			func(c Config) bool { return c.ButtonHold == 1500*time.Millisecond }},
		{"privacy_led_pin", "GPIO27", "none", "13",
			str(func(c Config) string { return c.PrivacyLEDPin }, "GPIO27"),
			str(func(c Config) string { return c.PrivacyLEDPin }, "none"),
			str(func(c Config) string { return c.PrivacyLEDPin }, "13")},
		{"privacy_led_active", "low", "high", "LOW",
			str(func(c Config) string { return c.PrivacyLEDActive }, "low"),
			str(func(c Config) string { return c.PrivacyLEDActive }, "high"),
			str(func(c Config) string { return c.PrivacyLEDActive }, "low")},
		{"live_led_pin", "GPIO22", "22", "none",
			str(func(c Config) string { return c.LiveLEDPin }, "GPIO22"),
			str(func(c Config) string { return c.LiveLEDPin }, "22"),
			str(func(c Config) string { return c.LiveLEDPin }, "none")},
		{"live_led_active", "low", "high", "low",
			str(func(c Config) string { return c.LiveLEDActive }, "low"),
			str(func(c Config) string { return c.LiveLEDActive }, "high"),
			str(func(c Config) string { return c.LiveLEDActive }, "low")},
		{"camera_power_pin", "GPIO5", "none", "6",
			str(func(c Config) string { return c.CameraPowerPin }, "GPIO5"),
			str(func(c Config) string { return c.CameraPowerPin }, "none"),
			str(func(c Config) string { return c.CameraPowerPin }, "6")},
		{"camera_power_active", "low", "high", "LOW",
			str(func(c Config) string { return c.CameraPowerActive }, "low"),
			str(func(c Config) string { return c.CameraPowerActive }, "high"),
			str(func(c Config) string { return c.CameraPowerActive }, "low")},
		{"mic_power_pin", "GPIO6", "7", "none",
			str(func(c Config) string { return c.MicPowerPin }, "GPIO6"),
			str(func(c Config) string { return c.MicPowerPin }, "7"),
			str(func(c Config) string { return c.MicPowerPin }, "none")},
		{"mic_power_active", "low", "high", "low",
			str(func(c Config) string { return c.MicPowerActive }, "low"),
			str(func(c Config) string { return c.MicPowerActive }, "high"),
			str(func(c Config) string { return c.MicPowerActive }, "low")},
		{"usb_authorize", "true", "false", "true",
			func(c Config) bool { return c.USBAuthorize },
			func(c Config) bool { return !c.USBAuthorize },
			func(c Config) bool { return c.USBAuthorize }},
		{"power_timeout", "2s", "500ms", "1m",
			func(c Config) bool { return c.PowerTimeout == 2*time.Second },
			func(c Config) bool { return c.PowerTimeout == 500*time.Millisecond },
			func(c Config) bool { return c.PowerTimeout == time.Minute }},
		{"livekit_url", "wss://sfu.example.org", "ws://127.0.0.1:7880", "https://sfu.example.org",
			str(func(c Config) string { return c.LiveKit.URL }, "wss://sfu.example.org"),
			str(func(c Config) string { return c.LiveKit.URL }, "ws://127.0.0.1:7880"),
			str(func(c Config) string { return c.LiveKit.URL }, "https://sfu.example.org")},
		{"livekit_api_key", "APIy", "APIe", "APIf",
			str(func(c Config) string { return c.LiveKit.APIKey }, "APIy"),
			str(func(c Config) string { return c.LiveKit.APIKey }, "APIe"),
			str(func(c Config) string { return c.LiveKit.APIKey }, "APIf")},
		{"livekit_api_secret", strings.Repeat("y", 32), strings.Repeat("e", 32), strings.Repeat("f", 40),
			str(func(c Config) string { return c.LiveKit.APISecret }, strings.Repeat("y", 32)),
			str(func(c Config) string { return c.LiveKit.APISecret }, strings.Repeat("e", 32)),
			str(func(c Config) string { return c.LiveKit.APISecret }, strings.Repeat("f", 40))},
		{"livekit_token", "eyJy", "eyJe", "eyJf",
			str(func(c Config) string { return c.LiveKit.Token }, "eyJy"),
			str(func(c Config) string { return c.LiveKit.Token }, "eyJe"),
			str(func(c Config) string { return c.LiveKit.Token }, "eyJf")},
		{"livekit_room", "hall", "porch", "garden",
			str(func(c Config) string { return c.LiveKit.Room }, "hall"),
			str(func(c Config) string { return c.LiveKit.Room }, "porch"),
			str(func(c Config) string { return c.LiveKit.Room }, "garden")},
		{"livekit_identity", "cam-y", "cam-e", "cam-f",
			str(func(c Config) string { return c.LiveKit.Identity }, "cam-y"),
			str(func(c Config) string { return c.LiveKit.Identity }, "cam-e"),
			str(func(c Config) string { return c.LiveKit.Identity }, "cam-f")},
		{"ice_servers", "[stun:y.example.org]", "stun:e.example.org,turn:e.example.org:3478", "turns:f.example.org",
			list(func(c Config) []string { return c.ICE.Servers }, "stun:y.example.org"),
			list(func(c Config) []string { return c.ICE.Servers }, "stun:e.example.org", "turn:e.example.org:3478"),
			list(func(c Config) []string { return c.ICE.Servers }, "turns:f.example.org")},
		{"turn_username", "y", "e", "f",
			str(func(c Config) string { return c.ICE.Username }, "y"),
			str(func(c Config) string { return c.ICE.Username }, "e"),
			str(func(c Config) string { return c.ICE.Username }, "f")},
		{"turn_credential", "ycred", "ecred", "fcred",
			str(func(c Config) string { return c.ICE.Credential }, "ycred"),
			str(func(c Config) string { return c.ICE.Credential }, "ecred"),
			str(func(c Config) string { return c.ICE.Credential }, "fcred")},
		{"turn_secret", strings.Repeat("y", 16), strings.Repeat("e", 16), strings.Repeat("f", 20),
			str(func(c Config) string { return c.ICE.Secret }, strings.Repeat("y", 16)),
			str(func(c Config) string { return c.ICE.Secret }, strings.Repeat("e", 16)),
			str(func(c Config) string { return c.ICE.Secret }, strings.Repeat("f", 20))},
		{"turn_ttl", "1h", "10m", "48h",
			func(c Config) bool { return c.ICE.TTL == time.Hour },
			func(c Config) bool { return c.ICE.TTL == 10*time.Minute },
			func(c Config) bool { return c.ICE.TTL == 48*time.Hour }},
		{"ice_tcp_listen", "0.0.0.0:8443", "127.0.0.1:9443", ":7443",
			str(func(c Config) string { return c.ICE.TCPListen }, "0.0.0.0:8443"),
			str(func(c Config) string { return c.ICE.TCPListen }, "127.0.0.1:9443"),
			str(func(c Config) string { return c.ICE.TCPListen }, ":7443")},
		{"ice_transport_policy", "relay", "all", "RELAY",
			str(func(c Config) string { return c.ICE.Policy }, "relay"),
			str(func(c Config) string { return c.ICE.Policy }, "all"),
			str(func(c Config) string { return c.ICE.Policy }, "relay")},
		{"audio_codec", "pcmu", "opus", "pcmu",
			str(func(c Config) string { return c.AudioCodec }, "pcmu"),
			str(func(c Config) string { return c.AudioCodec }, "opus"),
			str(func(c Config) string { return c.AudioCodec }, "pcmu")},
		{"camera", "v4l2", "v4l2:/dev/video2", "csi-rpicam",
			str(func(c Config) string { return c.Camera }, "v4l2"),
			str(func(c Config) string { return c.Camera }, "v4l2:/dev/video2"),
			str(func(c Config) string { return c.Camera }, "csi-rpicam")},
		{"encoder", "software", "auto", "v4l2-m2m:auto",
			str(func(c Config) string { return c.Encoder }, "software"),
			str(func(c Config) string { return c.Encoder }, "auto"),
			str(func(c Config) string { return c.Encoder }, "v4l2-m2m:auto")},
		{"encoder_format", "FWHT", "H264", "FWHT",
			str(func(c Config) string { return c.EncoderFormat }, "FWHT"),
			str(func(c Config) string { return c.EncoderFormat }, "H264"),
			str(func(c Config) string { return c.EncoderFormat }, "FWHT")},
		{"audio", "none", "tone", "alsa:1,0",
			str(func(c Config) string { return c.Audio }, "none"),
			str(func(c Config) string { return c.Audio }, "tone"),
			str(func(c Config) string { return c.Audio }, "alsa:1,0")},
		{"video_size", "640x480", "1920x1080", "1280x720",
			str(func(c Config) string { return c.VideoSize }, "640x480"),
			str(func(c Config) string { return c.VideoSize }, "1920x1080"),
			str(func(c Config) string { return c.VideoSize }, "1280x720")},
		{"video_fps", "15", "25", "30",
			func(c Config) bool { return c.VideoFPS == 15 },
			func(c Config) bool { return c.VideoFPS == 25 },
			func(c Config) bool { return c.VideoFPS == 30 }},
		{"video_bitrate", "1000000", "500000", "3000000",
			func(c Config) bool { return c.VideoBitrate == 1000000 },
			func(c Config) bool { return c.VideoBitrate == 500000 },
			func(c Config) bool { return c.VideoBitrate == 3000000 }},
		{"sim_clip", "/y.h264", "/e.h264", "/f.h264",
			str(func(c Config) string { return c.SimClip }, "/y.h264"),
			str(func(c Config) string { return c.SimClip }, "/e.h264"),
			str(func(c Config) string { return c.SimClip }, "/f.h264")},
		{"mqtt_insecure", "true", "false", "true",
			func(c Config) bool { return c.MQTTInsecure },
			func(c Config) bool { return !c.MQTTInsecure },
			func(c Config) bool { return c.MQTTInsecure }},
		{"mqtt_signalling", "true", "false", "true",
			func(c Config) bool { return c.MQTTSignalling },
			func(c Config) bool { return !c.MQTTSignalling },
			func(c Config) bool { return c.MQTTSignalling }},
		{"token_keys", "[/y.pem]", "/e.pem,/e2.pem", "/f.pem",
			list(func(c Config) []string { return c.TokenKeys }, "/y.pem"),
			list(func(c Config) []string { return c.TokenKeys }, "/e.pem", "/e2.pem"),
			list(func(c Config) []string { return c.TokenKeys }, "/f.pem")},
		{"token_revoked", "[mallory]", "eve", "trudy,oscar",
			list(func(c Config) []string { return c.TokenRevoked }, "mallory"),
			list(func(c Config) []string { return c.TokenRevoked }, "eve"),
			list(func(c Config) []string { return c.TokenRevoked }, "trudy", "oscar")},
		{"tls_cert", "/y.crt", "/e.crt", "/f.crt",
			str(func(c Config) string { return c.TLSCert }, "/y.crt"),
			str(func(c Config) string { return c.TLSCert }, "/e.crt"),
			str(func(c Config) string { return c.TLSCert }, "/f.crt")},
		{"tls_key", "/y.key", "/e.key", "/f.key",
			str(func(c Config) string { return c.TLSKey }, "/y.key"),
			str(func(c Config) string { return c.TLSKey }, "/e.key"),
			str(func(c Config) string { return c.TLSKey }, "/f.key")},
		{"max_viewers", "4", "8", "2",
			func(c Config) bool { return c.MaxViewers == 4 },
			func(c Config) bool { return c.MaxViewers == 8 },
			func(c Config) bool { return c.MaxViewers == 2 }},
		{"max_viewers_per_credential", "2", "3", "1",
			func(c Config) bool { return c.MaxViewersPerCredential == 2 },
			func(c Config) bool { return c.MaxViewersPerCredential == 3 },
			func(c Config) bool { return c.MaxViewersPerCredential == 1 }},
		{"ws_ping", "10s", "20s", "30s",
			func(c Config) bool { return c.WSPing == 10*time.Second },
			func(c Config) bool { return c.WSPing == 20*time.Second },
			func(c Config) bool { return c.WSPing == 30*time.Second }},
		{"ws_idle", "60s", "50s", "70s",
			func(c Config) bool { return c.WSIdle == 60*time.Second },
			func(c Config) bool { return c.WSIdle == 50*time.Second },
			func(c Config) bool { return c.WSIdle == 70*time.Second }},
		{"max_sdp_bytes", "8192", "16384", "65536",
			func(c Config) bool { return c.MaxSDPBytes == 8192 },
			func(c Config) bool { return c.MaxSDPBytes == 16384 },
			func(c Config) bool { return c.MaxSDPBytes == 65536 }},
		{"rate_whep", "2/s,4", "0.5/s,2", "3/s,9",
			str(func(c Config) string { return c.RateWHEP }, "2/s,4"),
			str(func(c Config) string { return c.RateWHEP }, "0.5/s,2"),
			str(func(c Config) string { return c.RateWHEP }, "3/s,9")},
		{"rate_signal", "2/s,4", "0.5/s,2", "3/s,9",
			str(func(c Config) string { return c.RateSignal }, "2/s,4"),
			str(func(c Config) string { return c.RateSignal }, "0.5/s,2"),
			str(func(c Config) string { return c.RateSignal }, "3/s,9")},
		{"mqtt_signal_url", "mqtt://s:1883", "mqtts://s:8883", "tcp://s:1",
			str(func(c Config) string { return c.MQTTSignalURL }, "mqtt://s:1883"),
			str(func(c Config) string { return c.MQTTSignalURL }, "mqtts://s:8883"),
			str(func(c Config) string { return c.MQTTSignalURL }, "tcp://s:1")},
		{"rate_ws", "2/s,4", "0.5/s,2", "3/s,9",
			str(func(c Config) string { return c.RateWS }, "2/s,4"),
			str(func(c Config) string { return c.RateWS }, "0.5/s,2"),
			str(func(c Config) string { return c.RateWS }, "3/s,9")},
		{"rate_api", "20/s,40", "5/s,5", "1/s,1",
			str(func(c Config) string { return c.RateAPI }, "20/s,40"),
			str(func(c Config) string { return c.RateAPI }, "5/s,5"),
			str(func(c Config) string { return c.RateAPI }, "1/s,1")},
		{"capture", "on_demand", "always", "on_demand",
			str(func(c Config) string { return c.Capture }, "on_demand"),
			str(func(c Config) string { return c.Capture }, "always"),
			str(func(c Config) string { return c.Capture }, "on_demand")},
		{"capture_linger", "5s", "0", "30s",
			func(c Config) bool { return c.CaptureLinger == 5*time.Second },
			func(c Config) bool { return c.CaptureLinger == 0 },
			func(c Config) bool { return c.CaptureLinger == 30*time.Second }},
		{"max_conns", "100", "200", "300",
			func(c Config) bool { return c.MaxConns == 100 },
			func(c Config) bool { return c.MaxConns == 200 },
			func(c Config) bool { return c.MaxConns == 300 }},
		{"max_conns_per_client", "8", "16", "4",
			func(c Config) bool { return c.MaxConnsPerClient == 8 },
			func(c Config) bool { return c.MaxConnsPerClient == 16 },
			func(c Config) bool { return c.MaxConnsPerClient == 4 }},
		{"body_timeout", "5s", "1s", "30s",
			func(c Config) bool { return c.BodyTimeout == 5*time.Second },
			func(c Config) bool { return c.BodyTimeout == time.Second },
			func(c Config) bool { return c.BodyTimeout == 30*time.Second }},
		{"log_level", "debug", "warn", "error",
			str(func(c Config) string { return c.LogLevel }, "debug"),
			str(func(c Config) string { return c.LogLevel }, "warn"),
			str(func(c Config) string { return c.LogLevel }, "error")},
		{"log_format", "json", "text", "json",
			str(func(c Config) string { return c.LogFormat }, "json"),
			str(func(c Config) string { return c.LogFormat }, "text"),
			str(func(c Config) string { return c.LogFormat }, "json")},
	}
}

func TestEachLayerOverridesThePrevious(t *testing.T) {
	for _, tc := range layerCases() {
		t.Run(tc.key, func(t *testing.T) {
			file := writeFile(t, "lenscap.yaml", tc.key+": "+tc.yaml+"\n")
			args := []string{"--config", file}
			flagArgs := append(slices.Clone(args), "--"+settings.FlagName(tc.key)+"="+tc.flag)

			if c := mustLoad(t, testPlatform(), args, env(nil)); !tc.atYAML(c) {
				t.Errorf("file over defaults: got %+v", c)
			}
			e := env(map[string]string{settings.EnvName(tc.key): tc.env})
			if c := mustLoad(t, testPlatform(), args, e); !tc.atEnv(c) {
				t.Errorf("environment over file: got %+v", c)
			}
			if c := mustLoad(t, testPlatform(), flagArgs, e); !tc.atFl(c) {
				t.Errorf("flag over environment: got %+v", c)
			}
			empty := env(map[string]string{settings.EnvName(tc.key): ""})
			if c := mustLoad(t, testPlatform(), args, empty); !tc.atYAML(c) {
				t.Errorf("an empty variable counts as unset: got %+v", c)
			}
		})
	}
}

func TestEveryKeyIsAFlagAVariableAndAYAMLKey(t *testing.T) {
	keys := configSettings().Keys()
	var tested []string
	for _, tc := range layerCases() {
		tested = append(tested, tc.key)
	}
	slices.Sort(keys)
	slices.Sort(tested)
	if !slices.Equal(keys, tested) {
		t.Errorf("settings %v, layer cases %v: test every key", keys, tested)
	}
	// Config has one field per key, plus ConfigFile, and the LiveKit group's.
	n := reflect.TypeFor[Config]().NumField() - 2 + reflect.TypeFor[LiveKit]().NumField() + reflect.TypeFor[ICE]().NumField()
	if n != len(keys)+1 {
		t.Errorf("Config has %d fields for %d keys: add the new one to configSettings()", n, len(keys))
	}
}

func TestConfigFileFromEnvironmentAndFlag(t *testing.T) {
	envFile := writeFile(t, "env.yaml", "listen: 127.0.0.1:1\n")
	flagFile := writeFile(t, "flag.yaml", "listen: 127.0.0.1:2\n")
	e := env(map[string]string{"LENSCAP_CONFIG": envFile})

	c := mustLoad(t, testPlatform(), nil, e)
	if c.Listen != "127.0.0.1:1" || c.ConfigFile != envFile {
		t.Errorf("LENSCAP_CONFIG: listen %q, file %q", c.Listen, c.ConfigFile)
	}
	c = mustLoad(t, testPlatform(), []string{"--config", flagFile}, e)
	if c.Listen != "127.0.0.1:2" || c.ConfigFile != flagFile {
		t.Errorf("--config over LENSCAP_CONFIG: listen %q, file %q", c.Listen, c.ConfigFile)
	}
}

func TestFullYAMLFile(t *testing.T) {
	file := writeFile(t, "full.yaml", `# a camera in the hall
board: rpi4
listen: 0.0.0.0:8443
state_dir: /var/lib/cam
mqtt: mqtts://cam-1:s3cret@broker.example.org
id: hall
groups:
  - ground-floor
  - indoor
token: abc.DEF_123-abc.DEF_123
topic_prefix: home/lenscap
remote_may_lift: true
button_kinds: [video]
gpio_chip: pinctrl-bcm2711
button_pin: GPIO17
button_mode: latching
button_active: High
button_pull: down
button_debounce: 20ms
privacy_led_pin: GPIO27
privacy_led_active: low
live_led_pin: none
live_led_active: high
camera_power_pin: GPIO5
camera_power_active: Low
usb_authorize: true
power_timeout: 3s
audio_codec: PCMU
log_level: Debug
log_format: json
`)
	got := mustLoad(t, testPlatform(), []string{"--config", file}, env(nil))
	want := Config{
		Board: "rpi4", Listen: "0.0.0.0:8443", StateDir: "/var/lib/cam",
		MQTT: "mqtts://cam-1:s3cret@broker.example.org:8883", MQTTListen: "127.0.0.1:1883", ID: "hall",
		Groups: []string{"ground-floor", "indoor"}, Token: "abc.DEF_123-abc.DEF_123",
		TokenKeys: []string{}, TokenRevoked: []string{},
		MaxViewers: 16, MaxViewersPerCredential: 4, WSPing: 15 * time.Second, WSIdle: 45 * time.Second, MaxSDPBytes: 32768,
		RateWHEP: "1/s,10", RateWS: "1/s,10", RateAPI: "10/s,50", RateSignal: "20/s,40", BodyTimeout: 10 * time.Second,
		MaxConns: 256, MaxConnsPerClient: 32, Capture: "on_demand", CaptureLinger: 10 * time.Second,
		TopicPrefix: "home/lenscap", RemoteMayLift: true, ButtonKinds: []string{"video"},
		GPIOChip: "pinctrl-bcm2711", ButtonPin: "GPIO17", ButtonMode: "latching", ButtonActive: "high",
		ButtonPull: "down", ButtonDebounce: 20 * time.Millisecond, PrivacyLEDPin: "GPIO27",
		PrivacyLEDActive: "low", LiveLEDPin: "none", LiveLEDActive: "high",
		CameraPowerPin: "GPIO5", CameraPowerActive: "low", MicPowerActive: "high", USBAuthorize: true, PowerTimeout: 3 * time.Second,
		ICE:        ICE{Servers: []string{}, TTL: 24 * time.Hour, Policy: "all"},
		AudioCodec: "pcmu", LogLevel: "debug", LogFormat: "json", ConfigFile: file,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
}

func TestUnknownYAMLKeyIsAnErrorNamingTheKey(t *testing.T) {
	file := writeFile(t, "bad.yaml", "listen: 127.0.0.1:1\nstate-dir: /x\n")
	_, err := loadConfigOn(testPlatform(), []string{"--config", file}, env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{file, "line 2", `unknown key "state-dir"`, "state_dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestBadYAMLFiles(t *testing.T) {
	for _, tc := range []struct{ name, content, want string }{
		{"wrong type", "remote_may_lift: maybe\n", "config: "},
		{"nested list", "groups: [[a]]\n", "config: "},
		{"map for a string", "listen: {a: b}\n", "config: "},
		{"top-level list", "- listen\n", "config: "},
		{"two documents", "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n", "want one YAML document"},
		{"syntax", "listen: [\n", "config: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, "c.yaml", tc.content)
			_, err := loadConfigOn(testPlatform(), []string{"--config", file}, env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestEmptyYAMLFileKeepsTheDefaults(t *testing.T) {
	file := writeFile(t, "empty.yaml", "# nothing here\n")
	if c := mustLoad(t, testPlatform(), []string{"--config", file}, env(nil)); c.Listen != defaultListen {
		t.Errorf("listen %q", c.Listen)
	}
}

func TestMissingAndHugeConfigFiles(t *testing.T) {
	_, err := loadConfigOn(testPlatform(), []string{"--config", "/nonexistent/lenscap.yaml"}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/lenscap.yaml") {
		t.Errorf("missing file: err = %v", err)
	}
	huge := writeFile(t, "huge.yaml", "# "+strings.Repeat("x", settings.MaxFileSize)+"\n")
	_, err = loadConfigOn(testPlatform(), []string{"--config", huge}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge file: err = %v", err)
	}
}

func TestGroupsParsing(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		args []string
		want []string
	}{
		{"comma list", "", []string{"--groups", "g1,g2"}, []string{"g1", "g2"}},
		{"spaces, empties and repeats", "", []string{"--groups", " g1 , ,g2,g1,"}, []string{"g1", "g2"}},
		{"YAML list", "groups: [a, b]\n", nil, []string{"a", "b"}},
		{"YAML block list", "groups:\n  - a\n  - b\n", nil, []string{"a", "b"}},
		{"YAML string", "groups: a,b\n", nil, []string{"a", "b"}},
		{"YAML empty list", "groups: []\n", nil, []string{}},
		{"YAML null keeps the default", "groups: ~\n", nil, []string{}},
		{"YAML alias", "groups: &g [video]\nbutton_kinds: *g\n", nil, []string{"video"}},
		{"YAML nested list", "groups: [[a]]\n", nil, nil},
		{"flag clears the file's groups", "groups: [a]\n", []string{"--groups", ""}, []string{}},
		{"case is kept", "", []string{"--groups", "Hall"}, []string{"Hall"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.yaml != "" {
				args = append([]string{"--config", writeFile(t, "g.yaml", tc.yaml)}, args...)
			}
			c, err := loadConfigOn(testPlatform(), args, env(nil))
			if tc.want == nil {
				if err == nil {
					t.Errorf("no error, groups %q", c.Groups)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Groups, tc.want) {
				t.Errorf("groups %q, want %q", c.Groups, tc.want)
			}
		})
	}
	// From the environment, with the file's list overridden.
	file := writeFile(t, "g.yaml", "groups: [a]\n")
	c := mustLoad(t, testPlatform(), []string{"--config", file}, env(map[string]string{"LENSCAP_GROUPS": "x, y"}))
	if !slices.Equal(c.Groups, []string{"x", "y"}) {
		t.Errorf("LENSCAP_GROUPS: groups %q", c.Groups)
	}
}

func TestHelpReturnsTheUsage(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		_, err := loadConfigOn(testPlatform(), []string{arg}, env(nil))
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s: err = %v, want flag.ErrHelp", arg, err)
		}
		for _, key := range configSettings().Keys() {
			if !strings.Contains(err.Error(), "-"+settings.FlagName(key)) {
				t.Errorf("%s: usage lacks -%s", arg, settings.FlagName(key))
			}
		}
		for _, want := range []string{"-config", "LENSCAP_STATE_DIR", "state_dir"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: usage lacks %q", arg, want)
			}
		}
	}
}

func TestBadCommandLines(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag"}, "no-such-flag"},
		{[]string{"--listen"}, "listen"},
		{[]string{"--board", "sim", "extra"}, `unexpected argument "extra"`},
	} {
		_, err := loadConfigOn(testPlatform(), tc.args, env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, flag.ErrHelp) {
			t.Errorf("%q: err = %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

func TestRepeatedFlagLastWins(t *testing.T) {
	c := mustLoad(t, testPlatform(), []string{"--listen", "127.0.0.1:1", "--listen", "127.0.0.1:2"}, env(nil))
	if c.Listen != "127.0.0.1:2" {
		t.Errorf("listen %q", c.Listen)
	}
}

func TestLoadConfigOnThisHost(t *testing.T) {
	dir := t.TempDir()
	c, err := loadConfig([]string{"--state-dir", dir}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != dir || c.ID == "" {
		t.Errorf("got %+v", c)
	}
}

// FuzzLoadConfigYAML checks that no file makes the loader panic, and that whatever it accepts
// validates (or fails validation) without panicking either.
func FuzzLoadConfigYAML(f *testing.F) {
	for _, seed := range []string{
		"",
		"board: sim\nlisten: 127.0.0.1:0\n",
		"mqtt: mqtt://u:p@h\ngroups: [a, b]\nbutton_kinds: video\nremote_may_lift: true\n",
		"groups: a,b\n",
		"groups: [[a]]\n",
		"groups: {a: b}\n",
		"x: 1\n",
		"- a\n- b\n",
		"a: &a [1]\nb: *a\n",
		"groups: &g [a]\nbutton_kinds: *g\n",
		"groups: *undefined\n",
		"listen: !!binary aGVsbG8=\n",
		"remote_may_lift: !!str true\n",
		"---\n---\n",
		"listen: [\n",
		"\t",
		"id: \"\\u0000\"\n",
		"mqtt: \"%\"\n",
		"topic_prefix: ~\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := defaultConfig(testPlatform())
		if err := configSettings().LoadYAML(data, "fuzz.yaml", &c); err != nil {
			if !strings.HasPrefix(err.Error(), "config: fuzz.yaml: ") {
				t.Errorf("error without its origin: %v", err)
			}
			return
		}
		c.normalize()
		if err := c.deriveDefaults(testPlatform(), env(nil)); err != nil {
			return
		}
		_ = c.Validate()
		_ = c.Redacted()
		_ = c.LogValue()
	})
}
