package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Config configures a Client. BrokerURL, ID and Device are required.
type Config struct {
	// BrokerURL is the broker: mqtt:// or tcp:// (plain), mqtts:// or ssl:// (TLS), with the
	// credentials if any in its user information: mqtt://cam-1:secret@127.0.0.1:1883. A missing
	// port is 1883 (plain) or 8883 (TLS). It is secret: it is logged redacted.
	BrokerURL string
	// TLS configures the TLS of an mqtts:// or ssl:// broker.
	TLS TLS
	// ID is the device's id: the client id and a level of its topics. 1 to 64 of
	// [A-Za-z0-9_-], neither "all" nor "group".
	ID string
	// Groups are the groups whose commands the device follows; same characters as ID.
	Groups []string
	// TopicPrefix is the first level(s) of every topic; DefaultTopicPrefix when empty.
	TopicPrefix string
	// Device is what commands drive.
	Device Device
	// State returns the state to publish (and to put in acks): a value that marshals to a JSON
	// object, the same as GET /api/state (with id and uptime). The client adds "id" when it is
	// missing and "groups". Nil: the device's Status with id and the client's uptime.
	// It is called from the client's goroutine, never with the device's lock held.
	State func() any
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
	// StoreDir is the directory of the command record (RecordFile): the ids of the last
	// commands and their first results, kept across restarts. Empty: the record is kept in
	// memory only, and a command redelivered after a restart is applied again.
	StoreDir string
	// RecordSize is how many command ids the record keeps; DefaultRecordSize when 0.
	RecordSize int
	// MaxPayload is the largest command payload accepted, in bytes; MaxPayload when 0.
	MaxPayload int
	// Now is the clock of exp checks and command arrival times (a privacy change's At, from
	// which its early gate holds frames back); nil is time.Now.
	Now func() time.Time
	// KeepAlive is the MQTT keepalive (whole seconds, at least 1); 30 s when 0. The broker
	// publishes the last will after 1.5 keepalives without a packet from the device.
	KeepAlive time.Duration
	// PingTimeout is how long a ping may go unanswered before the connection is considered
	// lost; 10 s (or KeepAlive when shorter) when 0.
	PingTimeout time.Duration
	// ConnectTimeout bounds a connection attempt (TCP, TLS and CONNACK); 10 s when 0.
	ConnectTimeout time.Duration
	// RetryInterval is the wait between attempts at the first connection; 2 s when 0.
	RetryInterval time.Duration
	// ReconnectMax caps the backoff between reconnection attempts after a connection was
	// lost (paho starts at 1 s, or ReconnectMax when shorter, and doubles); 30 s when 0.
	ReconnectMax time.Duration
	// WriteTimeout bounds the writing of one packet; 10 s when 0.
	WriteTimeout time.Duration
	// Discovery configures Home Assistant MQTT discovery.
	Discovery Discovery
	// Signal, when set, turns MQTT signalling on: viewers ask for WebRTC sessions through the
	// broker (signal.go).
	Signal *SignalConfig

	// dial, when set, opens the network connection instead of paho (tests use it to cut a
	// connection without a DISCONNECT).
	dial func(u *url.URL, tlsConfig *tls.Config) (net.Conn, error)
}

// TLS configures the TLS connection to a broker (mqtts:// or ssl://).
type TLS struct {
	// CAFile is a PEM file of the certificate authorities that sign the broker's certificate;
	// empty: the system's.
	CAFile string
	// CertFile and KeyFile are the device's PEM certificate and key, for brokers that
	// authenticate clients by certificate (mTLS).
	CertFile, KeyFile string
	// Config, when set, is the base configuration (cloned); the files above are added to it.
	Config *tls.Config
}

// empty reports whether nothing is configured.
func (t TLS) empty() bool {
	return t.CAFile == "" && t.CertFile == "" && t.KeyFile == "" && t.Config == nil
}

// tlsConfig builds the TLS configuration, reading the files.
func (t TLS) tlsConfig() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.Config != nil {
		c = t.Config.Clone()
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: tls: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt: tls: CA file %s: no PEM certificate in it", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		if t.CertFile == "" || t.KeyFile == "" {
			return nil, errors.New("mqtt: tls: a client certificate needs both a certificate file and a key file")
		}
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: tls: client certificate: %w", err)
		}
		c.Certificates = append(slices.Clone(c.Certificates), cert)
	}
	return c, nil
}

// Discovery configures Home Assistant MQTT discovery: a privacy switch per kind and a binary
// sensor "streaming to a viewer", with their availability, published retained on every connect.
type Discovery struct {
	// Disabled turns discovery off (configs published before stay retained on the broker).
	Disabled bool
	// Prefix is Home Assistant's discovery prefix; "homeassistant" when empty.
	Prefix string
	// Name is the device's name in Home Assistant; "lenscap <id>" when empty.
	Name string
	// Model and Version describe the device in Home Assistant; optional.
	Model, Version string
}

