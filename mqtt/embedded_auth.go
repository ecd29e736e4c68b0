package mqtt

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/lenscap/lenscap/device/atomicfile"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// EmbeddedOption configures an EmbeddedBroker (NewEmbeddedBroker).
type EmbeddedOption func(*embeddedAuth)

// EmbeddedCamera makes the broker authenticate its clients, with the camera's account: user
// name id (the camera's id) and password (LoadOrCreatePassword keeps one in the state
// directory). Then:
//
//   - the camera's account, and only it, may connect with the client id id (a second client
//     with that id is refused, so nobody takes the camera's session over), and with no other
//     client id; it may publish its own state, availability, acks and Home Assistant discovery
//     configs, and read its commands (its own, every group's, the broadcast);
//   - anonymous clients may read states, availabilities, acks and discovery configs, and
//     publish nothing: no command, no state, no will on those topics;
//   - any other user name, or a wrong password, is refused.
func EmbeddedCamera(id, password string) EmbeddedOption {
	return func(a *embeddedAuth) { a.camera = account{id, password} }
}

// EmbeddedOperator adds an operator account (EmbeddedCamera is then required): it may read
// what anonymous clients read and every command topic, and publish commands (to the camera,
// its groups, all); nothing else.
func EmbeddedOperator(user, password string) EmbeddedOption {
	return func(a *embeddedAuth) { a.operator = &account{user, password} }
}

// EmbeddedTopics sets the topic prefix and the Home Assistant discovery prefix the accounts'
// rights are given under (DefaultTopicPrefix and "homeassistant" when empty): the camera's
// Config.TopicPrefix and Config.Discovery.Prefix.
func EmbeddedTopics(prefix, discoveryPrefix string) EmbeddedOption {
	return func(a *embeddedAuth) { a.topics.Prefix, a.discovery = prefix, discoveryPrefix }
}

type account struct{ user, password string }

// embeddedAuth is who may connect to an embedded broker and what each may do.
type embeddedAuth struct {
	camera    account
	operator  *account
	topics    Topics
	discovery string
}

// check validates the options; it returns nil for a broker without accounts (open).
func (a *embeddedAuth) check() (*embeddedAuth, error) {
	if a.discovery == "" {
		a.discovery = "homeassistant"
	}
	var errs []error
	if a.camera == (account{}) {
		if a.operator != nil {
			return nil, errors.New("mqtt: embedded broker: an operator account needs the camera's account")
		}
		return nil, nil
	}
	if err := ValidID(a.camera.user); err != nil {
		errs = append(errs, fmt.Errorf("mqtt: embedded broker: camera account: %w", err))
	}
	if a.camera.password == "" {
		errs = append(errs, errors.New("mqtt: embedded broker: camera account: no password"))
	}
	if o := a.operator; o != nil && (o.user == "" || o.password == "" || o.user == a.camera.user) {
		errs = append(errs, errors.New("mqtt: embedded broker: operator account: want a user name other than the camera's, and a password"))
	}
	for _, p := range []string{a.topics.prefix(), a.discovery} {
		if err := ValidTopicPrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("mqtt: embedded broker: %w", err))
		}
	}
	return a, errors.Join(errs...)
}

type role int

const (
	roleAnonymous role = iota
	roleCamera
	roleOperator
)

// authenticate returns the role of a user name and password; ok is false for an unknown user
// or a wrong password.
func (a *embeddedAuth) authenticate(user, password []byte) (r role, ok bool) {
	matches := func(acc account) bool {
		return subtle.ConstantTimeCompare(user, []byte(acc.user)) == 1 &&
			subtle.ConstantTimeCompare(password, []byte(acc.password)) == 1
	}
	switch {
	case len(user) == 0 && len(password) == 0:
		return roleAnonymous, true
	case matches(a.camera):
		return roleCamera, true
	case a.operator != nil && matches(*a.operator):
		return roleOperator, true
	}
	return roleAnonymous, false
}

// roleOf is the role of a connected client's user name (its password was checked on connect).
func (a *embeddedAuth) roleOf(user []byte) role {
	switch {
	case len(user) == 0:
		return roleAnonymous
	case string(user) == a.camera.user:
		return roleCamera
	case a.operator != nil && string(user) == a.operator.user:
		return roleOperator
	}
	return roleAnonymous
}

// allowed reports whether a role may publish on topic (write) or subscribe to it (a filter)
// and receive a message published on it.
func (a *embeddedAuth) allowed(r role, topic string, write bool) bool {
	switch {
	case write && r == roleCamera:
		return a.cameraWrites(topic)
	case write && r == roleOperator:
		return a.isCommand(topic)
	case write:
		return false
	case strings.ContainsAny(topic, "+#"):
		return true // a filter: each message is checked as it is delivered
	case a.isCommand(topic):
		return r == roleOperator || r == roleCamera && a.cameraReads(topic)
	}
	return a.isReport(topic)
}

