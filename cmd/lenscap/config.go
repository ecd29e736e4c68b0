package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the daemon's configuration (DESIGN.md, "External contracts: the command line").
//
// Every setting has three spellings: a YAML key in the --config file (state_dir), an
// environment variable (LENSCAP_STATE_DIR) and a flag (--state-dir). loadConfig applies, each
// layer over the previous one: the defaults, the YAML file, the environment, the flags; then it
// fills the defaults that depend on other settings (ID, StateDir) and validates the result.
type Config struct {
	// Board is "sim" (the simulated board: test-pattern camera, test-tone microphone, simulated
	// button), "auto" (detected from /proc/device-tree/model) or a board name such as "rpi4".
	// Default: "auto" on linux/arm64, "sim" elsewhere.
	Board string
	// Listen is the HTTP listener's host:port; port 0 picks a free port. Default 127.0.0.1:8080.
	Listen string
	// StateDir holds the persisted privacy state. Default: /var/lib/lenscap when running as root
	// on a real board (Board != "sim"); otherwise $XDG_STATE_HOME/lenscap, or
	// $HOME/.local/state/lenscap when XDG_STATE_HOME is unset or not absolute.
	StateDir string
	// MQTT is the broker URL: mqtt:// or tcp:// (plain), mqtts:// or ssl:// (TLS), with the
	// credentials if any in its user information (mqtt://cam-1:secret@host:1883). A missing port
	// becomes 1883 (plain) or 8883 (TLS). Empty: no broker is configured (the simulated board
	// then starts an embedded one). It is secret: log Redacted().
	MQTT string
	// MQTTCA, MQTTCert and MQTTKey are PEM files for TLS with the broker: the CAs to trust
	// (default: the system's) and a client certificate and key for mutual TLS (both or none).
	MQTTCA, MQTTCert, MQTTKey string
	// MQTTListen is where the simulated board's embedded broker listens when MQTT is empty:
	// a loopback host:port (port 0 picks one), or "off". Default 127.0.0.1:1883.
	MQTTListen string
	// ID is the device's id in MQTT topics, [A-Za-z0-9_-]{1,64}, neither "all" nor "group".
	// Default: the host name up to its first dot, other characters replaced by "_".
	ID string
	// Groups are the MQTT groups the device belongs to (lenscap/group/<group>/cmd); same
	// characters as ID. "g1,g2" in the environment and on the command line, a list in YAML.
	Groups []string
	// Token is the bearer token that protects the HTTP API (all but "/"); empty: no token.
	// It is secret: log Redacted().
	Token string
	// TopicPrefix is the first level(s) of every MQTT topic. Default "lenscap".
	TopicPrefix string
	// RemoteMayLift allows MQTT and the HTTP API to lift privacy engaged by the button.
	// Default false: the button wins.
	RemoteMayLift bool
	// ButtonKinds are the kinds of media the privacy button cuts: "video", "audio" or both
	// (the default).
	ButtonKinds []string
	// GPIOChip is the GPIO chip of the button and LEDs: a label (pinctrl-bcm2711), a name
	// (gpiochip0) or a path. Empty: the board's. Required on the generic board.
	GPIOChip string
	// ButtonPin is the privacy button's line, by name (GPIO17) or offset (17) on GPIOChip.
	// Empty: the board's (GPIO17 on a Raspberry Pi); "none": no button.
	ButtonPin string
	// ButtonMode is "momentary" (a push button: a press toggles; the default) or "latching"
	// (a slide switch: its position is the state, read at boot too).
	ButtonMode string
	// ButtonActive is the level of a pressed button (a switch on "private"): "low" (the
	// default: wired to ground, with a pull-up) or "high".
	ButtonActive string
	// ButtonPull is the line's bias: "up" (the default), "down" or "none" (an external resistor).
	ButtonPull string
	// Camera, Encoder and Audio override the board's media: camera "csi-rpicam", "v4l2",
	// "v4l2:/dev/video0", "sim" or "none"; encoder "v4l2-m2m:auto", "v4l2-m2m:/dev/video11",
	// "software" or "auto"; audio "alsa:CARD,DEVICE", "alsa:default", "tone" or "none".
	// Empty: the board's. EncoderFormat is the hardware encoder's coded format, H264 (default)
	// or FWHT (vicodec, on the emulated board).
	Camera, Encoder, EncoderFormat, Audio string
	// VideoSize ("1280x720"), VideoFPS and VideoBitrate (bits per second) of a real camera;
	// empty or zero: 1280x720, 30, 2000000.
	VideoSize              string
	VideoFPS, VideoBitrate int
	// ButtonDebounce is how long a level must stay unchanged to count. Default 30ms.
	ButtonDebounce time.Duration
	// ButtonHold enables the hold gesture of a momentary button: held this long, a press
	// toggles the microphone only (and a short press acts at its release). 0 (the default): off.
	ButtonHold time.Duration
	// PrivacyLEDPin is the privacy LED's line (lit while any kind is private), LiveLEDPin the
	// live LED's (lit while media is sent to a viewer). Empty: the board's; "none": not wired.
	PrivacyLEDPin, LiveLEDPin string
	// PrivacyLEDActive and LiveLEDActive are the levels that light them: "high" (the default)
	// or "low".
	PrivacyLEDActive, LiveLEDActive string
	// AudioCodec is "opus" (the default) or "pcmu" (G.711 μ-law).
	AudioCodec string
	// SimClip is an Annex-B H.264 file the simulated camera loops instead of its embedded test
	// pattern (30 fps, starting with an IDR, SPS/PPS before every IDR); empty: the test pattern.
	SimClip string
	// LogLevel is "debug", "info" (the default), "warn" or "error".
	LogLevel string
	// LogFormat is "text" (the default) or "json".
	LogFormat string

	// ConfigFile is the YAML file the configuration was read from, "" if none. It is set by
	// loadConfig and is not itself a setting.
	ConfigFile string
}

