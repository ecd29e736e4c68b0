package mqtt

import "strings"

// DefaultTopicPrefix is the first level of every topic unless configured otherwise.
const DefaultTopicPrefix = "lenscap"

// Availability payloads, retained on Topics.Availability; Offline is also the last will.
const (
	Online  = "online"
	Offline = "offline"
)

// Topics names the topics of the MQTT contract (DESIGN.md, "External contracts") under a
// prefix (DefaultTopicPrefix when empty):
//
//	<prefix>/<id>/cmd              commands to one device
//	<prefix>/group/<group>/cmd     commands to the devices of a group
//	<prefix>/all/cmd               commands to every device
//	<prefix>/<id>/ack              acks, one per command id
//	<prefix>/<id>/state            the state, retained
//	<prefix>/<id>/availability     "online" or "offline", retained; "offline" is the last will
type Topics struct {
	Prefix string
}

func (t Topics) prefix() string {
	if t.Prefix == "" {
		return DefaultTopicPrefix
	}
	return t.Prefix
}

// Cmd is the command topic of one device.
func (t Topics) Cmd(id string) string { return t.prefix() + "/" + id + "/cmd" }

// GroupCmd is the command topic of a group.
func (t Topics) GroupCmd(group string) string { return t.prefix() + "/group/" + group + "/cmd" }

// AllCmd is the command topic of every device.
func (t Topics) AllCmd() string { return t.prefix() + "/all/cmd" }

// Ack is the topic of a device's acks.
func (t Topics) Ack(id string) string { return t.prefix() + "/" + id + "/ack" }

// State is the topic of a device's retained state.
func (t Topics) State(id string) string { return t.prefix() + "/" + id + "/state" }

// Availability is the topic of a device's retained availability.
func (t Topics) Availability(id string) string { return t.prefix() + "/" + id + "/availability" }

// Every returns the filter matching the given leaf ("ack", "state", "availability") of every
// device: <prefix>/+/<leaf>.
func (t Topics) Every(leaf string) string { return t.prefix() + "/+/" + leaf }

// Device splits a per-device topic <prefix>/<id>/<leaf> into its id and leaf. ok is false for
// any other topic, including the group and broadcast command topics.
func (t Topics) Device(topic string) (id, leaf string, ok bool) {
	rest, ok := strings.CutPrefix(topic, t.prefix()+"/")
	if !ok {
		return "", "", false
	}
	id, leaf, ok = strings.Cut(rest, "/")
	if !ok || id == "" || leaf == "" || strings.Contains(leaf, "/") || isReservedID(id) {
		return "", "", false
	}
	return id, leaf, true
}