var (
	topicNameRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	topicLevelRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// isReservedID reports whether id is a topic level that <prefix>/<id>/... would collide with.
func isReservedID(id string) bool { return id == "all" || id == "group" }

// ValidID reports whether id can be a device id: 1 to 64 of [A-Za-z0-9_-], neither "all" nor
// "group".
func ValidID(id string) error {
	if !topicNameRE.MatchString(id) {
		return fmt.Errorf("%q: want 1 to 64 of [A-Za-z0-9_-]", id)
	}
	if isReservedID(id) {
		return fmt.Errorf("%q is reserved for MQTT topics", id)
	}
	return nil
}

// ValidGroup reports whether g can be a group name: 1 to 64 of [A-Za-z0-9_-].
func ValidGroup(g string) error {
	if !topicNameRE.MatchString(g) {
		return fmt.Errorf("%q: want 1 to 64 of [A-Za-z0-9_-]", g)
	}
	return nil
}

// ValidTopicPrefix reports whether p can be a topic prefix: levels of [A-Za-z0-9_.-] separated
// by "/", not starting with "$".
func ValidTopicPrefix(p string) error {
	if strings.HasPrefix(p, "$") {
		return fmt.Errorf("topic prefix %q: must not start with $", p)
	}
	for _, level := range strings.Split(p, "/") {
		if !topicLevelRE.MatchString(level) {
			return fmt.Errorf("topic prefix %q: want levels of [A-Za-z0-9_.-] separated by /", p)
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.TopicPrefix == "" {
		c.TopicPrefix = DefaultTopicPrefix
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = MaxPayload
	}
	if c.RecordSize <= 0 {
		c.RecordSize = DefaultRecordSize
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.KeepAlive, 30*time.Second)
	c.KeepAlive = max(c.KeepAlive.Truncate(time.Second), time.Second)
	def(&c.PingTimeout, min(10*time.Second, c.KeepAlive))
	def(&c.ConnectTimeout, 10*time.Second)
	def(&c.RetryInterval, 2*time.Second)
	def(&c.ReconnectMax, 30*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	if c.Discovery.Prefix == "" {
		c.Discovery.Prefix = "homeassistant"
	}
	if c.Discovery.Name == "" {
		c.Discovery.Name = "lenscap " + c.ID
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Device == nil {
		errs = append(errs, errors.New("mqtt: no device"))
	}
	if err := ValidID(c.ID); err != nil {
		errs = append(errs, fmt.Errorf("mqtt: id: %w", err))
	}
	for _, g := range c.Groups {
		if err := ValidGroup(g); err != nil {
			errs = append(errs, fmt.Errorf("mqtt: group %w", err))
		}
	}
	if err := ValidTopicPrefix(c.TopicPrefix); err != nil {
		errs = append(errs, fmt.Errorf("mqtt: %w", err))
	}
	if err := ValidTopicPrefix(c.Discovery.Prefix); err != nil {
		errs = append(errs, fmt.Errorf("mqtt: discovery: %w", err))
	}
	return errors.Join(errs...)
}

var defaultPorts = map[string]string{"mqtt": "1883", "tcp": "1883", "mqtts": "8883", "ssl": "8883"}

// BrokerOptions returns paho client options for a broker URL (see Config.BrokerURL) and its
// TLS: the broker, the credentials of the URL and the TLS configuration. The caller sets the
// rest (client id, session, handlers). Its errors never contain the password.
func BrokerOptions(brokerURL string, t TLS) (*paho.ClientOptions, error) {
	u, err := ParseBrokerURL(brokerURL)
	if err != nil {
		return nil, err
	}
	opts := paho.NewClientOptions()
	secure := u.Scheme == "mqtts" || u.Scheme == "ssl"
	if !secure && !t.empty() {
		return nil, fmt.Errorf("mqtt: broker %s: TLS settings need an mqtts:// or ssl:// URL", u.Redacted())
	}
	if secure {
		tc, err := t.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(tc)
	}
	if u.User != nil {
		opts.SetUsername(u.User.Username())
		if pw, ok := u.User.Password(); ok {
			opts.SetPassword(pw)
		}
	}
	scheme := "tcp"
	if secure {
		scheme = "ssl"
	}
	opts.AddBroker(scheme + "://" + u.Host)
	return opts, nil
}

// ParseBrokerURL parses and checks a broker URL (see Config.BrokerURL; a port is 1 to 65535),
// adding the scheme's default port when it has none. Its errors never contain the password.
func ParseBrokerURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("mqtt: no broker URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's errors quote the URL, which may hold the password.
		return nil, errors.New("mqtt: broker URL: not a valid URL (percent-encode @ : / in the user name and password)")
	}
	port, ok := defaultPorts[u.Scheme]
	if !ok {
		return nil, fmt.Errorf("mqtt: broker %q: want a mqtt://, mqtts://, tcp:// or ssl:// URL", u.Redacted())
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("mqtt: broker %q: no host", u.Redacted())
	}
	if strings.HasSuffix(u.Host, ":") { // "host:": a port was meant but is missing
		return nil, fmt.Errorf("mqtt: broker %q: port: want 1 to 65535", u.Redacted())
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("mqtt: broker %q: port: want 1 to 65535", u.Redacted())
		}
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("mqtt: broker %q: want no path, query or fragment", u.Redacted())
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	u.Path = ""
	return u, nil
}

// BrokerURLWithPort returns the broker URL raw with its scheme's default port (1883 plain,
// 8883 TLS) when it has none, and raw itself, as written, when it has one or when
// ParseBrokerURL rejects it (the caller reports that with ParseBrokerURL's error).
func BrokerURLWithPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Port() != "" {
		return raw
	}
	withPort, err := ParseBrokerURL(raw)
	if err != nil {
		return raw
	}
	u.Host = withPort.Host
	return u.String()
}
