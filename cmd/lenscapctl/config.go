package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/settings"
	"github.com/lenscap/lenscap/mqtt"
)

// config is how lenscapctl reaches the broker. Each setting is a YAML key of the --config file
// (mqtt), an environment variable (LENSCAP_MQTT) and a flag (--mqtt); flags override the
// environment, which overrides the file. The keys are those of lenscap's own configuration,
// and the file may be lenscap's: the keys lenscapctl does not use are ignored.
type config struct {
	MQTT        string        // broker URL with the operator's credentials
	TopicPrefix string        // topic prefix
	CA          string        // PEM CA file for mqtts://
	Cert, Key   string        // PEM client certificate and key (mTLS)
	Timeout     time.Duration // how long to wait for acks (and for the broker)
}

const defaultBroker = "mqtt://127.0.0.1:1883" // the embedded broker of `make run`

// configSettings is lenscapctl's settings: the broker's, as lenscap's, and the timeout.
func configSettings() *settings.Table[config] {
	broker := settings.BrokerSettings("MQTT broker `URL` with the operator's credentials (mqtt://user:password@host:1883, mqtts:// for TLS; default "+defaultBroker+")",
		func(c *config) settings.Broker {
			return settings.Broker{URL: &c.MQTT, TopicPrefix: &c.TopicPrefix, CA: &c.CA, Cert: &c.Cert, Key: &c.Key}
		})
	timeout := settings.Duration("timeout", "how long to wait for acks (`duration`, default 5s)",
		func(c *config) *time.Duration { return &c.Timeout })
	return &settings.Table[config]{IgnoreUnknownKeys: true, Settings: append(broker, timeout)}
}

// loadConfig applies to the defaults the file, the environment and the flags of cl, then
// checks the result.
func loadConfig(cl *settings.CommandLine[config], getenv func(string) string) (config, error) {
	c := config{MQTT: defaultBroker, Timeout: 5 * time.Second}
	if _, err := cl.Load(&c, getenv); err != nil {
		return config{}, err
	}
	for _, p := range []*string{&c.MQTT, &c.TopicPrefix, &c.CA, &c.Cert, &c.Key} {
		*p = strings.TrimSpace(*p)
	}
	if c.TopicPrefix == "" {
		c.TopicPrefix = mqtt.DefaultTopicPrefix
	}
	if err := mqtt.ValidTopicPrefix(c.TopicPrefix); err != nil {
		return config{}, fmt.Errorf("config: topic_prefix: %w", err)
	}
	if _, err := mqtt.ParseBrokerURL(c.MQTT); err != nil {
		return config{}, fmt.Errorf("config: %w", err) // mqtt's errors name the setting
	}
	if c.Timeout <= 0 {
		return config{}, fmt.Errorf("config: timeout: %s: want a positive duration such as 5s", c.Timeout)
	}
	return c, nil
}

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

// addFlags registers the commands' flags on fs.
func (inv *invocation) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&inv.video, "video", false, "privacy: the video (with --audio: both; neither: both)")
	fs.BoolVar(&inv.audio, "audio", false, "privacy: the audio")
	fs.StringVar(&inv.device, "device", "", "the device `id`")
	fs.StringVar(&inv.group, "group", "", "privacy: the devices of `group`")
	fs.BoolVar(&inv.all, "all", false, "every device")
	fs.BoolVar(&inv.json, "json", false, "state, list: print JSON")
	fs.DurationVar(&inv.expire, "expire", time.Minute, "privacy: devices refuse the command after this `duration`, so that a command waiting in an offline device's session cannot undo a newer change when it comes back; 0: never")
}

// parseArgs reads the configuration (defaults, --config file, environment, flags) and the
// command. Flags may come before or after the command. For -h it returns a
// *settings.HelpError with the usage, for --version one with the version.
func parseArgs(args []string, getenv func(string) string) (*invocation, error) {
	inv := &invocation{}
	fs := flag.NewFlagSet("lenscapctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cl := configSettings().Flags(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	inv.addFlags(fs)
	words, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if *showVersion {
		return nil, settings.Version("lenscapctl", version)
	}
	if err := inv.setCommand(fs, words); err != nil {
		return nil, err
	}
	if inv.cfg, err = loadConfig(cl, getenv); err != nil {
		return nil, err
	}
	return inv, inv.check()
}

// parseInterspersed parses the flags of args wherever they are, and returns the other words.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var words []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, settings.Help(usageHead, fs)
			}
			return nil, fmt.Errorf("%w (lenscapctl -h)", err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			return words, nil
		}
		words = append(words, rest[0])
		rest = rest[1:]
	}
}

// setCommand sets the command and its words, and checks that the flags given are its own.
func (inv *invocation) setCommand(fs *flag.FlagSet, words []string) error {
	if len(words) == 0 {
		return errors.New("no command (want privacy, state, list, view or token; lenscapctl -h)")
	}
	inv.command, inv.args = words[0], words[1:]
	allowed, ok := commandFlags[inv.command]
	if !ok {
		return fmt.Errorf("unknown command %q (want privacy, state, list, view or token; lenscapctl -h)", inv.command)
	}
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		if isCommandFlag(f.Name) && !slices.Contains(allowed, f.Name) {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return fmt.Errorf("%s: %s not allowed here", inv.command, strings.Join(bad, ", "))
	}
	return nil
}

// isCommandFlag reports whether name is a flag of some command (not a global one).
func isCommandFlag(name string) bool {
	for _, flags := range commandFlags {
		if slices.Contains(flags, name) {
			return true
		}
	}
	return false
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

// usageHead is the head of `lenscapctl -h`, above the flags.
const usageHead = `usage:
  lenscapctl [flags] privacy on|off [--video] [--audio] (--device ID | --group G | --all)
  lenscapctl [flags] state [--device ID | --all] [--json]
  lenscapctl [flags] list [--json]
  lenscapctl [flags] view --device ID [--for D] [--json] [--relay]   (lenscapctl view -h)
  lenscapctl token keygen|create ...   (signed tokens for viewers: lenscapctl token -h)

privacy on makes the kinds named private (cuts them), off lifts their privacy; neither --video
nor --audio means both. It waits for every device's ack, prints which devices acked ok, refused
(with why) or stayed silent, and fails unless all acked ok. The devices of a group or of --all
are those whose retained state the broker holds.
state prints the retained state of a device (or of all); list lists the devices known to the
broker with their availability. view watches a camera through the broker (MQTT signalling): a
headless WebRTC viewer that prints what it receives, one line per event.

Flags may come before or after the command. Each broker setting is also a key of the YAML
--config file (mqtt, topic_prefix, mqtt_ca, mqtt_cert, mqtt_key, timeout) and an environment
variable (LENSCAP_MQTT, ...); flags override the environment, which overrides the file. The
file may be lenscap's: the keys lenscapctl does not use are ignored.

`
