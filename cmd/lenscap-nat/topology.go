//go:build linux

package main

// The networks: five namespaces joined by veth pairs.
//
//	home (camera 10.71.0.2) -- homegw (NAT) 198.18.1.2 --\
//	                                                      pub (198.18.0.10: coturn, mosquitto)
//	mobile (viewer 10.72.0.2) -- mobgw (symmetric NAT) 198.18.2.2 --/
//	mob2 (viewer 10.73.0.2, no STUN/TURN) --/
//
// 198.18.0.0/15 is the benchmarking range (RFC 2544) and 10.71/10.72 private ranges, all
// inside the rig's own namespaces. pub routes between its two segments and sends everything
// else into a dummy device (dropped): nothing reaches 10.x except through a NAT, and nothing
// leaves the namespaces.

import (
	"context"
	"fmt"
	"os"
	"strings"
)

const (
	publicIP  = "198.18.0.10" // coturn and mosquitto
	cameraIP  = "10.71.0.2"
	homeGWLAN = "10.71.0.1"
	homeGWWAN = "198.18.1.2"
	viewerIP  = "10.72.0.2"
	mobGWLAN  = "10.72.0.1"
	mobGWWAN  = "198.18.2.2"
	blockedIP = "10.73.0.2" // a viewer on the mobile NAT whose network drops STUN and TURN
	blockedGW = "10.73.0.1"
)

// topology names the rig's namespaces (unique per run: they end with the rig's pid).
type topology struct {
	pub, homeGW, home, mobGW, mobile, void string
	blocked                                string // a second viewer host on the mobile NAT, whose UDP to 3478 is dropped
}

func newTopology() topology {
	n := func(role string) string { return fmt.Sprintf("%s%s-%d", nsPrefix, role, os.Getpid()) }
	return topology{pub: n("pub"), homeGW: n("hgw"), home: n("home"), mobGW: n("mgw"), mobile: n("mob"), void: n("void"), blocked: n("mob2")}
}

func (t topology) all() []string {
	return []string{t.home, t.homeGW, t.mobile, t.blocked, t.mobGW, t.pub, t.void}
}

// build makes the namespaces, links, routes and NATs; on an error the caller deletes what was
// made (destroy).
func (t topology) build(ctx context.Context) error {
	for _, ns := range t.all() {
		// pub routes between the two NATs' public addresses, as the internet would.
		if err := addNS(ctx, ns, ns == t.pub || ns == t.homeGW || ns == t.mobGW); err != nil {
			return err
		}
	}
	steps := []func() error{
		func() error { return ipIn(ctx, t.pub, "addr", "add", publicIP+"/32", "dev", "lo") },
		// The rest of the "internet" is a namespace that drops what it is given (it forwards
		// nothing): a relay sending to a private address gets no error back. An unreachable
		// network makes coturn's relay stop relaying, which no relay on the internet would see.
		func() error { return link(ctx, t.pub, "void", "198.18.255.1/30", t.void, "sink", "198.18.255.2/30") },
		func() error { return ipIn(ctx, t.pub, "route", "add", "default", "via", "198.18.255.2") },
		func() error { return link(ctx, t.pub, "to-home", "198.18.1.1/24", t.homeGW, "wan", homeGWWAN+"/24") },
		func() error { return link(ctx, t.pub, "to-mob", "198.18.2.1/24", t.mobGW, "wan", mobGWWAN+"/24") },
		func() error { return link(ctx, t.homeGW, "lan", homeGWLAN+"/24", t.home, "eth0", cameraIP+"/24") },
		func() error { return link(ctx, t.mobGW, "lan", mobGWLAN+"/24", t.mobile, "eth0", viewerIP+"/24") },
		func() error { return link(ctx, t.mobGW, "lan2", blockedGW+"/24", t.blocked, "eth0", blockedIP+"/24") },
		func() error { return ipIn(ctx, t.blocked, "route", "add", "default", "via", blockedGW) },
		func() error { return ipIn(ctx, t.homeGW, "route", "add", "default", "via", "198.18.1.1") },
		func() error { return ipIn(ctx, t.mobGW, "route", "add", "default", "via", "198.18.2.1") },
		func() error { return ipIn(ctx, t.home, "route", "add", "default", "via", homeGWLAN) },
		func() error { return ipIn(ctx, t.mobile, "route", "add", "default", "via", mobGWLAN) },
		func() error { return masquerade(ctx, t.homeGW, "wan", false) },
		func() error { return masquerade(ctx, t.mobGW, "wan", true) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// rebindMobile makes the mobile NAT forget its UDP mappings (conntrack): every UDP flow of the
// viewer gets a new random public port, so to the relay and the camera the viewer now comes
// from another address, as after a NAT rebinding; its TCP connection to the broker stays.
func (t topology) rebindMobile(ctx context.Context) error {
	err := sh(ctx, "ip", "netns", "exec", t.mobGW, "conntrack", "-D", "-p", "udp")
	if err != nil && !strings.Contains(err.Error(), "0 flow entries") {
		return err
	}
	return nil
}

// destroy deletes every namespace of the rig; it returns the first error.
func (t topology) destroy() error {
	var first error
	for _, ns := range t.all() {
		if err := delNS(ns); err != nil && first == nil {
			first = err
		}
	}
	return first
}
