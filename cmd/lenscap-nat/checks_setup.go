//go:build linux

package main

// The checks that set the rig up and show what reaches what.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func (r *rig) checkBuild(ctx context.Context) result {
	r.sec = secrets{turn: randomSecret(), camera: randomSecret(), signal: randomSecret(), viewer: randomSecret()}
	if err := r.topo.build(ctx); err != nil {
		return failf("%v", err)
	}
	return passf("namespaces %s; home NAT %s, mobile NAT %s (symmetric), public %s",
		strings.Join(r.topo.all(), " "), homeGWWAN, mobGWWAN, publicIP)
}

func (r *rig) checkTURN(_ context.Context) result {
	p, err := startTURN(r.topo.pub, r.dir, r.sec.turn)
	r.turn = p
	if err != nil {
		return failf("%v", err)
	}
	return passf("coturn on %s:%d, use-auth-secret (TURN REST), relay ports 49160-49400", publicIP, turnPort)
}

func (r *rig) checkMosquitto(_ context.Context) result {
	dir := filepath.Join(r.dir, "mosquitto")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return failf("%v", err)
	}
	p, err := startMosquitto(r.topo.pub, dir, r.sec)
	r.broker = p
	if err != nil {
		return failf("%v", err)
	}
	return passf("mosquitto on %s: mqtt :%d, websockets :%d, password file, signalling ACL", publicIP, mqttPort, mqttWSPort)
}

func (r *rig) checkCamera(ctx context.Context) result {
	bin := filepath.Join(r.opts.bin, "lenscap")
	if _, err := os.Stat(bin); err != nil {
		return failf("%v (make nat builds it)", err)
	}
	c, err := newCamera(ctx, bin, r.dir, r.topo.home, r.sec)
	if err != nil {
		return failf("%v", err)
	}
	r.cam = c
	if err := c.start(r.topo.home); err != nil {
		return failf("%v", err)
	}
	return passf("lenscap pid %d in %s on https://%s:%d (/healthz 200 with the owner credential)",
		c.p.pid(), r.topo.home, cameraIP, cameraPort)
}

// checkUnreachable: the camera's HTTPS port answers in its home network and cannot be reached
// from the mobile network, neither at its own address nor at the home NAT's.
func (r *rig) checkUnreachable(ctx context.Context) result {
	camAddr := fmt.Sprintf("%s:%d", cameraIP, cameraPort)
	if err := tcpConnect(ctx, r.topo.home, camAddr); err != nil {
		return failf("control: from home, %s does not answer: %v", camAddr, err)
	}
	var seen []string
	for _, a := range []string{camAddr, fmt.Sprintf("%s:%d", homeGWWAN, cameraPort)} {
		err := tcpConnect(ctx, r.topo.mobile, a)
		if err == nil {
			return failf("from mobile, a TCP connection to %s succeeded", a)
		}
		seen = append(seen, fmt.Sprintf("%s: %s", a, shortErr(err)))
	}
	return passf("from home %s accepts; from mobile: %s", camAddr, strings.Join(seen, "; "))
}

// tcpConnect connects from ns to addr within 2 s.
func tcpConnect(ctx context.Context, ns, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := dialIn(ctx, ns, "tcp", addr)
	if err == nil {
		c.Close()
	}
	return err
}

// shortErr is an error's last part ("connection refused", "i/o timeout").
func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// checkCameraOnline reads the camera's retained state from the mobile network with the
// viewer's account: the broker is reachable through the symmetric NAT and the camera is on it.
func (r *rig) checkCameraOnline(ctx context.Context) result {
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	topic := topicPrefix + "/" + cameraID + "/state"
	// The account from mosquitto_sub's options file ($XDG_CONFIG_HOME/mosquitto_sub, private),
	// not from arguments anyone can read in ps.
	cfgDir := filepath.Join(r.dir, "mosquitto_sub")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		return failf("%v", err)
	}
	opts := fmt.Sprintf("-u %s\n-P %s\n", viewerUser, r.sec.viewer)
	if err := os.WriteFile(filepath.Join(cfgDir, "mosquitto_sub"), []byte(opts), 0o600); err != nil {
		return failf("%v", err)
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", r.topo.mobile, "mosquitto_sub",
		"-h", publicIP, "-p", fmt.Sprint(mqttPort), "-i", viewerUser+"-probe", "-t", topic, "-C", "1", "-W", "6")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+cfgDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return failf("mosquitto_sub %s from mobile: %v: %s", topic, err, out)
	}
	if !strings.Contains(string(out), `"id":"`+cameraID+`"`) {
		return failf("%s: %.200s", topic, out)
	}
	return passf("retained %s read from mobile with the viewer's account (%d bytes)", topic, len(out))
}

// checkWebSockets upgrades an HTTP connection from the mobile network to MQTT over WebSocket
// on the broker's websockets listener (what the static viewer page does).
func (r *rig) checkWebSockets(ctx context.Context) result {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addr := fmt.Sprintf("%s:%d", publicIP, mqttWSPort)
	c, err := dialIn(ctx, r.topo.mobile, "tcp", addr)
	if err != nil {
		return failf("from mobile: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /mqtt HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return failf("ws://%s: %v", addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return failf("ws://%s: %s, want 101", addr, resp.Status)
	}
	return passf("ws://%s/mqtt from mobile: 101, subprotocol %q", addr, resp.Header.Get("Sec-WebSocket-Protocol"))
}

// checkStop stops the daemon with SIGTERM: it must exit 0 within 5 s.
func (r *rig) checkStop(_ context.Context) result {
	p := r.cam.p
	if p.exited() {
		return failf("lenscap had already exited: %v", p.err)
	}
	began := time.Now()
	_ = p.cmd.Process.Signal(os.Interrupt)
	if !p.wait(5 * time.Second) {
		return failf("lenscap still running 5 s after SIGINT")
	}
	if p.err != nil {
		return failf("lenscap exited: %v", p.err)
	}
	return passf("lenscap exited 0, %.0f ms after SIGINT", time.Since(began).Seconds()*1000)
}
