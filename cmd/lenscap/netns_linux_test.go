package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/tlsconf"
)

// netns is a network namespace the test made, joined to this one by a veth pair: a host on
// its own network, whose address is reached from here and nowhere else.
type netns struct {
	name       string
	hostIP, ip string // this side's and the namespace's addresses
}

// newNetns makes the namespace (root and iproute2 needed: CI runs as root) and removes it when
// the test ends.
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2: make test installs it)")
	}
	id := os.Getpid() % 250
	n := &netns{name: fmt.Sprintf("lcap%d", os.Getpid()), hostIP: fmt.Sprintf("10.231.%d.1", id), ip: fmt.Sprintf("10.231.%d.2", id)}
	host, peer := fmt.Sprintf("lch%d", os.Getpid()), fmt.Sprintf("lcn%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", n.name)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", host).Run()
		_ = exec.Command("ip", "netns", "del", n.name).Run()
	})
	ip("link", "add", host, "type", "veth", "peer", "name", peer)
	ip("link", "set", peer, "netns", n.name)
	ip("addr", "add", n.hostIP+"/30", "dev", host)
	ip("link", "set", host, "up")
	ip("-n", n.name, "addr", "add", n.ip+"/30", "dev", peer)
	ip("-n", n.name, "link", "set", peer, "up")
	ip("-n", n.name, "link", "set", "lo", "up")
	return n
}

// buildLenscap builds this command into the test's temporary directory.
func buildLenscap(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lenscap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestThePackagedConfigurationOnTheNetworkServesOnlyCredentialsOverHTTPS(t *testing.T) {
	n := newNetns(t)
	bin := buildLenscap(t)
	state := t.TempDir()
	// The packaged file as installed (listen 0.0.0.0:8080), on the simulated board: this
	// machine has no camera.
	args := []string{"--config", "../../scripts/package/lenscap.yaml", "--board", "sim", "--state-dir", state, "--mqtt-listen", "off"}
	inNS := func(ctx context.Context, a ...string) *exec.Cmd {
		return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name, bin}, a...)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := inNS(ctx, args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no credential is configured") {
		t.Fatalf("without a credential on 0.0.0.0: %v\n%s", err, out)
	}
	owner, err := exec.Command(bin, append([]string{"token", "show"}, args...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := inNS(ctx, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	waitFor(t, stderr, regexp.MustCompile(`listening on https://\S+:8080`))

	leaf, err := tlsconf.ReadLeaf(filepath.Join(state, tlsconf.CertFileName))
	if err != nil {
		t.Fatal(err)
	}
	if leaf.VerifyHostname(n.ip) != nil {
		t.Errorf("the certificate does not name the camera's address %s: %v", n.ip, leaf.IPAddresses)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsconf.PinnedConfig(tlsconf.SPKIHash(leaf))}}
	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", "https://"+n.ip+":8080"+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for path, want := range map[string]int{"/": 200, "/healthz": 200, "/api/state": 401, "/metrics": 401} {
		if code := get(path, ""); code != want {
			t.Errorf("GET %s from the network without a credential: %d, want %d", path, code, want)
		}
	}
	if code := get("/api/state", strings.TrimSpace(string(owner))); code != http.StatusOK {
		t.Errorf("GET /api/state with the owner credential: %d", code)
	}
	if res, err := http.Get("http://" + n.ip + ":8080/api/state"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered")
		}
	}
}

// waitFor reads r until a line matches re.
func waitFor(t *testing.T, r io.Reader, re *regexp.Regexp) {
	t.Helper()
	found := make(chan bool, 1)
	var seen strings.Builder
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			seen.WriteString(sc.Text() + "\n")
			if re.MatchString(sc.Text()) {
				found <- true
				go func() { _, _ = io.Copy(io.Discard, r) }()
				return
			}
		}
		found <- false
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Fatalf("the daemon ended before %s:\n%s", re, seen.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s in 30 s", re)
	}
}
