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

	"github.com/lenscap/lenscap/mqtt"
	"golang.org/x/time/rate"
)

// normalize trims the values, lower-cases the enumerations, drops empty and repeated list
// entries and adds the MQTT URL's default port.
func (c *Config) normalize() {
	for _, p := range []*string{&c.Board, &c.Listen, &c.StateDir, &c.MQTT, &c.MQTTSignalURL, &c.ID, &c.Token,
		&c.TopicPrefix, &c.AudioCodec, &c.LogLevel, &c.LogFormat, &c.GPIOChip, &c.ButtonPin, &c.ButtonMode,
		&c.ButtonActive, &c.ButtonPull, &c.PrivacyLEDPin, &c.PrivacyLEDActive, &c.LiveLEDPin, &c.LiveLEDActive,
		&c.CameraPowerPin, &c.CameraPowerActive, &c.MicPowerPin, &c.MicPowerActive,
		&c.LiveKit.URL, &c.LiveKit.APIKey, &c.LiveKit.APISecret, &c.LiveKit.Token, &c.LiveKit.Room, &c.LiveKit.Identity,
		&c.ICE.Username, &c.ICE.Credential, &c.ICE.Secret, &c.ICE.Policy, &c.ICE.TCPListen} {
		*p = strings.TrimSpace(*p)
	}
	for _, p := range []*string{&c.Board, &c.AudioCodec, &c.LogLevel, &c.LogFormat, &c.ButtonMode,
		&c.ButtonActive, &c.ButtonPull, &c.PrivacyLEDActive, &c.LiveLEDActive, &c.CameraPowerActive, &c.MicPowerActive} {
		*p = strings.ToLower(*p)
	}
	c.Groups = cleanList(c.Groups, false)
	c.TokenKeys = cleanList(c.TokenKeys, false)
	c.TokenRevoked = cleanList(c.TokenRevoked, false)
	c.ICE.Servers = cleanList(c.ICE.Servers, false)
	c.ICE.Policy = strings.ToLower(c.ICE.Policy)
	c.ButtonKinds = cleanList(c.ButtonKinds, true)
	c.MQTT = mqtt.BrokerURLWithPort(c.MQTT)
	c.MQTTSignalURL = mqtt.BrokerURLWithPort(c.MQTTSignalURL)
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
	// gpioLineRE is a GPIO line's name or offset; gpioChipRE a chip's label, name or path.
	gpioLineRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)
	gpioChipRE  = regexp.MustCompile(`^[A-Za-z0-9_./:-]{1,64}$`)
	boardNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	hostnameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
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
	case mqtt.ValidID(s) != nil: // of the right characters and length: a reserved id
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
	if c.StateDir == "" || strings.ContainsRune(c.StateDir, 0) {
		bad("state_dir", "%q: want a directory", c.StateDir)
	}
	c.validateNetwork(bad)
	c.validateMedia(bad)
	c.validateGPIO(bad)
	c.LiveKit.validate(bad)
	c.ICE.validate(bad)
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("log_level", "%q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "%q: want text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}

// validateNetwork checks the HTTP and MQTT settings; the MQTT rules are package mqtt's.
func (c Config) validateNetwork(bad func(key, format string, args ...any)) {
	if err := checkListen(c.Listen); err != nil {
		bad("listen", "%q: %v", c.Listen, err)
	}
	for _, r := range c.Token { // the token itself is never printed
		if r <= ' ' || r > '~' {
			bad("token", "want printable ASCII without spaces")
			break
		}
	}
	c.validateLimits(bad)
	if c.Capture != "always" && c.Capture != "on_demand" {
		bad("capture", "%q: want always or on_demand", c.Capture)
	}
	if c.CaptureLinger < 0 || c.CaptureLinger > time.Hour {
		bad("capture_linger", "%s: want 0 to 1h", c.CaptureLinger)
	}
	if c.Token != "" && len(c.Token) < 16 {
		bad("token", "want at least 16 characters (lenscap token show gives a signed owner credential)")
	}
	for _, u := range []struct{ key, url string }{{"mqtt", c.MQTT}, {"mqtt_signal_url", c.MQTTSignalURL}} {
		if u.url == "" {
			continue
		}
		if _, err := mqtt.ParseBrokerURL(u.url); err != nil { // without the password
			bad(u.key, "%s", strings.TrimPrefix(err.Error(), "mqtt: "))
		}
	}
	if c.MQTTListen != "off" {
		if err := checkListen(c.MQTTListen); err != nil {
			bad("mqtt_listen", "%q: %v (or off)", c.MQTTListen, err)
		}
	}
	if err := mqtt.ValidID(c.ID); err != nil {
		bad("id", "%v", err)
	}
	for _, g := range c.Groups {
		if err := mqtt.ValidGroup(g); err != nil {
			bad("groups", "%v", err)
		}
	}
	if err := mqtt.ValidTopicPrefix(c.TopicPrefix); err != nil {
		bad("topic_prefix", "%v", err)
	}
}

// validateMedia checks the camera, encoder and microphone settings and the kinds of media
// the button cuts.
func (c Config) validateMedia(bad func(key, format string, args ...any)) {
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
	if len(c.ButtonKinds) == 0 {
		bad("button_kinds", "want video, audio or both")
	}
	for _, k := range c.ButtonKinds {
		if k != "video" && k != "audio" {
			bad("button_kinds", "%q: want video or audio", k)
		}
	}
	if c.AudioCodec != "opus" && c.AudioCodec != "pcmu" {
		bad("audio_codec", "%q: want opus or pcmu", c.AudioCodec)
	}
}

