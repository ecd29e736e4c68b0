package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lenscap/lenscap/mqtt"
	"gopkg.in/yaml.v3"
)

// config is how lenscapctl reaches the broker. Each setting is a YAML key of the --config file
// (mqtt), an environment variable (LENSCAP_MQTT) and a flag (--mqtt); flags override the
// environment, which overrides the file. The keys are those of lenscap's own configuration.
type config struct {
	MQTT        string        // broker URL with the operator's credentials
	TopicPrefix string        // topic prefix
	CA          string        // PEM CA file for mqtts://
	Cert, Key   string        // PEM client certificate and key (mTLS)
	Timeout     time.Duration // how long to wait for acks (and for the broker)
}

const defaultBroker = "mqtt://127.0.0.1:1883" // the embedded broker of `make run`

// setting is one key of config.
type setting struct {
	key, usage string
	set        func(c *config, v string) error
}

func settings() []setting {
	str := func(f func(*config) *string) func(*config, string) error {
		return func(c *config, v string) error { *f(c) = strings.TrimSpace(v); return nil }
	}
	return []setting{
		{"mqtt", "MQTT broker `URL` with the operator's credentials (mqtt://user:password@host:1883, mqtts:// for TLS; default " + defaultBroker + ")",
			str(func(c *config) *string { return &c.MQTT })},
		{"topic_prefix", "MQTT topic `prefix` (default " + mqtt.DefaultTopicPrefix + ")",
			str(func(c *config) *string { return &c.TopicPrefix })},
		{"mqtt_ca", "PEM `file` of the CAs of the broker's certificate (mqtts://)",
			str(func(c *config) *string { return &c.CA })},
		{"mqtt_cert", "PEM client certificate `file` (mTLS)",
			str(func(c *config) *string { return &c.Cert })},
		{"mqtt_key", "PEM client key `file` (mTLS)",
			str(func(c *config) *string { return &c.Key })},
		{"timeout", "how long to wait for acks (`duration`, default 5s)",
			func(c *config, v string) error {
				d, err := time.ParseDuration(strings.TrimSpace(v))
				if err != nil || d <= 0 {
					return fmt.Errorf("%q: want a positive duration such as 5s", v)
				}
				c.Timeout = d
				return nil
			}},
	}
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }
func envName(key string) string  { return "LENSCAP_" + strings.ToUpper(key) }

// invocation is a parsed command line.
type invocation struct {
	cfg     config
	command string
	args    []string // the words after the command
	video   bool
	audio   bool
	device  string
	group   string
	all     bool
	json    bool
	expire  time.Duration
}

// commandFlags are the flags each command accepts, besides the global ones.
var commandFlags = map[string][]string{
	"privacy": {"video", "audio", "device", "group", "all", "expire"},
	"state":   {"device", "all", "json"},
	"list":    {"json"},
}

// parseArgs reads the configuration (defaults, --config file, environment, flags) and the
// command. Flags may come before or after the command.
func parseArgs(args []string, getenv func(string) string) (*invocation, error) {
	inv := &invocation{}
	fs := flag.NewFlagSet("lenscapctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var configFile string
	fs.StringVar(&configFile, "config", "", "YAML configuration `file` (also LENSCAP_CONFIG)")
	type given struct {
		s setting
		v string
	}
	var globals []given
	for _, s := range settings() {
		fs.Func(flagName(s.key), s.usage+" (also "+envName(s.key)+")", func(v string) error {
			globals = append(globals, given{s, v})
			return nil
		})
	}
	fs.BoolVar(&inv.video, "video", false, "privacy: the video (with --audio: both; neither: both)")
	fs.BoolVar(&inv.audio, "audio", false, "privacy: the audio")
	fs.StringVar(&inv.device, "device", "", "the device `id`")
	fs.StringVar(&inv.group, "group", "", "privacy: the devices of `group`")
	fs.BoolVar(&inv.all, "all", false, "every device")
	fs.BoolVar(&inv.json, "json", false, "state, list: print JSON")
	fs.DurationVar(&inv.expire, "expire", 0, "privacy: devices refuse the command after this `duration` (e.g. when it waited in the session of an offline device); 0: never")

	var words []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpError{usage(fs)}
			}
			return nil, fmt.Errorf("%w (lenscapctl -h)", err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		words = append(words, rest[0])
		rest = rest[1:]
	}
	if len(words) == 0 {
		return nil, errors.New("no command (want privacy, state or list; lenscapctl -h)")
	}
	inv.command, inv.args = words[0], words[1:]
	allowed, ok := commandFlags[inv.command]
	if !ok {
		return nil, fmt.Errorf("unknown command %q (want privacy, state or list; lenscapctl -h)", inv.command)
	}
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains([]string{"video", "audio", "device", "group", "all", "json", "expire"}, f.Name) && !slices.Contains(allowed, f.Name) {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: %s not allowed here", inv.command, strings.Join(bad, ", "))
	}

	inv.cfg = config{MQTT: defaultBroker, Timeout: 5 * time.Second}
	if configFile == "" {
		configFile = getenv("LENSCAP_CONFIG")
	}
	if configFile != "" {
		if err := loadFile(configFile, &inv.cfg); err != nil {
			return nil, err
		}
	}
	for _, s := range settings() {
		if v := getenv(envName(s.key)); v != "" {
			if err := s.set(&inv.cfg, v); err != nil {
				return nil, fmt.Errorf("config: %s: environment %s: %w", s.key, envName(s.key), err)
			}
		}
	}
	for _, g := range globals {
		if err := g.s.set(&inv.cfg, g.v); err != nil {
			return nil, fmt.Errorf("config: %s: flag --%s: %w", g.s.key, flagName(g.s.key), err)
		}
	}
	if inv.cfg.TopicPrefix == "" {
		inv.cfg.TopicPrefix = mqtt.DefaultTopicPrefix
	}
	if err := mqtt.ValidTopicPrefix(inv.cfg.TopicPrefix); err != nil {
		return nil, fmt.Errorf("config: topic_prefix: %w", err)
	}
	if _, err := mqtt.ParseBrokerURL(inv.cfg.MQTT); err != nil {
		return nil, fmt.Errorf("config: mqtt: %w", err)
	}
	return inv, inv.check()
}