// Values with a fixed meaning.
const (
	boardSim  = "sim"
	boardAuto = "auto"

	envPrefix         = "LENSCAP_"
	envConfig         = "LENSCAP_CONFIG"
	defaultListen     = "127.0.0.1:8080"
	defaultRootState  = "/var/lib/lenscap"
	defaultTopic      = "lenscap"
	maxConfigFileSize = 1 << 20
	defaultDebounce   = 30 * time.Millisecond
	redactedMark      = "xxxxx" // as url.URL.Redacted
)

// platform is what the defaults depend on; tests substitute their own.
type platform struct {
	goos, goarch string
	root         bool // effective uid 0
	hostname     func() (string, error)
	homeDir      func() (string, error) // when HOME is unset
}

func hostPlatform() platform {
	return platform{
		goos:     runtime.GOOS,
		goarch:   runtime.GOARCH,
		root:     os.Geteuid() == 0,
		hostname: os.Hostname,
		homeDir:  os.UserHomeDir,
	}
}

// defaultConfig is the first layer. ID and StateDir stay empty: they are derived at the end.
func defaultConfig(p platform) Config {
	board := boardSim
	if p.goos == "linux" && p.goarch == "arm64" {
		board = boardAuto
	}
	return Config{
		Board:       board,
		Listen:      defaultListen,
		MQTTListen:  "127.0.0.1:1883",
		TopicPrefix: defaultTopic,
		ButtonKinds: []string{"video", "audio"},
		ButtonMode:  "momentary", ButtonActive: "low", ButtonPull: "up", ButtonDebounce: defaultDebounce,
		PrivacyLEDActive: "high", LiveLEDActive: "high",
		AudioCodec: "opus",
		LogLevel:   "info",
		LogFormat:  "text",
	}
}

// setting is one configuration key. Its flag is the key with "-" for "_" (state-dir), its
// environment variable LENSCAP_ and the key in upper case (LENSCAP_STATE_DIR); fileConfig has
// the same key as its YAML tag.
type setting struct {
	key     string
	usage   string
	isBool  bool
	fromStr func(c *Config, v string) error
}

