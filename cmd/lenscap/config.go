package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/settings"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/mqtt"
	"github.com/lenscap/lenscap/rtc"
)

// Config is the daemon's configuration (DESIGN.md, "External contracts: the command line").
//
// Every setting has three spellings, all from its one line in configSettings: a YAML key in the
// --config file (state_dir), an environment variable (LENSCAP_STATE_DIR) and a flag
// (--state-dir). loadConfig applies, each layer over the previous one: the defaults, the YAML
// file, the environment, the flags; then it fills the defaults that depend on other settings
// (ID, StateDir) and validates the result.
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
	// MQTTInsecure allows an mqtt:// broker without credentials beyond loopback (anyone on the
	// way could command the camera). Default false: refused.
	MQTTInsecure bool
	// MQTTSignalling lets viewers ask for WebRTC sessions through the broker (DESIGN.md, "MQTT
	// signalling"): a camera watchable from anywhere the broker is, with no inbound port.
	// Each session's hello carries the viewer's credential. Default false.
	MQTTSignalling bool
	// MQTTSignalURL, when set, gives MQTT signalling a broker connection of its own (an account
	// of its own, the same TLS files): viewers then cannot fill the connection commands arrive
	// on; required with a broker beyond loopback. Empty: signalling shares the mqtt connection.
	// Unused while MQTTSignalling is off. It is secret: log Redacted().
	MQTTSignalURL string
	// MQTTListen is where the simulated board's embedded broker listens when MQTT is empty:
	// a loopback host:port (port 0 picks one), or "off". Default 127.0.0.1:1883.
	MQTTListen string
	// ID is the device's id in MQTT topics, [A-Za-z0-9_-]{1,64}, neither "all" nor "group".
	// Default: the host name up to its first dot, other characters replaced by "_".
	ID string
	// Groups are the MQTT groups the device belongs to (lenscap/group/<group>/cmd); same
	// characters as ID. "g1,g2" in the environment and on the command line, a list in YAML.
	Groups []string
	// Token is a static bearer token with the control role (the owner's signed credentials are
	// the better choice: lenscap token show); empty: none. It is secret: log Redacted().
	Token string
	// TokenKeys are PEM files of Ed25519 public keys whose signed tokens the camera accepts
	// besides its own (a fleet's: lenscapctl token create signs with the private half).
	TokenKeys []string
	// TokenRevoked are names whose tokens are refused whatever their signature.
	TokenRevoked []string
	// TLSCert and TLSKey are the HTTPS certificate and key (PEM, reloaded on SIGHUP); both or
	// neither. Neither: a self-signed certificate made at first start on a real board, plain
	// HTTP on the simulated board.
	TLSCert, TLSKey string
	// Capture is "always" (the default, for now: the sources are open whenever their kind is
	// not private) or "on_demand" (open only while a viewer watches, closed CaptureLinger
	// after the last one left: the camera's LED is on only while someone watches).
	Capture       string
	CaptureLinger time.Duration
	// MaxViewers bounds the viewers, WebSocket, WHEP and MQTT signalling together. Default 16.
	// MaxViewersPerCredential bounds those of one credential's holder. Default 4.
	MaxViewers, MaxViewersPerCredential int
	// WSPing and WSIdle: a WebSocket viewer is pinged every WSPing and dropped when it has not
	// answered for WSIdle. Defaults 15s and 45s.
	WSPing, WSIdle time.Duration
	// MaxSDPBytes bounds an offer or an answer. Default 32768.
	MaxSDPBytes int
	// RateWHEP, RateWS and RateAPI limit each client (its IP address): "R/s,B",
	// R requests a second on average, B at once. Defaults 1/s,10; 1/s,10; 10/s,50.
	RateWHEP, RateWS, RateAPI string
	// RateSignal limits the messages of each MQTT signalling account: "R/s,B" (default 20/s,40);
	// all accounts together get max_viewers times as much.
	RateSignal string
	// MaxConns and MaxConnsPerClient bound the HTTP connections open at once, in all and per
	// client IP address. Defaults 256 and 32.
	MaxConns, MaxConnsPerClient int
	// BodyTimeout bounds the reading of a request's headers, and then of its body. Default 10s.
	BodyTimeout time.Duration
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
	// CameraPowerPin and MicPowerPin are the power interlock's output lines on GPIOChip,
	// driving load switches on the camera's and the microphone's supply: off (and the device's
	// absence read back) while the kind is private or idle, on before it opens. Empty or
	// "none": not wired. CameraPowerActive and MicPowerActive are the levels that power them:
	// "high" (the default) or "low".
	CameraPowerPin, MicPowerPin, CameraPowerActive, MicPowerActive string
	// USBAuthorize deauthorizes the USB device of a camera or microphone that has no power
	// line while it is private or idle (sysfs authorized=0: no driver, no /dev node). Default
	// false.
	USBAuthorize bool
	// PowerTimeout bounds the wait for a device to vanish after its power went off, and to
	// appear after it came on. Default 5s.
	PowerTimeout time.Duration
	// AudioCodec is "opus" (the default) or "pcmu" (G.711 μ-law).
	AudioCodec string
	// SimClip is an Annex-B H.264 file the simulated camera loops instead of its embedded test
	// pattern (30 fps, starting with an IDR, SPS/PPS before every IDR); empty: the test pattern.
	SimClip string
	// LiveKit is the SFU the camera publishes into (livekit_*); its URL empty: none.
	LiveKit LiveKit
	// ICE is the STUN and TURN servers for viewers off the camera's network (ice_*, turn_*).
	ICE ICE
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

	defaultListen    = "127.0.0.1:8080"
	defaultRootState = "/var/lib/lenscap"
	defaultDebounce  = 30 * time.Millisecond
	redactedMark     = "xxxxx" // as url.URL.Redacted
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
		TopicPrefix: mqtt.DefaultTopicPrefix,
		ButtonKinds: []string{"video", "audio"},
		ButtonMode:  "momentary", ButtonActive: "low", ButtonPull: "up", ButtonDebounce: defaultDebounce,
		PrivacyLEDActive: "high", LiveLEDActive: "high",
		CameraPowerActive: "high", MicPowerActive: "high", PowerTimeout: 5 * time.Second,
		ICE:        ICE{TTL: 24 * time.Hour, Policy: "all"},
		AudioCodec: "opus", Capture: "on_demand", CaptureLinger: device.DefaultLinger,
		MaxViewers: rtc.DefaultMaxViewers, MaxViewersPerCredential: rtc.DefaultMaxViewersPerHolder, WSPing: 15 * time.Second, WSIdle: 45 * time.Second,
		MaxSDPBytes: rtc.DefaultMaxSDPBytes, RateWHEP: "1/s,10", RateWS: "1/s,10", RateAPI: "10/s,50", RateSignal: "20/s,40",
		BodyTimeout: 10 * time.Second, MaxConns: 256, MaxConnsPerClient: 32,
		LogLevel:  "info",
		LogFormat: "text",
	}
}

