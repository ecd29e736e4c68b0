package settings

import "github.com/lenscap/lenscap/mqtt"

// Broker points to the fields of a T that say how to reach the MQTT broker.
type Broker struct {
	URL, TopicPrefix, CA, Cert, Key *string
}

// BrokerSettings are the settings mqtt, topic_prefix, mqtt_ca, mqtt_cert and mqtt_key, which
// lenscap and lenscapctl share so that one file serves both; urlUsage is mqtt's usage (whose
// credentials, which default).
func BrokerSettings[T any](urlUsage string, fields func(*T) Broker) []Setting[T] {
	return []Setting[T]{
		String("mqtt", urlUsage, func(c *T) *string { return fields(c).URL }),
		String("topic_prefix", "MQTT topic `prefix` (default "+mqtt.DefaultTopicPrefix+")",
			func(c *T) *string { return fields(c).TopicPrefix }),
		String("mqtt_ca", "`file` of CA certificates (PEM) for an mqtts:// broker (default: the system's)",
			func(c *T) *string { return fields(c).CA }),
		String("mqtt_cert", "client certificate `file` (PEM) for mutual TLS with the broker (with mqtt_key)",
			func(c *T) *string { return fields(c).Cert }),
		String("mqtt_key", "client key `file` (PEM) for mutual TLS with the broker (with mqtt_cert)",
			func(c *T) *string { return fields(c).Key }),
	}
}
