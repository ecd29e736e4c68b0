package mqtt

import (
	"encoding/json"

	"github.com/lenscap/lenscap/device"
)

// Home Assistant MQTT discovery. Each entity's config is published retained on
//
//	<discovery prefix>/<component>/<device id>/<object id>/config
//
// (the node-id form of the discovery topic, which a mosquitto ACL pattern can grant with
// "pattern write homeassistant/+/%c/+/config": %c must be a whole topic level).
//
// The privacy switches are ON when the kind is private; their commands are privacy commands
// without an id (Home Assistant cannot make one), which the device applies each time they
// arrive: setting a privacy is idempotent.

// discoveryMessage is one retained config.
type discoveryMessage struct {
	topic   string
	payload []byte
}

// DiscoveryTopics returns the topics of the discovery configs a device publishes (publish an
// empty retained message on each to remove the device from Home Assistant).
func DiscoveryTopics(prefix, id string) []string {
	if prefix == "" {
		prefix = "homeassistant"
	}
	return []string{
		prefix + "/switch/" + id + "/video_privacy/config",
		prefix + "/switch/" + id + "/audio_privacy/config",
		prefix + "/binary_sensor/" + id + "/streaming/config",
	}
}

func (c *Client) discovery() []discoveryMessage {
	id := c.cfg.ID
	dev := map[string]any{
		"identifiers":  []string{"lenscap_" + id},
		"name":         c.cfg.Discovery.Name,
		"manufacturer": "lenscap",
	}
	if c.cfg.Discovery.Model != "" {
		dev["model"] = c.cfg.Discovery.Model
	}
	if c.cfg.Discovery.Version != "" {
		dev["sw_version"] = c.cfg.Discovery.Version
	}
	common := func() map[string]any {
		return map[string]any{
			"device":                dev,
			"availability_topic":    c.topics.Availability(id),
			"payload_available":     Online,
			"payload_not_available": Offline,
			"state_topic":           c.topics.State(id),
			"qos":                   qos,
		}
	}
	var entities []map[string]any
	for _, k := range device.Kinds {
		entities = append(entities, c.privacySwitch(k, common()))
	}
	s := common()
	s["name"] = "Streaming"
	s["unique_id"] = "lenscap_" + id + "_streaming"
	s["icon"] = "mdi:eye"
	s["payload_on"] = "ON"
	s["payload_off"] = "OFF"
	s["value_template"] = "{{ 'ON' if (value_json.viewers | default(0) | int(0)) > 0 else 'OFF' }}"
	entities = append(entities, s)

	topics := DiscoveryTopics(c.cfg.Discovery.Prefix, id)
	out := make([]discoveryMessage, len(entities))
	for i, e := range entities {
		b, _ := json.Marshal(e) // maps of strings, bools and ints always marshal
		out[i] = discoveryMessage{topic: topics[i], payload: b}
	}
	return out
}

// privacySwitch is the Home Assistant switch of a kind's privacy (ON = private), on e.
func (c *Client) privacySwitch(k device.Kind, e map[string]any) map[string]any {
	name, icon := "Video privacy", "mdi:video-off"
	if k == device.KindAudio {
		name, icon = "Audio privacy", "mdi:microphone-off"
	}
	on, _ := json.Marshal(Command{Action: ActionPrivacy, Video: kindPtr(k, device.KindVideo, true), Audio: kindPtr(k, device.KindAudio, true)})
	off, _ := json.Marshal(Command{Action: ActionPrivacy, Video: kindPtr(k, device.KindVideo, false), Audio: kindPtr(k, device.KindAudio, false)})
	e["name"] = name
	e["unique_id"] = "lenscap_" + c.cfg.ID + "_" + string(k) + "_privacy"
	e["icon"] = icon
	e["command_topic"] = c.topics.Cmd(c.cfg.ID)
	e["payload_on"] = string(on)
	e["payload_off"] = string(off)
	e["state_on"] = "ON"
	e["state_off"] = "OFF"
	e["value_template"] = "{{ 'ON' if value_json." + string(k) + ".private else 'OFF' }}"
	e["retain"] = false
	e["optimistic"] = false
	return e
}

// kindPtr returns &v when k is the wanted kind, else nil.
func kindPtr(k, want device.Kind, v bool) *bool {
	if k != want {
		return nil
	}
	return &v
}