// isCommand reports whether topic is a command topic: <prefix>/<id>/cmd, <prefix>/all/cmd or
// <prefix>/group/<group>/cmd.
func (a *embeddedAuth) isCommand(topic string) bool {
	if _, leaf, ok := a.topics.Device(topic); ok {
		return leaf == "cmd"
	}
	rest, ok := strings.CutPrefix(topic, a.topics.prefix()+"/")
	if !ok {
		return false
	}
	levels := strings.Split(rest, "/")
	return rest == "all/cmd" || len(levels) == 3 && levels[0] == "group" && levels[1] != "" && levels[2] == "cmd"
}

// cameraReads reports whether topic is one of the camera's command topics.
func (a *embeddedAuth) cameraReads(topic string) bool {
	id, _, ok := a.topics.Device(topic)
	return !ok || id == a.camera.user // the group and broadcast ones have no device
}

// cameraWrites reports whether the camera may publish on topic: its state, availability and
// acks, and its discovery configs (<discovery>/<component>/<id>/<object>/config).
func (a *embeddedAuth) cameraWrites(topic string) bool {
	if id, leaf, ok := a.topics.Device(topic); ok {
		return id == a.camera.user && (leaf == "state" || leaf == "availability" || leaf == "ack")
	}
	rest, ok := strings.CutPrefix(topic, a.discovery+"/")
	levels := strings.Split(rest, "/")
	return ok && len(levels) == 4 && levels[0] != "" && levels[1] == a.camera.user && levels[2] != "" && levels[3] == "config"
}

// isReport reports whether topic is what anybody may read: a device's state, availability or
// acks, or a discovery config.
func (a *embeddedAuth) isReport(topic string) bool {
	if _, leaf, ok := a.topics.Device(topic); ok {
		return leaf == "state" || leaf == "availability" || leaf == "ack"
	}
	return strings.HasPrefix(topic, a.discovery+"/")
}

// embeddedHook is the embedded broker's authentication and authorisation (a mochi hook): all
// clients are let in when auth is nil, else as embeddedAuth says. No network client may use
// the broker's own (inline) client id.
type embeddedHook struct {
	mochi.HookBase
	auth *embeddedAuth
	log  *slog.Logger
}

func (h *embeddedHook) ID() string { return "lenscap-auth" }

func (h *embeddedHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *embeddedHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	refuse := func(why string) bool {
		h.log.Warn("embedded broker: connection refused", "why", why, "client", cl.ID, "user", string(pk.Connect.Username), "remote", cl.Net.Remote)
		return false
	}
	if cl.ID == mochi.InlineClientId {
		return refuse("the broker's own client id")
	}
	if h.auth == nil {
		return true
	}
	r, ok := h.auth.authenticate(pk.Connect.Username, pk.Connect.Password)
	switch {
	case !ok:
		return refuse("unknown user or wrong password")
	case cl.ID == h.auth.camera.user && r != roleCamera:
		return refuse("the camera's client id, without the camera's account")
	case r == roleCamera && cl.ID != h.auth.camera.user:
		return refuse("the camera's account with another client id")
	case pk.Connect.WillFlag && !h.auth.allowed(r, pk.Connect.WillTopic, true):
		return refuse("a will on a topic it may not publish on")
	}
	return true
}

func (h *embeddedHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if h.auth == nil {
		return true
	}
	return h.auth.allowed(h.auth.roleOf(cl.Properties.Username), topic, write)
}

// EmbeddedPasswordFile is the name of the file, in the state directory, that keeps the
// camera's password on the embedded broker (LoadOrCreatePassword).
const EmbeddedPasswordFile = "mqtt-embedded-password"

// LoadOrCreatePassword returns the password kept in the file at path, first writing a new
// one when the file is missing or empty, or readable by others than its owner (the password may
// have leaked): 32 bytes from crypto/rand, base64url-encoded, written atomically with mode
// 0600 (device/atomicfile). Surrounding white space in the file is ignored.
func LoadOrCreatePassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("mqtt: password: %w", err)
	default:
		fi, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("mqtt: password: %w", err)
		}
		if pw := strings.TrimSpace(string(b)); pw != "" && fi.Mode().Perm()&0o077 == 0 {
			return pw, nil
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("mqtt: password: %w", err)
	}
	pw := base64.RawURLEncoding.EncodeToString(raw)
	if err := atomicfile.WriteFile(path, []byte(pw+"\n")); err != nil {
		return "", fmt.Errorf("mqtt: password: %w", err)
	}
	return pw, nil
}