// configSettings is the daemon's settings: each one's key, usage and field, once.
func configSettings() *settings.Table[Config] {
	broker := settings.BrokerSettings("MQTT broker `URL` (mqtt://user:password@host:1883, mqtts:// for TLS); empty: none",
		func(c *Config) settings.Broker {
			return settings.Broker{URL: &c.MQTT, TopicPrefix: &c.TopicPrefix, CA: &c.MQTTCA, Cert: &c.MQTTCert, Key: &c.MQTTKey}
		})
	return &settings.Table[Config]{Settings: slices.Concat(
		hostSettings(), broker, deviceSettings(), accessSettings(), limitSettings(), gpioSettings(), mediaSettings(),
		livekitSettings(), iceSettings())}
}

// configString is a string setting of Config.
var configString = settings.String[Config]

// hostSettings are the board, the listener, the state directory and the logs.
func hostSettings() []settings.Setting[Config] {
	return []settings.Setting[Config]{
		configString("board", "`board`: sim, auto or a board name (default sim; auto on linux/arm64)",
			func(c *Config) *string { return &c.Board }),
		configString("listen", "HTTP listen `address` host:port (default "+defaultListen+")",
			func(c *Config) *string { return &c.Listen }),
		configString("state_dir", "`directory` of the persisted privacy state (default /var/lib/lenscap as root on a real board, else $XDG_STATE_HOME/lenscap or ~/.local/state/lenscap)",
			func(c *Config) *string { return &c.StateDir }),
		configString("log_level", "log `level`: debug, info, warn or error (default info)",
			func(c *Config) *string { return &c.LogLevel }),
		configString("log_format", "log `format`: text or json (default text)",
			func(c *Config) *string { return &c.LogFormat }),
	}
}