func settings() []setting {
	str := func(field func(*Config) *string) func(*Config, string) error {
		return func(c *Config, v string) error { *field(c) = v; return nil }
	}
	list := func(field func(*Config) *[]string) func(*Config, string) error {
		return func(c *Config, v string) error { *field(c) = splitList(v); return nil }
	}
	dur := func(field func(*Config) *time.Duration) func(*Config, string) error {
		return func(c *Config, v string) error {
			d, err := parseDuration(v)
			if err != nil {
				return err
			}
			*field(c) = d
			return nil
		}
	}
	num := func(field func(*Config) *int) func(*Config, string) error {
		return func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", v)
			}
			*field(c) = n
			return nil
		}
	}
	return []setting{
		{key: "board", usage: "`board`: sim, auto or a board name (default sim; auto on linux/arm64)",
			fromStr: str(func(c *Config) *string { return &c.Board })},
		{key: "listen", usage: "HTTP listen `address` host:port (default " + defaultListen + ")",
			fromStr: str(func(c *Config) *string { return &c.Listen })},
		{key: "state_dir", usage: "`directory` of the persisted privacy state (default /var/lib/lenscap as root on a real board, else $XDG_STATE_HOME/lenscap or ~/.local/state/lenscap)",
			fromStr: str(func(c *Config) *string { return &c.StateDir })},
		{key: "mqtt", usage: "MQTT broker `URL` (mqtt://user:password@host:1883, mqtts:// for TLS); empty: none",
			fromStr: str(func(c *Config) *string { return &c.MQTT })},
		{key: "mqtt_listen", usage: "`address` of the embedded MQTT broker the simulated board starts when mqtt is empty (default 127.0.0.1:1883; off: none)",
			fromStr: str(func(c *Config) *string { return &c.MQTTListen })},
		{key: "mqtt_ca", usage: "`file` of CA certificates for an mqtts:// broker (default: the system's)",
			fromStr: str(func(c *Config) *string { return &c.MQTTCA })},
		{key: "mqtt_cert", usage: "client certificate `file` for mutual TLS with the broker (with mqtt_key)",
			fromStr: str(func(c *Config) *string { return &c.MQTTCert })},
		{key: "mqtt_key", usage: "client key `file` for mutual TLS with the broker (with mqtt_cert)",
			fromStr: str(func(c *Config) *string { return &c.MQTTKey })},
		{key: "id", usage: "device `id` in MQTT topics (default: the host name)",
			fromStr: str(func(c *Config) *string { return &c.ID })},
		{key: "groups", usage: "MQTT `groups`, comma-separated",
			fromStr: list(func(c *Config) *[]string { return &c.Groups })},
		{key: "token", usage: "bearer `token` for the HTTP API (prefer LENSCAP_TOKEN or the file: flags show in ps)",
			fromStr: str(func(c *Config) *string { return &c.Token })},
		{key: "topic_prefix", usage: "MQTT topic `prefix` (default " + defaultTopic + ")",
			fromStr: str(func(c *Config) *string { return &c.TopicPrefix })},
		{key: "remote_may_lift", isBool: true, usage: "let MQTT and the HTTP API lift privacy engaged by the button",
			fromStr: func(c *Config, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return fmt.Errorf("%q is not a boolean (true or false)", v)
				}
				c.RemoteMayLift = b
				return nil
			}},
		{key: "button_kinds", usage: "`kinds` the privacy button cuts: video,audio (default both)",
			fromStr: list(func(c *Config) *[]string { return &c.ButtonKinds })},
		{key: "gpio_chip", usage: "GPIO `chip` of the button and LEDs: label, name (gpiochip0) or path (default: the board's)",
			fromStr: str(func(c *Config) *string { return &c.GPIOChip })},
		{key: "button_pin", usage: "privacy button `line`: name (GPIO17) or offset (default: the board's; none: no button)",
			fromStr: str(func(c *Config) *string { return &c.ButtonPin })},
		{key: "button_mode", usage: "`mode` of the privacy input: momentary (a press toggles) or latching (a switch: its position is the state)",
			fromStr: str(func(c *Config) *string { return &c.ButtonMode })},
		{key: "button_active", usage: "`level` of a pressed button: low (to ground, with a pull-up; default) or high",
			fromStr: str(func(c *Config) *string { return &c.ButtonActive })},
		{key: "button_pull", usage: "button line `bias`: up (default), down or none",
			fromStr: str(func(c *Config) *string { return &c.ButtonPull })},
		{key: "button_debounce", usage: "`duration` a button level must last to count (default 30ms)",
			fromStr: dur(func(c *Config) *time.Duration { return &c.ButtonDebounce })},
		{key: "button_hold", usage: "hold `duration` after which a press toggles the microphone only (default 0: no hold gesture)",
			fromStr: dur(func(c *Config) *time.Duration { return &c.ButtonHold })},
		{key: "privacy_led_pin", usage: "privacy LED `line` (default: the board's; none: not wired)",
			fromStr: str(func(c *Config) *string { return &c.PrivacyLEDPin })},
		{key: "privacy_led_active", usage: "`level` that lights the privacy LED: high (default) or low",
			fromStr: str(func(c *Config) *string { return &c.PrivacyLEDActive })},
		{key: "live_led_pin", usage: "live LED `line`, lit while streaming to a viewer (default: the board's; none: not wired)",
			fromStr: str(func(c *Config) *string { return &c.LiveLEDPin })},
		{key: "live_led_active", usage: "`level` that lights the live LED: high (default) or low",
			fromStr: str(func(c *Config) *string { return &c.LiveLEDActive })},
		{key: "audio_codec", usage: "audio `codec`: opus or pcmu (default opus)",
			fromStr: str(func(c *Config) *string { return &c.AudioCodec })},
		{key: "camera", usage: "`camera`: csi-rpicam, v4l2, v4l2:/dev/videoN, sim or none (default: the board's)",
			fromStr: str(func(c *Config) *string { return &c.Camera })},
		{key: "encoder", usage: "H.264 `encoder`: v4l2-m2m:auto, v4l2-m2m:/dev/videoN, software or auto (default: the board's)",
			fromStr: str(func(c *Config) *string { return &c.Encoder })},
		{key: "encoder_format", usage: "hardware encoder's coded `format`: H264 (default) or FWHT (vicodec, for tests)",
			fromStr: str(func(c *Config) *string { return &c.EncoderFormat })},
		{key: "audio", usage: "`microphone`: alsa:CARD,DEVICE, alsa:default, tone or none (default: the board's)",
			fromStr: str(func(c *Config) *string { return &c.Audio })},
		{key: "video_size", usage: "video `size` WIDTHxHEIGHT of a real camera (default 1280x720)",
			fromStr: str(func(c *Config) *string { return &c.VideoSize })},
		{key: "video_fps", usage: "video frame `rate` of a real camera (default 30)",
			fromStr: num(func(c *Config) *int { return &c.VideoFPS })},
		{key: "video_bitrate", usage: "H.264 `bitrate` in bits per second (default 2000000)",
			fromStr: num(func(c *Config) *int { return &c.VideoBitrate })},
		{key: "sim_clip", usage: "Annex-B H.264 `file` the simulated camera loops instead of its test pattern (scripts/make-testclip.sh makes one)",
			fromStr: str(func(c *Config) *string { return &c.SimClip })},
		{key: "log_level", usage: "log `level`: debug, info, warn or error (default info)",
			fromStr: str(func(c *Config) *string { return &c.LogLevel })},
		{key: "log_format", usage: "log `format`: text or json (default text)",
			fromStr: str(func(c *Config) *string { return &c.LogFormat })},
	}
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }
func envName(key string) string  { return envPrefix + strings.ToUpper(key) }

