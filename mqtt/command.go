package mqtt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/lenscap/lenscap/device"
)

// Actions a command may name.
const (
	ActionPrivacy = "privacy" // set the privacy of the kinds it names
	ActionState   = "state"   // report the state now (an ack and a fresh retained state)
)

// Limits on commands.
const (
	// MaxPayload is the default largest command payload, in bytes.
	MaxPayload = 4 << 10
	// MaxIDLength is the longest command id, in bytes.
	MaxIDLength = 128
	// maxIDScan is the largest oversized payload in which the id is still looked for.
	maxIDScan = 64 << 10
)

// Error codes: the "code" of an error ack, for programs (the "error" is for people).
const (
	CodeMalformed     = "malformed"      // not a JSON object
	CodeTooLarge      = "too_large"      // payload larger than the limit
	CodeBadField      = "bad_field"      // a known field of the wrong type or value
	CodeUnknownAction = "unknown_action" // an action other than privacy or state
	CodeNoKind        = "no_kind"        // a privacy command naming neither video nor audio
	CodeRetained      = "retained"       // delivered with the retain flag: a stale command
	CodeExpired       = "expired"        // its exp is in the past
	CodeButtonWins    = "button_wins"    // a remote lift of privacy the button engaged
	CodeInternal      = "internal"       // the device failed (e.g. its state could not be saved: nothing was lifted)
)

// Command is a command to a device, as published on its command topics:
//
//	{"id":"c-42","action":"privacy","video":true,"audio":true,"exp":1767225600}
//
// Unknown fields are ignored. ID is optional, but a command without one cannot be told from a
// redelivery of itself: it is applied each time it arrives (harmless for a privacy command,
// which sets a state rather than toggling one) and acknowledged with an empty id.
type Command struct {
	// ID identifies the command: its ack carries it, and a command whose id was seen before
	// is acknowledged again with its first result and not applied. At most MaxIDLength bytes.
	ID string `json:"id,omitempty"`
	// Action is ActionPrivacy or ActionState.
	Action string `json:"action"`
	// Video and Audio are the privacy wanted for each kind (true: private); nil leaves the
	// kind as it is. A privacy command names at least one.
	Video *bool `json:"video,omitempty"`
	Audio *bool `json:"audio,omitempty"`
	// Exp, when set, is the Unix time in seconds after which the command is refused.
	Exp *int64 `json:"exp,omitempty"`
}

// CommandError is why a command was refused; Code is one of the Code constants.
type CommandError struct {
	Code string
	Msg  string
}

func (e *CommandError) Error() string { return e.Msg }

func refuse(code, format string, args ...any) *CommandError {
	return &CommandError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// ParseCommand parses a command payload of at most limit bytes (MaxPayload when limit <= 0).
// On error it returns a *CommandError, and a Command holding nothing but the ID, when one could
// be read (so that an error ack can be sent); such a Command yields no change.
func ParseCommand(payload []byte, limit int) (Command, error) {
	fields, id, err := commandFields(payload, limit)
	if err != nil {
		return Command{ID: id}, err
	}
	c := Command{ID: id}
	if err := c.readFields(fields); err != nil {
		return Command{ID: id}, err
	}
	switch c.Action {
	case ActionPrivacy:
		if c.Video == nil && c.Audio == nil {
			return Command{ID: id}, refuse(CodeNoKind, `privacy: name a kind: "video" and/or "audio"`)
		}
	case ActionState:
		c.Video, c.Audio = nil, nil // a report changes nothing
	default:
		return Command{ID: id}, refuse(CodeUnknownAction, "unknown action %q: want %q or %q", truncate(c.Action, 64), ActionPrivacy, ActionState)
	}
	return c, nil
}

// commandFields checks a payload's size and reads it as a JSON object, with its id (also
// when the rest is refused, where it can be read).
func commandFields(payload []byte, limit int) (fields map[string]json.RawMessage, id string, err error) {
	if limit <= 0 {
		limit = MaxPayload
	}
	if len(payload) > limit {
		if len(payload) <= maxIDScan {
			id = readID(payload)
		}
		return nil, id, refuse(CodeTooLarge, "command of %d bytes: the limit is %d", len(payload), limit)
	}
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, "", refuse(CodeMalformed, "malformed command: want a JSON object")
	}
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return nil, "", refuse(CodeMalformed, "malformed command: %v", err)
	}
	if raw, ok := fields["id"]; ok {
		v, ok := readIDValue(raw)
		if !ok {
			return nil, "", refuse(CodeBadField, "id: want a string of at most %d bytes", MaxIDLength)
		}
		id = v
	}
	return fields, id, nil
}

// readFields reads the action, the kinds and exp of a command's JSON object.
func (c *Command) readFields(fields map[string]json.RawMessage) error {
	raw, ok := fields["action"]
	if !ok || isNull(raw) {
		return refuse(CodeBadField, `action: missing (want "privacy" or "state")`)
	}
	if err := json.Unmarshal(raw, &c.Action); err != nil {
		return refuse(CodeBadField, `action: want a string ("privacy" or "state")`)
	}
	for _, k := range device.Kinds {
		raw, ok := fields[string(k)]
		if !ok || isNull(raw) {
			continue
		}
		var v bool
		if err := json.Unmarshal(raw, &v); err != nil {
			return refuse(CodeBadField, "%s: want true (private) or false", k)
		}
		if k == device.KindAudio {
			c.Audio = &v
		} else {
			c.Video = &v
		}
	}
	if raw, ok := fields["exp"]; ok && !isNull(raw) {
		exp, ok := readUnixSeconds(raw)
		if !ok {
			return refuse(CodeBadField, "exp: want a Unix time in seconds")
		}
		c.Exp = &exp
	}
	return nil
}

// Check refuses a command that must not be applied when it arrives at now: one delivered with
// the retain flag (a stale command kept by the broker) or whose Exp has passed.
func (c Command) Check(retained bool, now time.Time) error {
	if retained {
		return refuse(CodeRetained, "retained command refused: commands must be published without the retain flag")
	}
	if c.Exp != nil && now.Unix() > *c.Exp {
		return refuse(CodeExpired, "command expired at %s", time.Unix(*c.Exp, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// Change is the privacy change the command asks for, made by a remote source at the command's
// arrival; ok is false when the command asks for none.
func (c Command) Change(arrival time.Time) (change device.Change, ok bool) {
	if c.Action != ActionPrivacy || (c.Video == nil && c.Audio == nil) {
		return device.Change{}, false
	}
	who := "mqtt"
	if c.ID != "" {
		who = "mqtt:" + c.ID // who did what: the command, since MQTT does not say who sent it
	}
	return device.Change{Video: c.Video, Audio: c.Audio, By: device.ByRemote, Who: who, At: arrival}, true
}

// readID returns the top-level "id" of a JSON object, or "".
func readID(payload []byte) string {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(payload, &v) != nil {
		return ""
	}
	id, _ := readIDValue(v.ID)
	return id
}

// readIDValue reads an id: a string of at most MaxIDLength bytes; null and "" are no id.
func readIDValue(raw json.RawMessage) (string, bool) {
	var id *string
	if json.Unmarshal(raw, &id) != nil {
		return "", false
	}
	if id == nil {
		return "", true
	}
	if len(*id) > MaxIDLength || !utf8.ValidString(*id) {
		return "", false
	}
	return *id, true
}

func readUnixSeconds(raw json.RawMessage) (int64, bool) {
	var f float64
	if json.Unmarshal(raw, &f) != nil || math.IsNaN(f) || f < 0 || f >= math.MaxInt64/2 {
		return 0, false
	}
	return int64(math.Floor(f)), true
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