// validateGPIO checks the button and LED settings.
func (c Config) validateGPIO(bad func(key, format string, args ...any)) {
	if c.GPIOChip != "" && !gpioChipRE.MatchString(c.GPIOChip) {
		bad("gpio_chip", "%q: want a chip label, name (gpiochip0) or path (/dev/gpiochip0)", c.GPIOChip)
	}
	for _, p := range []struct{ key, v string }{{"button_pin", c.ButtonPin}, {"privacy_led_pin", c.PrivacyLEDPin}, {"live_led_pin", c.LiveLEDPin},
		{"camera_power_pin", c.CameraPowerPin}, {"mic_power_pin", c.MicPowerPin}} {
		if p.v != "" && !gpioLineRE.MatchString(p.v) {
			bad(p.key, "%q: want a line name (GPIO17), an offset (17) or none", p.v)
		}
	}
	if c.ButtonMode != "momentary" && c.ButtonMode != "latching" {
		bad("button_mode", "%q: want momentary or latching", c.ButtonMode)
	}
	for _, p := range []struct{ key, v string }{{"button_active", c.ButtonActive}, {"privacy_led_active", c.PrivacyLEDActive}, {"live_led_active", c.LiveLEDActive},
		{"camera_power_active", c.CameraPowerActive}, {"mic_power_active", c.MicPowerActive}} {
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
	if c.PowerTimeout < 100*time.Millisecond || c.PowerTimeout > time.Minute {
		bad("power_timeout", "%s: want 100ms to 1m", c.PowerTimeout)
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

// Redacted returns a copy of c for logging, with the MQTT password and the token replaced by
// "xxxxx". The copy shares no slices with c.
func (c Config) Redacted() Config {
	r := c
	r.Groups = slices.Clone(c.Groups)
	r.ButtonKinds = slices.Clone(c.ButtonKinds)
	r.TokenKeys = slices.Clone(c.TokenKeys)
	r.TokenRevoked = slices.Clone(c.TokenRevoked)
	if c.Token != "" {
		r.Token = redactedMark
	}
	r.LiveKit = c.LiveKit.redacted()
	r.ICE = c.ICE.redacted()
	r.ICE.Servers = slices.Clone(c.ICE.Servers)
	r.MQTT = redactURL(c.MQTT)
	r.MQTTSignalURL = redactURL(c.MQTTSignalURL)
	return r
}

// redactURL is a broker URL without its password.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return redactedMark // unparseable: it may be all password
}

// LogValue makes slog print the redacted configuration, whatever the caller passes.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	attrs := configSettings().Attrs(&r)
	return slog.GroupValue(append(attrs, slog.String("config_file", r.ConfigFile))...)
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

// validateLimits checks the limits' settings.
func (c Config) validateLimits(bad func(key, format string, args ...any)) {
	if c.MaxViewers < 1 || c.MaxViewers > 1000 {
		bad("max_viewers", "%d: want 1 to 1000", c.MaxViewers)
	}
	if c.MaxViewersPerCredential < 1 || c.MaxViewersPerCredential > 1000 {
		bad("max_viewers_per_credential", "%d: want 1 to 1000 (max_viewers bounds them all anyway)", c.MaxViewersPerCredential)
	}
	if c.WSPing < time.Second || c.WSIdle < c.WSPing {
		bad("ws_ping", "ping %s, idle %s: want a ping of at least 1s and an idle timeout no shorter", c.WSPing, c.WSIdle)
	}
	if c.MaxSDPBytes < 4096 || c.MaxSDPBytes > 1<<20 {
		bad("max_sdp_bytes", "%d: want 4096 to 1048576", c.MaxSDPBytes)
	}
	for _, r := range []struct{ key, v string }{{"rate_whep", c.RateWHEP}, {"rate_ws", c.RateWS}, {"rate_api", c.RateAPI}, {"rate_signal", c.RateSignal}} {
		if _, err := parseRate(r.v); err != nil {
			bad(r.key, "%q: %v", r.v, err)
		}
	}
	if c.MaxConns < 4 || c.MaxConns > 100000 || c.MaxConnsPerClient < 2 || c.MaxConnsPerClient > c.MaxConns {
		bad("max_conns", "%d, %d per client: want 4 to 100000 in all, 2 or more per client and no more than in all", c.MaxConns, c.MaxConnsPerClient)
	}
	if c.BodyTimeout < 100*time.Millisecond || c.BodyTimeout > 5*time.Minute {
		bad("body_timeout", "%s: want 100ms to 5m", c.BodyTimeout)
	}
}

// parseRate reads "R/s,BURST": R requests a second (a decimal), BURST at once.
func parseRate(s string) (ratePerClient, error) {
	rs, bs, ok := strings.Cut(strings.ReplaceAll(s, " ", ""), ",")
	rs, perSec := strings.CutSuffix(rs, "/s")
	r, err1 := strconv.ParseFloat(rs, 64)
	b, err2 := strconv.Atoi(bs)
	if !ok || !perSec || err1 != nil || err2 != nil || r <= 0 || r > 10000 || b < 1 || b > 100000 {
		return ratePerClient{}, errors.New("want R/s,BURST, e.g. 1/s,10 (R above 0, BURST at least 1)")
	}
	return ratePerClient{Rate: rate.Limit(r), Burst: b}, nil
}