// fileConfig is the YAML file: a nil field is a key the file does not set.
type fileConfig struct {
	Board            *string     `yaml:"board"`
	Listen           *string     `yaml:"listen"`
	StateDir         *string     `yaml:"state_dir"`
	MQTT             *string     `yaml:"mqtt"`
	MQTTListen       *string     `yaml:"mqtt_listen"`
	MQTTCA           *string     `yaml:"mqtt_ca"`
	MQTTCert         *string     `yaml:"mqtt_cert"`
	MQTTKey          *string     `yaml:"mqtt_key"`
	ID               *string     `yaml:"id"`
	Groups           *stringList `yaml:"groups"`
	Token            *string     `yaml:"token"`
	TopicPrefix      *string     `yaml:"topic_prefix"`
	RemoteMayLift    *bool       `yaml:"remote_may_lift"`
	ButtonKinds      *stringList `yaml:"button_kinds"`
	GPIOChip         *string     `yaml:"gpio_chip"`
	ButtonPin        *string     `yaml:"button_pin"`
	ButtonMode       *string     `yaml:"button_mode"`
	ButtonActive     *string     `yaml:"button_active"`
	ButtonPull       *string     `yaml:"button_pull"`
	ButtonDebounce   *duration   `yaml:"button_debounce"`
	ButtonHold       *duration   `yaml:"button_hold"`
	PrivacyLEDPin    *string     `yaml:"privacy_led_pin"`
	PrivacyLEDActive *string     `yaml:"privacy_led_active"`
	LiveLEDPin       *string     `yaml:"live_led_pin"`
	LiveLEDActive    *string     `yaml:"live_led_active"`
	AudioCodec       *string     `yaml:"audio_codec"`
	Camera           *string     `yaml:"camera"`
	Encoder          *string     `yaml:"encoder"`
	EncoderFormat    *string     `yaml:"encoder_format"`
	Audio            *string     `yaml:"audio"`
	VideoSize        *string     `yaml:"video_size"`
	VideoFPS         *int        `yaml:"video_fps"`
	VideoBitrate     *int        `yaml:"video_bitrate"`
	SimClip          *string     `yaml:"sim_clip"`
	LogLevel         *string     `yaml:"log_level"`
	LogFormat        *string     `yaml:"log_format"`
}