// deviceSettings are the device's name, groups and access, and its embedded broker.
func deviceSettings() []settings.Setting[Config] {
	return []settings.Setting[Config]{
		configString("mqtt_listen", "`address` of the embedded MQTT broker the simulated board starts when mqtt is empty (default 127.0.0.1:1883; off: none)",
			func(c *Config) *string { return &c.MQTTListen }),
		configString("id", "device `id` in MQTT topics (default: the host name)",
			func(c *Config) *string { return &c.ID }),
		settings.List("groups", "MQTT `groups`, comma-separated",
			func(c *Config) *[]string { return &c.Groups }),
		settings.Bool("mqtt_insecure", "allow an mqtt:// broker without credentials beyond loopback",
			func(c *Config) *bool { return &c.MQTTInsecure }),
		settings.Bool("mqtt_signalling", "let viewers ask for WebRTC sessions through the MQTT broker (watch from anywhere)",
			func(c *Config) *bool { return &c.MQTTSignalling }),
		configString("mqtt_signal_url", "`URL` of MQTT signalling's own broker connection, with an account of its own (default: it shares mqtt's)",
			func(c *Config) *string { return &c.MQTTSignalURL }),
		configString("rate_signal", "MQTT signalling messages per viewer account: `R/s,BURST` (default 20/s,40)",
			func(c *Config) *string { return &c.RateSignal }),
		settings.Bool("remote_may_lift", "let MQTT and the HTTP API lift privacy engaged by the button",
			func(c *Config) *bool { return &c.RemoteMayLift }),
	}
}

// accessSettings are who may watch and who may change privacy.
func accessSettings() []settings.Setting[Config] {
	return []settings.Setting[Config]{
		configString("token", "static bearer `token` with the control role (prefer lenscap token show / create; flags show in ps)",
			func(c *Config) *string { return &c.Token }),
		settings.List("token_keys", "PEM `files` of Ed25519 public keys whose tokens are accepted too (a fleet's), comma-separated",
			func(c *Config) *[]string { return &c.TokenKeys }),
		settings.List("token_revoked", "`names` whose tokens are refused, comma-separated",
			func(c *Config) *[]string { return &c.TokenRevoked }),
		configString("tls_cert", "HTTPS certificate `file` (PEM, reloaded on SIGHUP; default on a real board: self-signed, made in the state directory)",
			func(c *Config) *string { return &c.TLSCert }),
		configString("tls_key", "HTTPS key `file` (PEM, with tls_cert)",
			func(c *Config) *string { return &c.TLSKey }),
	}
}

// limitSettings bound what viewers and clients may take.
func limitSettings() []settings.Setting[Config] {
	return []settings.Setting[Config]{
		settings.Int("max_viewers", "most `viewers` at once, WebSocket and WHEP together (default 16)",
			func(c *Config) *int { return &c.MaxViewers }),
		settings.Int("max_viewers_per_credential", "most `viewers` at once with one credential (default 4)",
			func(c *Config) *int { return &c.MaxViewersPerCredential }),
		settings.Duration("ws_ping", "ping a WebSocket viewer every `duration` (default 15s)",
			func(c *Config) *time.Duration { return &c.WSPing }),
		settings.Duration("ws_idle", "drop a WebSocket viewer silent for `duration` (default 45s)",
			func(c *Config) *time.Duration { return &c.WSIdle }),
		settings.Int("max_sdp_bytes", "largest SDP offer or answer in `bytes` (default 32768)",
			func(c *Config) *int { return &c.MaxSDPBytes }),
		configString("rate_whep", "WHEP requests per client: `R/s,BURST` (default 1/s,10)",
			func(c *Config) *string { return &c.RateWHEP }),
		configString("rate_ws", "WebSocket connections per client: `R/s,BURST` (default 1/s,10)",
			func(c *Config) *string { return &c.RateWS }),
		configString("rate_api", "API requests per client: `R/s,BURST` (default 10/s,50)",
			func(c *Config) *string { return &c.RateAPI }),
		settings.Int("max_conns", "most HTTP `connections` open at once (default 256)",
			func(c *Config) *int { return &c.MaxConns }),
		settings.Int("max_conns_per_client", "most HTTP `connections` open at once from one IP address (default 32)",
			func(c *Config) *int { return &c.MaxConnsPerClient }),
		settings.Duration("body_timeout", "`duration` a request's headers, and then its body, may take to arrive (default 10s)",
			func(c *Config) *time.Duration { return &c.BodyTimeout }),
	}
}

