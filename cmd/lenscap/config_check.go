package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// normalize trims the values, lower-cases the enumerations, drops empty and repeated list
// entries and adds the MQTT URL's default port.
func (c *Config) normalize() {
	for _, p := range []*string{&c.Board, &c.Listen, &c.StateDir, &c.MQTT, &c.ID, &c.Token,
		&c.TopicPrefix, &c.AudioCodec, &c.LogLevel, &c.LogFormat, &c.GPIOChip, &c.ButtonPin, &c.ButtonMode,
		&c.ButtonActive, &c.ButtonPull, &c.PrivacyLEDPin, &c.PrivacyLEDActive, &c.LiveLEDPin, &c.LiveLEDActive} {
		*p = strings.TrimSpace(*p)
	}
	for _, p := range []*string{&c.Board, &c.AudioCodec, &c.LogLevel, &c.LogFormat, &c.ButtonMode,
		&c.ButtonActive, &c.ButtonPull, &c.PrivacyLEDActive, &c.LiveLEDActive} {
		*p = strings.ToLower(*p)
	}
	c.Groups = cleanList(c.Groups, false)
	c.ButtonKinds = cleanList(c.ButtonKinds, true)
	c.MQTT = withDefaultPort(c.MQTT)
}

func cleanList(in []string, lower bool) []string {
	out := []string{}
	for _, s := range in {
		s = strings.TrimSpace(s)
		if lower {
			s = strings.ToLower(s)
		}
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

var mqttDefaultPorts = map[string]string{"mqtt": "1883", "tcp": "1883", "mqtts": "8883", "ssl": "8883"}

// withDefaultPort adds the scheme's port to an MQTT URL that has none (paho dials the URL's
// host as it is). Anything else is left for Validate.
func withDefaultPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Port() != "" || strings.HasSuffix(u.Host, ":") {
		return raw
	}
	port, ok := mqttDefaultPorts[u.Scheme]
	if !ok {
		return raw
	}
	u.Host = net.JoinHostPort(u.Hostname(), port)
	return u.String()
}

// deriveDefaults fills ID and StateDir when no layer set them.
func (c *Config) deriveDefaults(p platform, getenv func(string) string) error {
	if c.ID == "" {
		name, err := p.hostname()
		if err != nil {
			name = ""
		}
		c.ID = idFromHostname(name)
	}
	if c.StateDir != "" {
		return nil
	}
	if p.root && c.Board != boardSim {
		c.StateDir = defaultRootState
		return nil
	}
	if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		c.StateDir = filepath.Join(x, "lenscap")
		return nil
	}
	home := getenv("HOME")
	if home == "" && p.homeDir != nil {
		home, _ = p.homeDir()
	}
	if home == "" {
		return errors.New("config: state_dir: no default (neither XDG_STATE_HOME nor HOME is set): set --state-dir")
	}
	c.StateDir = filepath.Join(home, ".local", "state", "lenscap")
	return nil
}

var (
	topicNameRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	topicLevelRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	// gpioLineRE is a GPIO line's name or offset; gpioChipRE a chip's label, name or path.
	gpioLineRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)
	gpioChipRE  = regexp.MustCompile(`^[A-Za-z0-9_./:-]{1,64}$`)
	boardNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	hostnameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
	// reservedIDs are topic levels that lenscap/<id>/... would collide with.
	reservedIDs = []string{"all", "group"}
)

// idFromHostname makes a device id of a host name: up to its first dot, characters other than
// [A-Za-z0-9_-] replaced by "_", at most 64 of them; "lenscap" if nothing is left.
func idFromHostname(name string) string {
	name, _, _ = strings.Cut(name, ".")
	id := []rune(strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return r
		}
		return '_'
	}, name))
	if len(id) > 64 {
		id = id[:64]
	}
	switch s := string(id); {
	case s == "":
		return "lenscap"
	case slices.Contains(reservedIDs, s):
		return "lenscap-" + s
	default:
		return s
	}
}