func (f *fileConfig) applyTo(c *Config) {
	setStr := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setStr(&c.Board, f.Board)
	setStr(&c.Listen, f.Listen)
	setStr(&c.StateDir, f.StateDir)
	setStr(&c.MQTTListen, f.MQTTListen)
	setStr(&c.SimClip, f.SimClip)
	setStr(&c.MQTTCA, f.MQTTCA)
	setStr(&c.MQTTCert, f.MQTTCert)
	setStr(&c.MQTTKey, f.MQTTKey)
	setStr(&c.MQTT, f.MQTT)
	setStr(&c.ID, f.ID)
	setStr(&c.Token, f.Token)
	setStr(&c.TopicPrefix, f.TopicPrefix)
	setStr(&c.AudioCodec, f.AudioCodec)
	setStr(&c.Camera, f.Camera)
	setStr(&c.Encoder, f.Encoder)
	setStr(&c.EncoderFormat, f.EncoderFormat)
	setStr(&c.Audio, f.Audio)
	setStr(&c.VideoSize, f.VideoSize)
	if f.VideoFPS != nil {
		c.VideoFPS = *f.VideoFPS
	}
	if f.VideoBitrate != nil {
		c.VideoBitrate = *f.VideoBitrate
	}
	setStr(&c.GPIOChip, f.GPIOChip)
	setStr(&c.ButtonPin, f.ButtonPin)
	setStr(&c.ButtonMode, f.ButtonMode)
	setStr(&c.ButtonActive, f.ButtonActive)
	setStr(&c.ButtonPull, f.ButtonPull)
	setStr(&c.PrivacyLEDPin, f.PrivacyLEDPin)
	setStr(&c.PrivacyLEDActive, f.PrivacyLEDActive)
	setStr(&c.LiveLEDPin, f.LiveLEDPin)
	setStr(&c.LiveLEDActive, f.LiveLEDActive)
	if f.ButtonDebounce != nil {
		c.ButtonDebounce = time.Duration(*f.ButtonDebounce)
	}
	if f.ButtonHold != nil {
		c.ButtonHold = time.Duration(*f.ButtonHold)
	}
	setStr(&c.LogLevel, f.LogLevel)
	setStr(&c.LogFormat, f.LogFormat)
	if f.Groups != nil {
		c.Groups = []string(*f.Groups)
	}
	if f.ButtonKinds != nil {
		c.ButtonKinds = []string(*f.ButtonKinds)
	}
	if f.RemoteMayLift != nil {
		c.RemoteMayLift = *f.RemoteMayLift
	}
}

// stringList is a YAML list of strings; a single string is read as a comma-separated list.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*l = splitList(s)
		return nil
	case yaml.SequenceNode:
		var ss []string
		if err := n.Decode(&ss); err != nil {
			return err
		}
		*l = ss
		return nil
	}
	return fmt.Errorf("line %d: want a list of strings", n.Line)
}

// duration is a YAML duration: a string such as "30ms" or "2s" (0 is 0).
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = duration(v)
	return nil
}

// parseDuration reads a duration such as "30ms", "1.5s"; "0" is zero.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30ms, 2s)", s)
	}
	return d, nil
}