// gpioSettings are the privacy button's and the LEDs'.
func gpioSettings() []settings.Setting[Config] {
	return []settings.Setting[Config]{
		settings.List("button_kinds", "`kinds` the privacy button cuts: video,audio (default both)",
			func(c *Config) *[]string { return &c.ButtonKinds }),
		configString("gpio_chip", "GPIO `chip` of the button and LEDs: label, name (gpiochip0) or path (default: the board's)",
			func(c *Config) *string { return &c.GPIOChip }),
		configString("button_pin", "privacy button `line`: name (GPIO17) or offset (default: the board's; none: no button)",
			func(c *Config) *string { return &c.ButtonPin }),
		configString("button_mode", "`mode` of the privacy input: momentary (a press toggles) or latching (a switch: its position is the state)",
			func(c *Config) *string { return &c.ButtonMode }),
		configString("button_active", "`level` of a pressed button: low (to ground, with a pull-up; default) or high",
			func(c *Config) *string { return &c.ButtonActive }),
		configString("button_pull", "button line `bias`: up (default), down or none",
			func(c *Config) *string { return &c.ButtonPull }),
		settings.Duration("button_debounce", "`duration` a button level must last to count (default 30ms)",
			func(c *Config) *time.Duration { return &c.ButtonDebounce }),
		settings.Duration("button_hold", "hold `duration` after which a press toggles the microphone only (default 0: no hold gesture)",
			func(c *Config) *time.Duration { return &c.ButtonHold }),
		configString("privacy_led_pin", "privacy LED `line` (default: the board's; none: not wired)",
			func(c *Config) *string { return &c.PrivacyLEDPin }),
		configString("privacy_led_active", "`level` that lights the privacy LED: high (default) or low",
			func(c *Config) *string { return &c.PrivacyLEDActive }),
		configString("live_led_pin", "live LED `line`, lit while streaming to a viewer (default: the board's; none: not wired)",
			func(c *Config) *string { return &c.LiveLEDPin }),
		configString("live_led_active", "`level` that lights the live LED: high (default) or low",
			func(c *Config) *string { return &c.LiveLEDActive }),
		configString("camera_power_pin", "`line` switching the camera's power (interlock; default none)",
			func(c *Config) *string { return &c.CameraPowerPin }),
		configString("camera_power_active", "`level` that powers the camera: high (default) or low",
			func(c *Config) *string { return &c.CameraPowerActive }),
		configString("mic_power_pin", "`line` switching the microphone's power (interlock; default none)",
			func(c *Config) *string { return &c.MicPowerPin }),
		configString("mic_power_active", "`level` that powers the microphone: high (default) or low",
			func(c *Config) *string { return &c.MicPowerActive }),
		settings.Bool("usb_authorize", "deauthorize a USB camera or microphone with no power line while private or idle",
			func(c *Config) *bool { return &c.USBAuthorize }),
		settings.Duration("power_timeout", "`duration` a device may take to vanish after power off, or appear after power on (default 5s)",
			func(c *Config) *time.Duration { return &c.PowerTimeout }),
	}
}