// check validates the command's words and flags.
func (inv *invocation) check() error {
	targets := 0
	for _, set := range []bool{inv.device != "", inv.group != "", inv.all} {
		if set {
			targets++
		}
	}
	if targets > 1 {
		return fmt.Errorf("%s: give one of --device, --group and --all", inv.command)
	}
	if inv.device != "" {
		if err := mqtt.ValidID(inv.device); err != nil {
			return fmt.Errorf("--device: %w", err)
		}
	}
	if inv.group != "" {
		if err := mqtt.ValidGroup(inv.group); err != nil {
			return fmt.Errorf("--group: %w", err)
		}
	}
	switch inv.command {
	case "privacy":
		if len(inv.args) != 1 || (inv.args[0] != "on" && inv.args[0] != "off") {
			return errors.New("privacy: want on or off: lenscapctl privacy on|off [--video] [--audio] (--device ID | --group G | --all)")
		}
		if targets == 0 {
			return errors.New("privacy: say which devices: --device ID, --group G or --all")
		}
		if inv.expire < 0 {
			return errors.New("privacy: --expire: want a positive duration")
		}
	default:
		if len(inv.args) > 0 {
			return fmt.Errorf("%s: unexpected %q", inv.command, inv.args[0])
		}
	}
	return nil
}

// tls is the TLS part of the configuration, for mqtt.BrokerOptions.
func (c config) tls() mqtt.TLS {
	return mqtt.TLS{CAFile: c.CA, CertFile: c.Cert, KeyFile: c.Key}
}

// fileConfig is the YAML file: lenscap's keys; the keys lenscapctl does not use are ignored,
// so that one file can serve both.
type fileConfig struct {
	MQTT        *string `yaml:"mqtt"`
	TopicPrefix *string `yaml:"topic_prefix"`
	CA          *string `yaml:"mqtt_ca"`
	Cert        *string `yaml:"mqtt_cert"`
	Key         *string `yaml:"mqtt_key"`
	Timeout     *string `yaml:"timeout"`
}

func loadFile(path string, c *config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	var fc fileConfig
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %s: %v", path, err)
	}
	for key, v := range map[string]*string{"mqtt": fc.MQTT, "topic_prefix": fc.TopicPrefix, "mqtt_ca": fc.CA,
		"mqtt_cert": fc.Cert, "mqtt_key": fc.Key, "timeout": fc.Timeout} {
		if v == nil {
			continue
		}
		for _, s := range settings() {
			if s.key == key {
				if err := s.set(c, *v); err != nil {
					return fmt.Errorf("config: %s: %s: %w", path, key, err)
				}
			}
		}
	}
	return nil
}

// helpError is returned for -h: its text is the usage.
type helpError struct{ usage string }

func (e *helpError) Error() string { return e.usage }
func (e *helpError) Unwrap() error { return flag.ErrHelp }

func usage(fs *flag.FlagSet) string {
	var b bytes.Buffer
	b.WriteString(`usage:
  lenscapctl [flags] privacy on|off [--video] [--audio] (--device ID | --group G | --all)
  lenscapctl [flags] state [--device ID | --all] [--json]
  lenscapctl [flags] list [--json]

privacy on makes the kinds named private (cuts them), off lifts their privacy; neither --video
nor --audio means both. It waits for every device's ack, prints which devices acked ok, refused
(with why) or stayed silent, and fails unless all acked ok. The devices of a group or of --all
are those whose retained state the broker holds.
state prints the retained state of a device (or of all); list lists the devices known to the
broker with their availability.

Flags may come before or after the command. Each broker setting is also a key of the YAML
--config file (mqtt, topic_prefix, mqtt_ca, mqtt_cert, mqtt_key, timeout) and an environment
variable (LENSCAP_MQTT, ...); flags override the environment, which overrides the file.

`)
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return b.String()
}
