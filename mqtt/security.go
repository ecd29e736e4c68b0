package mqtt

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrInsecureBroker is returned by CheckBrokerSecurity for a broker URL that would let anyone
// on the network command the camera: plain MQTT, without credentials, to another host.
var ErrInsecureBroker = errors.New("mqtt: insecure broker")

// CheckBrokerSecurity checks a broker URL (see Config.BrokerURL) before a camera uses it:
//
//   - mqtts:// or ssl:// (TLS), and any URL to a loopback host (127.0.0.0/8, ::1, localhost):
//     no error, no warning;
//   - plain mqtt:// or tcp:// to another host without credentials: an error wrapping
//     ErrInsecureBroker (whoever reaches that broker can lift the camera's privacy and forge
//     its state), unless insecureOK (the owner's mqtt_insecure setting), when it is a warning;
//   - plain mqtt:// or tcp:// to another host with credentials: allowed, with a warning (the
//     password and every command cross the network in the clear).
//
// The caller logs a non-empty warning at Warn level, as it is. Neither the warning nor the
// error contains the password. An URL that ParseBrokerURL refuses is its error.
func CheckBrokerSecurity(brokerURL string, insecureOK bool) (warning string, err error) {
	u, err := ParseBrokerURL(brokerURL)
	if err != nil {
		return "", err
	}
	if u.Scheme == "mqtts" || u.Scheme == "ssl" || isLoopbackHost(u.Hostname()) {
		return "", nil
	}
	if u.User == nil || u.User.Username() == "" {
		msg := fmt.Sprintf("broker %s: plain MQTT without credentials to a host that is not this one: whoever reaches the broker can command the camera and forge its state", u.Redacted())
		if !insecureOK {
			return "", fmt.Errorf("%w: %s (use mqtts:// and credentials, or set mqtt_insecure to accept it)", ErrInsecureBroker, msg)
		}
		return msg + " (accepted: mqtt_insecure is set)", nil
	}
	return fmt.Sprintf("broker %s: plain MQTT to a host that is not this one: the password and every command cross the network in the clear (use mqtts://)", u.Redacted()), nil
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP address; names are not
// resolved.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
