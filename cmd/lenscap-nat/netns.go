//go:build linux

package main

// Network namespaces: creating them, wiring them with veth pairs and NAT, running programs in
// them (ip netns exec), and dialing from this process into one of them (setns on a locked
// thread: a socket belongs to the namespace of the thread that made it).

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nsPrefix starts every namespace the rig makes: lnat-ROLE-PID.
const nsPrefix = "lnat-"

// cmdTimeout bounds every ip, nft and conntrack command.
const cmdTimeout = 10 * time.Second

// sh runs a short command and returns its error with its output.
func sh(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// ipIn runs `ip -n NS ARGS...`.
func ipIn(ctx context.Context, ns string, args ...string) error {
	return sh(ctx, "ip", append([]string{"-n", ns}, args...)...)
}

// execIn runs a command inside ns (ip netns exec); the caller owns it.
func execIn(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// addNS creates a namespace with its loopback up and forwarding as asked.
func addNS(ctx context.Context, ns string, forward bool) error {
	if err := sh(ctx, "ip", "netns", "add", ns); err != nil {
		return err
	}
	if err := ipIn(ctx, ns, "link", "set", "lo", "up"); err != nil {
		return err
	}
	// ip netns exec mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf: a program in the
	// namespace (a browser) asks the namespace's own loopback for names, not the host's
	// resolver's address.
	dir := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		return err
	}
	if forward {
		return sh(ctx, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	}
	return nil
}

// link joins nsA's interface ifA (address addrA, CIDR) to nsB's ifB (addrB) with a veth pair
// made directly in the two namespaces, so that no name is ever taken in the host's namespace.
func link(ctx context.Context, nsA, ifA, addrA, nsB, ifB, addrB string) error {
	if err := sh(ctx, "ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB); err != nil {
		return err
	}
	for _, s := range [][3]string{{nsA, ifA, addrA}, {nsB, ifB, addrB}} {
		if err := ipIn(ctx, s[0], "addr", "add", s[2], "dev", s[1]); err != nil {
			return err
		}
		if err := ipIn(ctx, s[0], "link", "set", s[1], "up"); err != nil {
			return err
		}
	}
	return nil
}

// masquerade makes ns a NAT on its interface wan: plain (Linux keeps the source port when it
// can: one mapping per socket, as a home router) or symmetric (a random port for every new
// flow: nft's masquerade random,fully-random, so no hole can be punched through it).
func masquerade(ctx context.Context, ns, wan string, symmetric bool) error {
	rule := "oifname " + wan + " masquerade"
	if symmetric {
		rule += " random,fully-random"
	}
	script := "add table ip lnat\n" +
		"add chain ip lnat post { type nat hook postrouting priority srcnat; policy accept; }\n" +
		"add rule ip lnat post " + rule + "\n"
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s", ns, err, bytes.TrimSpace(out))
	}
	return nil
}

// delNS deletes a namespace and its /etc/netns directory; a missing one is not an error.
func delNS(ns string) error {
	if err := os.RemoveAll(filepath.Join("/etc/netns", ns)); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); os.IsNotExist(err) {
		return nil
	}
	return sh(context.Background(), "ip", "netns", "del", ns)
}

// runDirPrefix starts the run's directory under the temporary directory: lenscap-nat-PID-*.
const runDirPrefix = "lenscap-nat-"

// removeStale removes what earlier runs whose process is gone left behind (a run killed with
// SIGKILL cannot clean up after itself): namespaces lnat-ROLE-PID, their /etc/netns
// directories, and run directories lenscap-nat-PID-*.
func removeStale() {
	for _, dir := range []struct{ path, prefix string }{
		{"/run/netns", nsPrefix}, {"/etc/netns", nsPrefix}, {os.TempDir(), runDirPrefix},
	} {
		entries, _ := os.ReadDir(dir.path)
		for _, e := range entries {
			if !stale(e.Name(), dir.prefix) {
				continue
			}
			fmt.Printf("nat: removing %s, left by a run that was killed\n", filepath.Join(dir.path, e.Name()))
			if dir.prefix == nsPrefix {
				_ = delNS(e.Name())
			} else {
				_ = os.RemoveAll(filepath.Join(dir.path, e.Name()))
			}
		}
	}
}

// stale reports whether name (PREFIX...-PID or PREFIX PID-...) belongs to a process that is gone.
func stale(name, prefix string) bool {
	if !strings.HasPrefix(name, prefix) {
		return false
	}
	rest := strings.TrimPrefix(name, prefix)
	var digits string
	if prefix == nsPrefix {
		digits = rest[strings.LastIndexByte(rest, '-')+1:]
	} else {
		digits, _, _ = strings.Cut(rest, "-")
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid == os.Getpid() {
		return false
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// inNS runs fn on a thread switched into the namespace ns, then switches the thread back. A
// socket made in fn stays in ns for its life. When the thread cannot be switched back it is
// left locked, so the runtime ends it rather than reuse it.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// dialIn dials addr from inside ns.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNS(ns, func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}
