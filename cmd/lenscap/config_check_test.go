package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/lenscap/lenscap/mqtt"
)

func TestInvalidValuesAreRejected(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--board", "Raspberry Pi"}, "config: board:"},
		{[]string{"--board", "-x"}, "config: board:"},
		{[]string{"--listen", "8080"}, "config: listen:"},
		{[]string{"--listen", "127.0.0.1:http"}, "config: listen:"},
		{[]string{"--listen", "127.0.0.1:65536"}, "config: listen:"},
		{[]string{"--listen", "bad_host!:80"}, "config: listen:"},
		{[]string{"--mqtt", "http://broker:1883"}, "config: mqtt:"},
		{[]string{"--mqtt", "broker:1883"}, "config: mqtt:"},
		{[]string{"--mqtt", "mqtt://:1883"}, "config: mqtt:"},
		{[]string{"--mqtt", "mqtt://broker:0"}, "config: mqtt:"},
		{[]string{"--mqtt", "mqtt://broker:"}, "config: mqtt:"},
		{[]string{"--mqtt", "mqtt://broker:1883/topic"}, "config: mqtt:"},
		{[]string{"--mqtt", "mqtt://broker:1883?x=1"}, "config: mqtt:"},
		{[]string{"--id", "cam/1"}, "config: id:"},
		{[]string{"--id", "cam+"}, "config: id:"},
		{[]string{"--id", "all"}, "config: id:"},
		{[]string{"--id", "group"}, "config: id:"},
		{[]string{"--id", strings.Repeat("a", 65)}, "config: id:"},
		{[]string{"--groups", "ok,not ok"}, "config: groups:"},
		{[]string{"--groups", "a/b"}, "config: groups:"},
		{[]string{"--groups", "#"}, "config: groups:"},
		{[]string{"--token", "two words"}, "config: token:"},
		{[]string{"--token", "tök"}, "config: token:"},
		{[]string{"--topic-prefix", "a/+/b"}, "config: topic_prefix:"},
		{[]string{"--topic-prefix", "#"}, "config: topic_prefix:"},
		{[]string{"--topic-prefix", "/lenscap"}, "config: topic_prefix:"},
		{[]string{"--topic-prefix", "lenscap/"}, "config: topic_prefix:"},
		{[]string{"--topic-prefix", "$SYS"}, "config: topic_prefix:"},
		{[]string{"--topic-prefix", ""}, "config: topic_prefix:"},
		{[]string{"--remote-may-lift=maybe"}, "config: remote_may_lift:"},
		{[]string{"--button-kinds", ""}, "config: button_kinds:"},
		{[]string{"--button-kinds", "video,screen"}, "config: button_kinds:"},
		{[]string{"--audio-codec", "aac"}, "config: audio_codec:"},
		{[]string{"--gpio-chip", "chip 0"}, "config: gpio_chip:"},
		{[]string{"--button-pin", "GPIO 17"}, "config: button_pin:"},
		{[]string{"--privacy-led-pin", "a/b"}, "config: privacy_led_pin:"},
		{[]string{"--live-led-pin", "x;y"}, "config: live_led_pin:"},
		{[]string{"--button-mode", "toggle"}, "config: button_mode:"},
		{[]string{"--button-active", "on"}, "config: button_active:"},
		{[]string{"--privacy-led-active", "1"}, "config: privacy_led_active:"},
		{[]string{"--live-led-active", ""}, "config: live_led_active:"},
		{[]string{"--button-pull", "sideways"}, "config: button_pull:"},
		{[]string{"--button-debounce", "fast"}, "config: button_debounce:"},
		{[]string{"--button-debounce", "0"}, "config: button_debounce:"},
		{[]string{"--button-debounce", "2s"}, "config: button_debounce:"},
		{[]string{"--button-hold", "10ms"}, "config: button_hold:"},
		{[]string{"--camera-power-pin", "GPIO 5"}, "config: camera_power_pin:"},
		{[]string{"--mic-power-active", "on"}, "config: mic_power_active:"},
		{[]string{"--power-timeout", "10ms"}, "config: power_timeout:"},
		{[]string{"--livekit-url", "sfu.example.org"}, "config: livekit_url:"},
		{[]string{"--livekit-url", "wss://key:secret@sfu.example.org"}, "config: livekit_url:"},
		{[]string{"--livekit-api-secret", "short"}, "config: livekit_api_secret:"},
		{[]string{"--ice-servers", "http://stun.example.org"}, "config: ice_servers:"},
		{[]string{"--turn-secret", "0123456789abcdef", "--turn-credential", "x"}, "config: turn_secret:"},
		{[]string{"--turn-ttl", "10s"}, "config: turn_ttl:"},
		{[]string{"--ice-transport-policy", "none"}, "config: ice_transport_policy:"},
		{[]string{"--power-timeout", "2m"}, "config: power_timeout:"},
		{[]string{"--button-hold", "2m"}, "config: button_hold:"},
		{[]string{"--button-hold", "2s", "--button-mode", "latching"}, "config: button_hold:"},
		{[]string{"--log-level", "trace"}, "config: log_level:"},
		{[]string{"--log-format", "xml"}, "config: log_format:"},
		{[]string{"--state-dir", "a\x00b"}, "config: state_dir:"},
		{[]string{"--listen", ""}, "config: listen:"},
		{[]string{"--board", ""}, "config: board:"},
	} {
		_, err := loadConfigOn(testPlatform(), tc.args, env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

func TestInvalidEnvironmentValueNamesTheVariable(t *testing.T) {
	_, err := loadConfigOn(testPlatform(), nil, env(map[string]string{"LENSCAP_REMOTE_MAY_LIFT": "maybe"}))
	if err == nil || !strings.Contains(err.Error(), "LENSCAP_REMOTE_MAY_LIFT") {
		t.Errorf("err = %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := mustLoad(t, testPlatform(), nil, env(nil))
	c.Listen, c.AudioCodec, c.LogFormat = "x", "aac", "xml"
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{"listen", "audio_codec", "log_format"} {
		if !strings.Contains(err.Error(), "config: "+key+":") {
			t.Errorf("error %q does not report %s", err, key)
		}
	}
}

func TestValidValuesAreAccepted(t *testing.T) {
	for _, args := range [][]string{
		{"--listen", ":0"},
		{"--listen", "localhost:8080"},
		{"--listen", "[::1]:8080"},
		{"--listen", "[fe80::1%eth0]:8080"},
		{"--board", "rpi-zero-2w"},
		{"--board", "AUTO"},
		{"--mqtt", ""},
		{"--mqtt", "ssl://[::1]:8883"},
		{"--mqtt", "tcp://broker:1883/"},
		{"--id", "Cam_1-a"},
		{"--topic-prefix", "site.a/lenscap"},
		{"--button-kinds", "AUDIO"},
		{"--remote-may-lift"},
		{"--remote-may-lift=false"},
	} {
		if _, err := loadConfigOn(testPlatform(), args, env(nil)); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
}

func TestMQTTCredentialsArePreservedAndRedacted(t *testing.T) {
	const url = "mqtt://cam-1:s%40cret@127.0.0.1:1883"
	c := mustLoad(t, testPlatform(), []string{"--mqtt", url, "--token", "tok3n-tok3n-tok3n"}, env(nil))
	if c.MQTT != url {
		t.Errorf("MQTT %q, want %q unchanged", c.MQTT, url)
	}
	r := c.Redacted()
	if r.MQTT != "mqtt://cam-1:xxxxx@127.0.0.1:1883" {
		t.Errorf("redacted MQTT %q", r.MQTT)
	}
	if r.Token != "xxxxx" {
		t.Errorf("redacted token %q", r.Token)
	}
	if c.MQTT != url || c.Token != "tok3n-tok3n-tok3n" {
		t.Errorf("Redacted changed the original: %q %q", c.MQTT, c.Token)
	}
	r.Groups = append(r.Groups, "x")
	r.ButtonKinds[0] = "changed"
	if len(c.Groups) != 0 || c.ButtonKinds[0] != "video" {
		t.Error("the redacted copy shares slices with the original")
	}
	for _, secret := range []string{"s%40cret", "s@cret", "tok3n-tok3n-tok3n"} {
		if s := fmt.Sprintf("%+v", c.Redacted()); strings.Contains(s, secret) {
			t.Errorf("Redacted() prints %q: %s", secret, s)
		}
	}
}

func TestLogValueIsRedacted(t *testing.T) {
	c := mustLoad(t, testPlatform(), []string{"--mqtt", "mqtts://u:hunter2@h", "--token", "tok3n-tok3n-tok3n",
		"--mqtt-signal-url", "mqtts://u-signal:signal-pass@h",
		"--livekit-api-secret", "livekit-secret-livekit-secret-livekit", "--livekit-token", "eyJlivekit-join-token",
		"--turn-secret", "turn-rest-secret-2"}, env(nil))
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", c)
	for _, secret := range []string{"hunter2", "signal-pass", "tok3n-tok3n-tok3n", "livekit-secret", "eyJlivekit", "turn-password-1", "turn-rest-secret-2"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("log shows %q: %s", secret, b.String())
		}
	}
	if !strings.Contains(b.String(), "config.mqtt=mqtts://u:xxxxx@h:8883") {
		t.Errorf("log lacks the redacted URL: %s", b.String())
	}
	c = mustLoad(t, testPlatform(), []string{"--turn-username", "cam", "--turn-credential", "turn-password-1"}, env(nil))
	b.Reset()
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", c)
	if strings.Contains(b.String(), "turn-password-1") {
		t.Errorf("log shows the TURN password: %s", b.String())
	}
}

func TestRedactedWithoutSecretsChangesNothing(t *testing.T) {
	c := mustLoad(t, testPlatform(), []string{"--mqtt", "mqtt://broker:1883"}, env(nil))
	if r := c.Redacted(); !reflect.DeepEqual(r, c) {
		t.Errorf("redacted %+v, want %+v", r, c)
	}
	if got := (Config{MQTT: "::not a url"}).Redacted().MQTT; got != "xxxxx" {
		t.Errorf("unparseable URL redacted as %q", got)
	}
}

func TestMQTTDefaultPorts(t *testing.T) {
	for in, want := range map[string]string{
		"mqtt://h":             "mqtt://h:1883",
		"tcp://u:p@h":          "tcp://u:p@h:1883",
		"mqtts://h":            "mqtts://h:8883",
		"ssl://[::1]":          "ssl://[::1]:8883",
		"MQTT://h":             "mqtt://h:1883",
		"mqtt://h:1884":        "mqtt://h:1884",
		"mqtts://u:p%2Fw@h:99": "mqtts://u:p%2Fw@h:99",
	} {
		c := mustLoad(t, testPlatform(), []string{"--mqtt", in}, env(nil))
		if c.MQTT != want {
			t.Errorf("%q: MQTT %q, want %q", in, c.MQTT, want)
		}
	}
}

func TestMQTTErrorsDoNotShowThePassword(t *testing.T) {
	for _, u := range []string{
		"mqtt://u:hunter2/x@h:1883", // unescaped "/" in the password
		"mqtt://u:hunter2@h:1883/path",
		"http://u:hunter2@h:1883",
		"mqtt://u:hunter2@h:99999",
		"mqtt://u:hunter2%zz@h:1883",
		"mqtt://u:hunter2@:1883",
	} {
		_, err := loadConfigOn(testPlatform(), []string{"--mqtt", u}, env(nil))
		if err == nil {
			t.Errorf("%q: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: error shows the password: %v", u, err)
		}
	}
	_, err := loadConfigOn(testPlatform(), []string{"--token", "bad token"}, env(nil))
	if err == nil || strings.Contains(err.Error(), "bad token") {
		t.Errorf("token error %v", err)
	}
}

func TestIDFromHostname(t *testing.T) {
	for in, want := range map[string]string{
		"cam-1":                 "cam-1",
		"cam-1.local":           "cam-1",
		"Hall_Cam":              "Hall_Cam",
		"weird+name#1":          "weird_name_1",
		"kamera-küche":          "kamera-k_che",
		"":                      "lenscap",
		".local":                "lenscap",
		"all":                   "lenscap-all",
		"group.example":         "lenscap-group",
		strings.Repeat("a", 70): strings.Repeat("a", 64),
	} {
		if got := idFromHostname(in); got != want {
			t.Errorf("idFromHostname(%q) = %q, want %q", in, got, want)
		}
		if mqtt.ValidID(idFromHostname(in)) != nil {
			t.Errorf("idFromHostname(%q) = %q is not a valid id", in, idFromHostname(in))
		}
	}
	p := testPlatform()
	p.hostname = func() (string, error) { return "", errors.New("no hostname") }
	if c := mustLoad(t, p, nil, env(nil)); c.ID != "lenscap" {
		t.Errorf("id without a host name: %q", c.ID)
	}
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
	} {
		if got := (Config{LogLevel: level}).SlogLevel(); got != want {
			t.Errorf("%s: %v", level, got)
		}
	}
}

func TestLimitSettingsAreChecked(t *testing.T) {
	for _, args := range [][]string{
		{"--max-viewers", "0"}, {"--max-viewers", "5000"}, {"--ws-ping", "10ms"}, {"--ws-idle", "5s"},
		{"--max-sdp-bytes", "10"}, {"--rate-whep", "fast"}, {"--rate-ws", "0/s,1"}, {"--rate-api", "5/s,0"},
		{"--body-timeout", "1h"}, {"--token", "short"},
	} {
		if _, err := loadConfigOn(testPlatform(), args, env(nil)); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	r, err := parseRate("2.5/s,7")
	if err != nil || r.Rate != 2.5 || r.Burst != 7 {
		t.Errorf("parseRate: %+v, %v", r, err)
	}
}
