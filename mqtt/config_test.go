package mqtt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
)

func TestBrokerOptionsFromURL(t *testing.T) {
	cases := []struct {
		url, broker, user, pass string
		tls                     bool
	}{
		{"mqtt://127.0.0.1", "tcp://127.0.0.1:1883", "", "", false},
		{"tcp://cam-1:s%40cret@broker.lan:1884", "tcp://broker.lan:1884", "cam-1", "s@cret", false},
		{"mqtts://broker.lan", "ssl://broker.lan:8883", "", "", true},
		{"ssl://op:pw@[::1]:8884/", "ssl://[::1]:8884", "op", "pw", true},
	}
	for _, tc := range cases {
		o, err := BrokerOptions(tc.url, TLS{})
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if len(o.Servers) != 1 || o.Servers[0].String() != tc.broker || o.Username != tc.user || o.Password != tc.pass || (o.TLSConfig != nil) != tc.tls {
			t.Errorf("%s: broker %v user %q pass %q tls %t; want %s %q %q %t", tc.url, o.Servers, o.Username, o.Password, o.TLSConfig != nil, tc.broker, tc.user, tc.pass, tc.tls)
		}
	}
	for _, bad := range []string{"", "http://x:1", "mqtt://", "mqtt://u:hunter2@h:1/path", "mqtt://u:hunter2@h:1?q=1", "mqtt://u:hunter2@h:%zz"} {
		_, err := BrokerOptions(bad, TLS{})
		if err == nil {
			t.Errorf("%q: accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the error shows the password: %v", bad, err)
		}
	}
	if _, err := BrokerOptions("mqtt://h:1", TLS{CAFile: "ca.pem"}); err == nil {
		t.Error("TLS settings with a plain URL: accepted")
	}
	if _, err := BrokerOptions("mqtts://h:1", TLS{CAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil {
		t.Error("a missing CA file: accepted")
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	if _, err := BrokerOptions("mqtts://h:1", TLS{CAFile: notPEM}); err == nil {
		t.Error("a CA file without certificates: accepted")
	}
	if _, err := BrokerOptions("mqtts://h:1", TLS{CertFile: "c.pem"}); err == nil {
		t.Error("a client certificate without its key: accepted")
	}
}

func TestParseBrokerURLChecksThePort(t *testing.T) {
	for _, bad := range []string{"mqtt://u:hunter2@h:0", "mqtt://u:hunter2@h:", "mqtt://u:hunter2@h:65536", "mqtt://u:hunter2@h:99999"} {
		_, err := ParseBrokerURL(bad)
		if err == nil {
			t.Errorf("%q: accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the error shows the password: %v", bad, err)
		}
	}
	for _, good := range []string{"mqtt://h:1", "mqtts://h:65535", "ssl://[::1]"} {
		if _, err := ParseBrokerURL(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}

func TestBrokerURLWithPortAddsOnlyAMissingPort(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{in: "tcp://u:p@h", want: "tcp://u:p@h:1883"},
		{in: "SSL://[::1]", want: "ssl://[::1]:8883"},
		{in: "mqtts://u:p%2Fw@h:99", want: "mqtts://u:p%2Fw@h:99"}, // as written
		{in: "mqtt://h:", want: "mqtt://h:"},                       // rejected by ParseBrokerURL: as written
		{in: "http://h", want: "http://h"},
		{in: "", want: ""},
	} {
		if got := BrokerURLWithPort(tc.in); got != tc.want {
			t.Errorf("BrokerURLWithPort(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNewRefusesABadConfiguration(t *testing.T) {
	dev := &fakeDevice{}
	good := Config{BrokerURL: "mqtt://127.0.0.1:1883", ID: "cam-1", Device: dev}
	if _, err := New(good); err != nil {
		t.Fatalf("good configuration: %v", err)
	}
	bad := map[string]func(*Config){
		"no device":        func(c *Config) { c.Device = nil },
		"no id":            func(c *Config) { c.ID = "" },
		"id with a slash":  func(c *Config) { c.ID = "a/b" },
		"id with +":        func(c *Config) { c.ID = "a+" },
		"reserved id all":  func(c *Config) { c.ID = "all" },
		"reserved group":   func(c *Config) { c.ID = "group" },
		"group with #":     func(c *Config) { c.Groups = []string{"#"} },
		"prefix with $":    func(c *Config) { c.TopicPrefix = "$SYS" },
		"prefix with +":    func(c *Config) { c.TopicPrefix = "a/+" },
		"no broker":        func(c *Config) { c.BrokerURL = "" },
		"discovery prefix": func(c *Config) { c.Discovery.Prefix = "home/#" },
	}
	for name, edit := range bad {
		c := good
		edit(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestTopics(t *testing.T) {
	tp := Topics{Prefix: "site/cams"}
	if got := tp.Cmd("c1"); got != "site/cams/c1/cmd" {
		t.Errorf("Cmd = %s", got)
	}
	if got := tp.GroupCmd("hall"); got != "site/cams/group/hall/cmd" {
		t.Errorf("GroupCmd = %s", got)
	}
	if got := (Topics{}).AllCmd(); got != "lenscap/all/cmd" {
		t.Errorf("AllCmd = %s", got)
	}
	for topic, want := range map[string]string{
		"site/cams/c1/state":       "c1 state",
		"site/cams/c1/ack":         "c1 ack",
		"site/cams/all/cmd":        "",
		"site/cams/group/hall/cmd": "",
		"site/cams/c1/a/b":         "",
		"other/c1/state":           "",
		"site/cams//state":         "",
	} {
		id, leaf, ok := tp.Device(topic)
		got := ""
		if ok {
			got = id + " " + leaf
		}
		if got != want {
			t.Errorf("Device(%s) = %q, want %q", topic, got, want)
		}
	}
}

func TestStateAddsIDAndGroups(t *testing.T) {
	dev := &fakeDevice{st: device.Status{Seq: 7}}
	c, err := New(Config{BrokerURL: "mqtt://127.0.0.1:1", ID: "cam-1", Groups: []string{"hall", "hall", "yard"}, Device: dev})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(c.state(), &got)
	if got["id"] != "cam-1" || got["seq"] != 7.0 || got["uptime_seconds"] == nil || len(got["groups"].([]any)) != 2 {
		t.Errorf("default state %v", got)
	}
	c.cfg.State = func() any { return map[string]any{"board": "sim", "viewers": 2} }
	got = nil
	json.Unmarshal(c.state(), &got)
	if got["id"] != "cam-1" || got["board"] != "sim" || got["viewers"] != 2.0 || got["groups"] == nil {
		t.Errorf("state from Config.State %v", got)
	}
	c.cfg.State = func() any { return map[string]any{"id": "kept", "groups": []string{"own"}} }
	got = nil
	json.Unmarshal(c.state(), &got)
	if got["id"] != "kept" || got["groups"].([]any)[0] != "own" {
		t.Errorf("state's own id and groups were replaced: %v", got)
	}
}

func TestDiscoveryWiresSwitchesToTheContract(t *testing.T) {
	c, err := New(Config{BrokerURL: "mqtt://127.0.0.1:1", ID: "cam-1", Device: &fakeDevice{},
		Discovery: Discovery{Model: "Raspberry Pi 4", Version: "1.2"}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := c.discovery()
	want := DiscoveryTopics("", "cam-1")
	if len(msgs) != len(want) {
		t.Fatalf("%d discovery configs, want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		if m.topic != want[i] {
			t.Errorf("topic %s, want %s", m.topic, want[i])
		}
		var cfg map[string]any
		if err := json.Unmarshal(m.payload, &cfg); err != nil {
			t.Fatalf("%s: %v", m.topic, err)
		}
		if cfg["availability_topic"] != "lenscap/cam-1/availability" || cfg["state_topic"] != "lenscap/cam-1/state" ||
			cfg["unique_id"] == nil || cfg["value_template"] == nil {
			t.Errorf("%s: %v", m.topic, cfg)
		}
		if dev := cfg["device"].(map[string]any); dev["model"] != "Raspberry Pi 4" || dev["sw_version"] != "1.2" {
			t.Errorf("%s: device %v", m.topic, dev)
		}
		if !strings.Contains(m.topic, "/switch/") {
			continue
		}
		kind := "video"
		if strings.Contains(m.topic, "audio") {
			kind = "audio"
		}
		if cfg["command_topic"] != "lenscap/cam-1/cmd" {
			t.Errorf("%s: command topic %v", m.topic, cfg["command_topic"])
		}
		// The switch's payloads are commands the device accepts, on its kind only.
		for payload, private := range map[string]bool{cfg["payload_on"].(string): true, cfg["payload_off"].(string): false} {
			cmd, err := ParseCommand([]byte(payload), 0)
			if err != nil {
				t.Fatalf("%s: payload %s: %v", m.topic, payload, err)
			}
			ch, _ := cmd.Change(testNow)
			want, named := ch.Want(device.Kind(kind))
			other, otherNamed := ch.Want(device.KindAudio)
			if kind == "audio" {
				other, otherNamed = ch.Want(device.KindVideo)
			}
			if !named || want != private || otherNamed || other {
				t.Errorf("%s: payload %s does not set %s private=%t alone", m.topic, payload, kind, private)
			}
		}
	}
}

var testNow = time.Unix(1_800_000_000, 0)
