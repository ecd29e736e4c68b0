//go:build linux

package main

// The public segment's services: coturn (Debian's turnserver, TURN REST credentials) and
// mosquitto (a TCP listener and a websockets listener, a password file and the signalling
// ACL of notes/signal-spec.md), both on publicIP in the pub namespace.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	turnPort    = 3478
	mqttPort    = 1883
	mqttWSPort  = 9001
	turnRealm   = "lenscap.nat"
	cameraID    = "natcam"
	viewerUser  = "alice" // the viewers' MQTT account
	topicPrefix = "lenscap"
)

// signalUser is the camera's broker account for signalling (mqtt_signal_url): its own, so that
// viewers cannot crowd out the camera's commands.
const signalUser = cameraID + "-signal"

// secrets are the run's credentials, made fresh for each run.
type secrets struct {
	turn, camera, signal, viewer string // TURN REST secret, MQTT passwords
}

// startTURN runs coturn on the public address with use-auth-secret; the secret is in a private
// configuration file in dir, not in arguments anyone can read in ps.
func startTURN(ns, dir, secret string) (*proc, error) {
	conf := filepath.Join(dir, "turnserver.conf")
	if err := os.WriteFile(conf, []byte("static-auth-secret="+secret+"\n"), 0o600); err != nil {
		return nil, err
	}
	args := []string{"-c", conf, "--listening-ip=" + publicIP, "--relay-ip=" + publicIP,
		fmt.Sprintf("--listening-port=%d", turnPort), "--min-port=49160", "--max-port=49400",
		"--use-auth-secret", "--realm=" + turnRealm,
		"--no-tls", "--no-dtls", "--no-tcp-relay", "--no-cli", "--fingerprint",
		"--log-file=stdout", "--simple-log", "--verbose"}
	p, err := startProc("turnserver", execIn(ns, "turnserver", args...), nil)
	if err != nil {
		return nil, err
	}
	return p, waitOutput(p, "Total General servers", 10*time.Second)
}

// waitOutput waits until p printed s (bounded).
func waitOutput(p *proc, s string, d time.Duration) error {
	for deadline := time.Now().Add(d); !p.out.has(s); time.Sleep(20 * time.Millisecond) {
		if p.exited() {
			return fmt.Errorf("%s exited: %v: %s", p.name, p.err, p.out.last(15))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %q after %s: %s", p.name, s, d, p.out.last(15))
		}
	}
	return nil
}

// mosquittoACL lets the camera use its control topics; its signalling account read its
// sessions' viewer topics and write their camera topics; the viewer account write only to that
// camera's sessions of its own name and read only their camera topics (signal-spec.md), the
// camera's availability and (for the rig's probe) its state.
func mosquittoACL() string {
	p, id, v := topicPrefix, cameraID, viewerUser
	return strings.Join([]string{
		"user " + id,
		"topic read " + p + "/" + id + "/cmd",
		"topic read " + p + "/all/cmd",
		"topic write " + p + "/" + id + "/ack",
		"topic write " + p + "/" + id + "/state",
		"topic write " + p + "/" + id + "/availability",
		"topic write homeassistant/+/" + id + "/+/config",
		"",
		"user " + signalUser,
		"topic read " + p + "/" + id + "/session/+/+/viewer",
		"topic write " + p + "/" + id + "/session/+/+/camera",
		"",
		"user " + v,
		"topic write " + p + "/" + id + "/session/" + v + "/+/viewer",
		"topic read " + p + "/" + id + "/session/" + v + "/+/camera",
		"topic read " + p + "/" + id + "/availability",
		"topic read " + p + "/" + id + "/state",
		"",
	}, "\n")
}

// startMosquitto writes the broker's files into dir and runs it in ns.
func startMosquitto(ns, dir string, s secrets) (*proc, error) {
	// The passwords go in a private file that mosquitto_passwd hashes in place (-U), not in
	// arguments anyone can read in ps.
	passwd := filepath.Join(dir, "passwd")
	lines := fmt.Sprintf("%s:%s\n%s:%s\n%s:%s\n", cameraID, s.camera, signalUser, s.signal, viewerUser, s.viewer)
	if err := os.WriteFile(passwd, []byte(lines), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command("mosquitto_passwd", "-U", passwd).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mosquitto_passwd -U: %v: %s", err, out)
	}
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte(mosquittoACL()), 0o600); err != nil {
		return nil, err
	}
	conf := strings.Join([]string{
		"user root", // stay root, to read the files here
		"log_dest stderr", "log_type all", "connection_messages true",
		"persistence false", "per_listener_settings false", "allow_anonymous false",
		"password_file " + passwd, "acl_file " + acl,
		fmt.Sprintf("listener %d %s", mqttPort, publicIP),
		fmt.Sprintf("listener %d %s", mqttWSPort, publicIP), "protocol websockets", "",
	}, "\n")
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	p, err := startProc("mosquitto", execIn(ns, "mosquitto", "-c", path), nil)
	if err != nil {
		return nil, err
	}
	// It is up once both listeners take connections.
	for _, port := range []int{mqttPort, mqttWSPort} {
		if err := waitTCP(ns, fmt.Sprintf("%s:%d", publicIP, port), 10*time.Second); err != nil {
			return p, fmt.Errorf("mosquitto: %w: %s", err, p.out.last(10))
		}
	}
	return p, nil
}

// waitTCP waits until a TCP connection to addr from ns succeeds (bounded).
func waitTCP(ns, addr string, d time.Duration) error {
	var err error
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, derr := dialIn(ctx, ns, "tcp", addr)
		cancel()
		if derr == nil {
			c.Close()
			return nil
		}
		err = derr
	}
	return fmt.Errorf("%s not reachable after %s: %v", addr, d, err)
}