// mediaSettings are the camera's, the encoder's and the microphone's.
func mediaSettings() []settings.Setting[Config] {
	return []settings.Setting[Config]{
		configString("capture", "when the sources are open: always (when not private) or on_demand (while a viewer watches)",
			func(c *Config) *string { return &c.Capture }),
		settings.Duration("capture_linger", "on demand, how long the sources stay open after the last viewer left (default 10s)",
			func(c *Config) *time.Duration { return &c.CaptureLinger }),
		configString("audio_codec", "audio `codec`: opus or pcmu (default opus)",
			func(c *Config) *string { return &c.AudioCodec }),
		configString("camera", "`camera`: csi-rpicam, v4l2, v4l2:/dev/videoN, sim or none (default: the board's)",
			func(c *Config) *string { return &c.Camera }),
		configString("encoder", "H.264 `encoder`: v4l2-m2m:auto, v4l2-m2m:/dev/videoN, software or auto (default: the board's)",
			func(c *Config) *string { return &c.Encoder }),
		configString("encoder_format", "hardware encoder's coded `format`: H264 (default) or FWHT (vicodec, for tests)",
			func(c *Config) *string { return &c.EncoderFormat }),
		configString("audio", "`microphone`: alsa:CARD,DEVICE, alsa:default, tone or none (default: the board's)",
			func(c *Config) *string { return &c.Audio }),
		configString("video_size", "video `size` WIDTHxHEIGHT of a real camera (default 1280x720)",
			func(c *Config) *string { return &c.VideoSize }),
		settings.Int("video_fps", "video frame `rate` of a real camera (default 30)",
			func(c *Config) *int { return &c.VideoFPS }),
		settings.Int("video_bitrate", "H.264 `bitrate` in bits per second (default 2000000)",
			func(c *Config) *int { return &c.VideoBitrate }),
		configString("sim_clip", "Annex-B H.264 `file` the simulated camera loops instead of its test pattern (scripts/make-testclip.sh makes one)",
			func(c *Config) *string { return &c.SimClip }),
	}
}

// loadConfig builds the daemon's configuration from the defaults, the YAML file named by
// --config or LENSCAP_CONFIG, the LENSCAP_* environment variables (read with getenv; an empty
// value counts as unset) and the flags in args (the command line without the program name),
// then validates it. For -h or --help it returns an error that wraps flag.ErrHelp and whose
// text is the usage; for --version, the version.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	return loadConfigOn(hostPlatform(), args, getenv)
}

func loadConfigOn(p platform, args []string, getenv func(string) string) (Config, error) {
	return loadCommandConfig(p, daemonUsage, args, getenv, nil)
}

// loadCommandConfig is loadConfig for a command that takes the daemon's configuration: its
// -h prints head(the default board) above the flags. own, when set, adds the command's own
// flags. It takes no other argument.
func loadCommandConfig(p platform, head func(board string) string, args []string, getenv func(string) string, own func(*flag.FlagSet)) (Config, error) {
	c, rest, err := loadCommandConfigArgs(p, head, args, getenv, own)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("config: unexpected argument %q (lenscap takes flags only; lenscap -h)", rest[0])
	}
	return c, err
}

// loadCommandConfigArgs is loadCommandConfig for a command that takes arguments after its
// flags (lenscap journal verify FILE): it returns them.
func loadCommandConfigArgs(p platform, head func(board string) string, args []string, getenv func(string) string, own func(*flag.FlagSet)) (Config, []string, error) {
	table := configSettings()
	fs := flag.NewFlagSet("lenscap", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cl := table.Flags(fs)
	if own != nil {
		own(fs)
	}
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return Config{}, nil, settings.Help(head(defaultConfig(p).Board), fs)
		}
		return Config{}, nil, fmt.Errorf("config: %w (lenscap -h lists the flags)", err)
	}
	if *showVersion {
		return Config{}, nil, settings.Version("lenscap", version)
	}
	c, err := loadLayers(p, cl, getenv)
	return c, fs.Args(), err
}

// loadLayers applies the file and the environment under the flags already parsed, derives the
// defaults and validates.
func loadLayers(p platform, cl *settings.CommandLine[Config], getenv func(string) string) (Config, error) {
	c := defaultConfig(p)
	file, err := cl.Load(&c, getenv)
	if err != nil {
		return Config{}, err
	}
	c.ConfigFile = file
	c.normalize()
	if err := c.deriveDefaults(p, getenv); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// configHelp is what -h says about the settings, below a command's own usage line.
func configHelp(board string) string {
	return fmt.Sprintf(`Each flag is also a key of the YAML --config file (--state-dir: state_dir) and an
environment variable (LENSCAP_STATE_DIR). Flags override the environment, which
overrides the file, which overrides the defaults. The default board here is %s.

`, board)
}