// splitList splits "a, b,,c" into [a b c].
func splitList(s string) []string {
	out := []string{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// loadConfig builds the configuration from the defaults, the YAML file named by --config or
// LENSCAP_CONFIG, the LENSCAP_* environment variables (read with getenv; an empty value counts
// as unset) and the flags in args (the command line without the program name), then validates
// it. For -h or --help it returns an error that wraps flag.ErrHelp and whose text is the usage.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	return loadConfigOn(hostPlatform(), args, getenv)
}

func loadConfigOn(p platform, args []string, getenv func(string) string) (Config, error) {
	all := settings()
	flags, configFile, err := parseFlags(p, all, args)
	if err != nil {
		return Config{}, err
	}
	c := defaultConfig(p)
	if configFile == "" {
		configFile = getenv(envConfig)
	}
	if configFile != "" {
		if err := loadYAMLFile(configFile, &c); err != nil {
			return Config{}, err
		}
		c.ConfigFile = configFile
	}
	for _, s := range all {
		if v := getenv(envName(s.key)); v != "" {
			if err := s.fromStr(&c, v); err != nil {
				return Config{}, fmt.Errorf("config: %s: environment %s: %w", s.key, envName(s.key), err)
			}
		}
	}
	for _, f := range flags {
		if err := f.s.fromStr(&c, f.value); err != nil {
			return Config{}, fmt.Errorf("config: %s: flag --%s: %w", f.s.key, flagName(f.s.key), err)
		}
	}
	c.normalize()
	if err := c.deriveDefaults(p, getenv); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

type flagValue struct {
	s     setting
	value string
}

// helpError is returned for -h: its text is the usage.
type helpError struct{ usage string }

func (e *helpError) Error() string { return e.usage }
func (e *helpError) Unwrap() error { return flag.ErrHelp }

// parseFlags parses args and returns the settings they set, in order, to be applied after the
// environment, and the --config value.
func parseFlags(p platform, all []setting, args []string) ([]flagValue, string, error) {
	fs := flag.NewFlagSet("lenscap", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var configFile string
	fs.StringVar(&configFile, "config", "", "YAML configuration `file` (also "+envConfig+")")
	var set []flagValue
	for _, s := range all {
		record := func(v string) error { set = append(set, flagValue{s, v}); return nil }
		if s.isBool {
			fs.BoolFunc(flagName(s.key), s.usage, record)
		} else {
			fs.Func(flagName(s.key), s.usage, record)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, "", &helpError{usage: usage(fs, defaultConfig(p).Board)}
		}
		return nil, "", fmt.Errorf("config: %w (lenscap -h lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return nil, "", fmt.Errorf("config: unexpected argument %q (lenscap takes flags only)", fs.Arg(0))
	}
	return set, configFile, nil
}

func usage(fs *flag.FlagSet, board string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "usage: lenscap [flags]\n\n")
	fmt.Fprintf(&b, "Each flag is also a key of the YAML --config file (--state-dir: state_dir) and an\n")
	fmt.Fprintf(&b, "environment variable (LENSCAP_STATE_DIR). Flags override the environment, which\n")
	fmt.Fprintf(&b, "overrides the file, which overrides the defaults. The default board here is %s.\n\n", board)
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return b.String()
}

// loadYAMLFile applies the YAML file at path to c.
func loadYAMLFile(path string, c *Config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileSize+1))
	if err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	if len(data) > maxConfigFileSize {
		return fmt.Errorf("config: %s: larger than %d bytes", path, maxConfigFileSize)
	}
	return loadYAML(data, path, c)
}

// loadYAML applies the YAML document data, read from name, to c. Unknown keys are errors.
func loadYAML(data []byte, name string, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f fileConfig
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) { // empty, or comments only
			return nil
		}
		return fmt.Errorf("config: %s: %s", name, yamlErrorText(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %s: want one YAML document", name)
	}
	f.applyTo(c)
	return nil
}

var unknownFieldRE = regexp.MustCompile(`field (.+) not found in type \S+`)

// yamlErrorText rewrites yaml.v3's "field foo not found in type main.fileConfig" as
// `unknown key "foo"` with the list of known keys.
func yamlErrorText(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	msgs := make([]string, len(te.Errors))
	unknown := false
	for i, m := range te.Errors {
		msgs[i] = unknownFieldRE.ReplaceAllStringFunc(m, func(s string) string {
			unknown = true
			return fmt.Sprintf("unknown key %q", unknownFieldRE.FindStringSubmatch(s)[1])
		})
	}
	text := strings.Join(msgs, "; ")
	if unknown {
		keys := make([]string, 0, len(settings()))
		for _, s := range settings() {
			keys = append(keys, s.key)
		}
		text += " (known keys: " + strings.Join(keys, ", ") + ")"
	}
	return text
}