// Validate reports every invalid setting, one "config: key: problem" line each.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: "+format, append([]any{key}, args...)...))
	}
	if c.Board != boardSim && c.Board != boardAuto && !boardNameRE.MatchString(c.Board) {
		bad("board", "%q: want sim, auto or a board name of [a-z0-9._-]", c.Board)
	}
	if err := checkListen(c.Listen); err != nil {
		bad("listen", "%q: %v", c.Listen, err)
	}
	if c.StateDir == "" || strings.ContainsRune(c.StateDir, 0) {
		bad("state_dir", "%q: want a directory", c.StateDir)
	}
	if err := checkMQTTURL(c.MQTT); err != nil {
		bad("mqtt", "%v", err)
	}
	if c.VideoSize != "" {
		if _, _, err := parseSize(c.VideoSize); err != nil {
			bad("video_size", "%q: %v", c.VideoSize, err)
		}
	}
	if c.VideoFPS < 0 || c.VideoFPS > 240 {
		bad("video_fps", "%d: want 1 to 240 (0: the default)", c.VideoFPS)
	}
	if c.VideoBitrate < 0 || (c.VideoBitrate > 0 && c.VideoBitrate < 50_000) {
		bad("video_bitrate", "%d: want at least 50000 bits per second (0: the default)", c.VideoBitrate)
	}
	if c.MQTTListen != "off" {
		if err := checkListen(c.MQTTListen); err != nil {
			bad("mqtt_listen", "%q: %v (or off)", c.MQTTListen, err)
		}
	}
	if !topicNameRE.MatchString(c.ID) {
		bad("id", "%q: want 1 to 64 of [A-Za-z0-9_-]", c.ID)
	} else if slices.Contains(reservedIDs, c.ID) {
		bad("id", "%q is reserved for MQTT topics", c.ID)
	}
	for _, g := range c.Groups {
		if !topicNameRE.MatchString(g) {
			bad("groups", "%q: want 1 to 64 of [A-Za-z0-9_-]", g)
		}
	}
	for _, r := range c.Token { // the token itself is never printed
		if r <= ' ' || r > '~' {
			bad("token", "want printable ASCII without spaces")
			break
		}
	}
	if err := checkTopicPrefix(c.TopicPrefix); err != nil {
		bad("topic_prefix", "%q: %v", c.TopicPrefix, err)
	}
	if len(c.ButtonKinds) == 0 {
		bad("button_kinds", "want video, audio or both")
	}
	for _, k := range c.ButtonKinds {
		if k != "video" && k != "audio" {
			bad("button_kinds", "%q: want video or audio", k)
		}
	}
	c.validateGPIO(bad)
	if c.AudioCodec != "opus" && c.AudioCodec != "pcmu" {
		bad("audio_codec", "%q: want opus or pcmu", c.AudioCodec)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("log_level", "%q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "%q: want text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}

// validateGPIO checks the button and LED settings.
func (c Config) validateGPIO(bad func(key, format string, args ...any)) {
	if c.GPIOChip != "" && !gpioChipRE.MatchString(c.GPIOChip) {
		bad("gpio_chip", "%q: want a chip label, name (gpiochip0) or path (/dev/gpiochip0)", c.GPIOChip)
	}
	for _, p := range []struct{ key, v string }{{"button_pin", c.ButtonPin}, {"privacy_led_pin", c.PrivacyLEDPin}, {"live_led_pin", c.LiveLEDPin}} {
		if p.v != "" && !gpioLineRE.MatchString(p.v) {
			bad(p.key, "%q: want a line name (GPIO17), an offset (17) or none", p.v)
		}
	}
	if c.ButtonMode != "momentary" && c.ButtonMode != "latching" {
		bad("button_mode", "%q: want momentary or latching", c.ButtonMode)
	}
	for _, p := range []struct{ key, v string }{{"button_active", c.ButtonActive}, {"privacy_led_active", c.PrivacyLEDActive}, {"live_led_active", c.LiveLEDActive}} {
		if p.v != "low" && p.v != "high" {
			bad(p.key, "%q: want low or high", p.v)
		}
	}
	if !slices.Contains([]string{"up", "down", "none"}, c.ButtonPull) {
		bad("button_pull", "%q: want up, down or none", c.ButtonPull)
	}
	if c.ButtonDebounce < time.Millisecond || c.ButtonDebounce > time.Second {
		bad("button_debounce", "%s: want 1ms to 1s", c.ButtonDebounce)
	}
	if c.ButtonHold != 0 && (c.ButtonHold <= c.ButtonDebounce || c.ButtonHold > time.Minute) {
		bad("button_hold", "%s: want 0 (off), or longer than button_debounce and at most 1m", c.ButtonHold)
	}
	if c.ButtonHold != 0 && c.ButtonMode == "latching" {
		bad("button_hold", "a latching switch has no hold gesture: want 0")
	}
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port, e.g. 127.0.0.1:8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want 0 to 65535", port)
	}
	if host == "" || hostnameRE.MatchString(host) {
		return nil
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("host %q: want an IP address or a host name", host)
	}
	return nil
}

