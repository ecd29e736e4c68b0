//go:build linux

package main

// Probes of the NATs themselves, with UDP sockets this process makes inside the namespaces:
// a reflector on the public address tells each packet's sender the address it came from.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// listenUDP opens a UDP socket on addr inside ns.
func listenUDP(ns, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := inNS(ns, func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addr)
		return err
	})
	return pc, err
}

// reflector answers every datagram with the address it came from, until closed.
type reflector struct {
	conns []net.PacketConn
	addrs []string
}

func startReflector(ns string, ports ...int) (*reflector, error) {
	rf := &reflector{}
	for _, port := range ports {
		addr := fmt.Sprintf("%s:%d", publicIP, port)
		pc, err := listenUDP(ns, addr)
		if err != nil {
			rf.close()
			return nil, err
		}
		rf.conns, rf.addrs = append(rf.conns, pc), append(rf.addrs, addr)
		go func() {
			buf := make([]byte, 1500)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return // closed
				}
				_, _ = pc.WriteTo([]byte(from.String()), from)
			}
		}()
	}
	return rf, nil
}

func (rf *reflector) close() {
	for _, c := range rf.conns {
		c.Close()
	}
}

// mapped asks the reflector at addr what address pc's datagrams come from.
func mapped(pc net.PacketConn, addr string) (string, error) {
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	for try := 0; try < 5; try++ {
		if _, err := pc.WriteTo([]byte("probe"), to); err != nil {
			return "", err
		}
		_ = pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, from, err := pc.ReadFrom(buf)
		if err == nil && from.String() == to.String() {
			return string(buf[:n]), nil
		}
	}
	return "", fmt.Errorf("no answer from the reflector at %s", addr)
}

// mappings returns the addresses one socket in ns is seen from at each of the reflector's
// addresses.
func mappings(ns string, rf *reflector) ([]string, error) {
	pc, err := listenUDP(ns, "0.0.0.0:0")
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	var out []string
	for _, a := range rf.addrs {
		m, err := mapped(pc, a)
		if err != nil {
			return nil, fmt.Errorf("from %s: %w", ns, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// checkSymmetric shows that the mobile NAT gives one socket a new port for every destination
// (symmetric: what the camera learns of the viewer's address is of no use to it), and that
// the home NAT keeps one mapping per socket.
func (r *rig) checkSymmetric(_ context.Context) result {
	rf, err := startReflector(r.topo.pub, 40001, 40002)
	if err != nil {
		return failf("reflector: %v", err)
	}
	defer rf.close()
	mob, err := mappings(r.topo.mobile, rf)
	if err != nil {
		return failf("%v", err)
	}
	home, err := mappings(r.topo.home, rf)
	if err != nil {
		return failf("%v", err)
	}
	if mob[0] == mob[1] {
		return failf("the mobile NAT mapped one socket to %s for both destinations: not symmetric", mob[0])
	}
	if home[0] != home[1] {
		return failf("the home NAT mapped one socket to %s and %s: want one mapping per socket", home[0], home[1])
	}
	return passf("one socket, two destinations: mobile NAT %s and %s (a port per flow), home NAT %s for both", mob[0], mob[1], home[0])
}

// checkNoDirectPath tries UDP hole punching between the home and mobile namespaces, as ICE's
// server-reflexive candidates would: each side learns its public address from the reflector
// and both send to each other's for 1.5 s. Nothing may arrive: only a relay connects them.
func (r *rig) checkNoDirectPath(_ context.Context) result {
	rf, err := startReflector(r.topo.pub, 40003)
	if err != nil {
		return failf("reflector: %v", err)
	}
	defer rf.close()
	a, err := listenUDP(r.topo.home, "0.0.0.0:0")
	if err != nil {
		return failf("%v", err)
	}
	defer a.Close()
	b, err := listenUDP(r.topo.mobile, "0.0.0.0:0")
	if err != nil {
		return failf("%v", err)
	}
	defer b.Close()
	ma, errA := mapped(a, rf.addrs[0])
	mb, errB := mapped(b, rf.addrs[0])
	if err := errors.Join(errA, errB); err != nil {
		return failf("learning the public addresses: %v", err)
	}
	got := punch(a, b, ma, mb, 1500*time.Millisecond)
	if got > 0 {
		return failf("%d datagrams crossed between home (%s) and mobile (%s) without a relay", got, ma, mb)
	}
	return passf("home %s and mobile %s sent to each other for 1.5 s: nothing arrived either way", ma, mb)
}

// punch has a and b send to each other's public address every 50 ms for d and counts what
// arrives from the other side.
func punch(a, b net.PacketConn, ma, mb string, d time.Duration) int {
	toA, _ := net.ResolveUDPAddr("udp4", ma)
	toB, _ := net.ResolveUDPAddr("udp4", mb)
	got := make(chan int, 2)
	for _, pc := range []net.PacketConn{a, b} {
		go func() {
			n, buf := 0, make([]byte, 1500)
			_ = pc.SetReadDeadline(time.Now().Add(d + 200*time.Millisecond))
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					got <- n
					return
				}
				if from.String() != publicIP+":40003" {
					n++
				}
			}
		}()
	}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		_, _ = a.WriteTo([]byte("punch"), toB)
		_, _ = b.WriteTo([]byte("punch"), toA)
	}
	return <-got + <-got
}