// checkMQTTURL validates an MQTT broker URL. Its messages never contain the password.
func checkMQTTURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's errors quote parts of the URL, which may be the password.
		return errors.New("not a valid URL (percent-encode characters such as @ : / in the user name and password)")
	}
	shown := u.Redacted()
	if _, ok := mqttDefaultPorts[u.Scheme]; !ok {
		return fmt.Errorf("%q: want a mqtt://, mqtts://, tcp:// or ssl:// URL", shown)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q: no host", shown)
	}
	if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port: want 1 to 65535", shown)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: want no path, query or fragment", shown)
	}
	return nil
}

func checkTopicPrefix(p string) error {
	if strings.HasPrefix(p, "$") {
		return errors.New("must not start with $ (reserved by brokers)")
	}
	for _, level := range strings.Split(p, "/") {
		if !topicLevelRE.MatchString(level) {
			return errors.New("want topic levels of [A-Za-z0-9_.-] separated by /")
		}
	}
	return nil
}

// Redacted returns a copy of c for logging, with the MQTT password and the token replaced by
// "xxxxx". The copy shares no slices with c.
func (c Config) Redacted() Config {
	r := c
	r.Groups = slices.Clone(c.Groups)
	r.ButtonKinds = slices.Clone(c.ButtonKinds)
	if c.Token != "" {
		r.Token = redactedMark
	}
	if c.MQTT != "" {
		if u, err := url.Parse(c.MQTT); err == nil {
			r.MQTT = u.Redacted()
		} else {
			r.MQTT = redactedMark // unparseable: it may be all password
		}
	}
	return r
}

// LogValue makes slog print the redacted configuration, whatever the caller passes.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	return slog.GroupValue(
		slog.String("board", r.Board),
		slog.String("listen", r.Listen),
		slog.String("state_dir", r.StateDir),
		slog.String("mqtt", r.MQTT),
		slog.String("mqtt_listen", r.MQTTListen),
		slog.String("sim_clip", r.SimClip),
		slog.String("camera", r.Camera),
		slog.String("encoder", r.Encoder),
		slog.String("encoder_format", r.EncoderFormat),
		slog.String("audio", r.Audio),
		slog.String("video_size", r.VideoSize),
		slog.Int("video_fps", r.VideoFPS),
		slog.Int("video_bitrate", r.VideoBitrate),
		slog.String("mqtt_ca", r.MQTTCA),
		slog.String("mqtt_cert", r.MQTTCert),
		slog.String("mqtt_key", r.MQTTKey),
		slog.String("id", r.ID),
		slog.Any("groups", r.Groups),
		slog.String("token", r.Token),
		slog.String("topic_prefix", r.TopicPrefix),
		slog.Bool("remote_may_lift", r.RemoteMayLift),
		slog.Any("button_kinds", r.ButtonKinds),
		slog.String("gpio_chip", r.GPIOChip),
		slog.String("button_pin", r.ButtonPin),
		slog.String("button_mode", r.ButtonMode),
		slog.String("button_active", r.ButtonActive),
		slog.String("button_pull", r.ButtonPull),
		slog.Duration("button_debounce", r.ButtonDebounce),
		slog.Duration("button_hold", r.ButtonHold),
		slog.String("privacy_led_pin", r.PrivacyLEDPin),
		slog.String("privacy_led_active", r.PrivacyLEDActive),
		slog.String("live_led_pin", r.LiveLEDPin),
		slog.String("live_led_active", r.LiveLEDActive),
		slog.String("audio_codec", r.AudioCodec),
		slog.String("log_level", r.LogLevel),
		slog.String("log_format", r.LogFormat),
		slog.String("config_file", r.ConfigFile),
	)
}

// SlogLevel is LogLevel as a slog.Level (Info for an unknown level: Validate rejects those).
func (c Config) SlogLevel() slog.Level {
	switch c.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// parseSize reads WIDTHxHEIGHT.
func parseSize(s string) (w, h int, err error) {
	ws, hs, ok := strings.Cut(strings.ToLower(s), "x")
	if ok {
		w, err = strconv.Atoi(ws)
		if err == nil {
			h, err = strconv.Atoi(hs)
		}
	}
	if !ok || err != nil || w < 16 || h < 16 || w > 7680 || h > 4320 || w%2 != 0 || h%2 != 0 {
		return 0, 0, fmt.Errorf("want WIDTHxHEIGHT, even, from 16x16 to 7680x4320")
	}
	return w, h, nil
}
