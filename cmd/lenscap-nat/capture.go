//go:build linux

package main

// A packet capture on the viewers' interface: every RTP packet that reaches a viewer, with its
// arrival time. SRTP encrypts payloads, not headers, so the SSRC, the sequence number and the
// RTP timestamp (the frame's capture time, on the camera's clock) are readable on the wire,
// whichever viewer receives them: relayed packets arrive either in TURN ChannelData or Data
// indications (the viewer's own relay) or as they are (the camera's relay).

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// rtpPacket is one RTP packet seen arriving at a viewer.
type rtpPacket struct {
	at     time.Time
	ssrc   uint32
	ts     uint32
	pt     uint8
	marker bool
}

// capture reads the packets arriving on one interface of one namespace until closed.
type capture struct {
	fd      int
	stopped atomic.Bool
	done    chan struct{}

	mu   sync.Mutex
	pkts []rtpPacket
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// startCapture opens a packet socket on iface inside ns.
func startCapture(ns, iface string) (*capture, error) {
	c := &capture{fd: -1, done: make(chan struct{})}
	err := inNS(ns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		c.fd = fd
		tv := unix.Timeval{Usec: 200000} // reads wake up to see close
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index})
	})
	if err != nil {
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
		return nil, err
	}
	go c.read()
	return c, nil
}

func (c *capture) read() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for !c.stopped.Load() {
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue // the timeout, or an interrupted read: look at stopped again
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if p, ok := parseRTP(buf[:n]); ok {
			p.at = time.Now()
			c.mu.Lock()
			c.pkts = append(c.pkts, p)
			c.mu.Unlock()
		}
	}
}

// close stops the capture and waits for its reader.
func (c *capture) close() {
	if c == nil || c.stopped.Swap(true) {
		return
	}
	<-c.done
	unix.Close(c.fd)
}

// packets returns the packets of the given SSRCs (all when nil) that arrived in [from, to).
func (c *capture) packets(ssrcs map[uint32]bool, from, to time.Time) []rtpPacket {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []rtpPacket
	for _, p := range c.pkts {
		if (ssrcs == nil || ssrcs[p.ssrc]) && !p.at.Before(from) && p.at.Before(to) {
			out = append(out, p)
		}
	}
	return out
}

// parseRTP finds an RTP packet in an IPv4 UDP datagram, inside TURN framing or not.
func parseRTP(ip []byte) (rtpPacket, bool) {
	if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != unix.IPPROTO_UDP {
		return rtpPacket{}, false
	}
	ihl := int(ip[0]&0x0f) * 4
	if len(ip) < ihl+8 {
		return rtpPacket{}, false
	}
	b := unwrapTURN(ip[ihl+8:])
	if len(b) < 12 || b[0]>>6 != 2 {
		return rtpPacket{}, false
	}
	pt := b[1] & 0x7f
	if pt >= 64 && pt <= 95 { // RTCP (RFC 5761)
		return rtpPacket{}, false
	}
	return rtpPacket{
		ssrc: binary.BigEndian.Uint32(b[8:12]), ts: binary.BigEndian.Uint32(b[4:8]),
		pt: pt, marker: b[1]&0x80 != 0,
	}, true
}

// unwrapTURN returns what a TURN ChannelData message or Data indication carries, or b.
func unwrapTURN(b []byte) []byte {
	if len(b) >= 4 && b[0]>>6 == 1 { // ChannelData: channel 0x4000-0x7FFF, length, data
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if len(b) >= 4+n {
			return b[4 : 4+n]
		}
		return nil
	}
	if len(b) < 20 || b[0]>>6 != 0 || binary.BigEndian.Uint32(b[4:8]) != 0x2112A442 {
		return b
	}
	if binary.BigEndian.Uint16(b[0:2]) != 0x0017 { // not a Data indication: STUN, no media
		return nil
	}
	for a := b[20:]; len(a) >= 4; {
		typ, n := binary.BigEndian.Uint16(a[0:2]), int(binary.BigEndian.Uint16(a[2:4]))
		if len(a) < 4+n {
			return nil
		}
		if typ == 0x0013 { // DATA
			return a[4 : 4+n]
		}
		pad := (n + 3) &^ 3
		if len(a) < 4+pad {
			return nil
		}
		a = a[4+pad:]
	}
	return nil
}

// seen counts the packets of each SSRC that arrived in [from, to), for a failure's message.
func (c *capture) seen(from, to time.Time) map[uint32]int {
	out := map[uint32]int{}
	for _, p := range c.packets(nil, from, to) {
		out[p.ssrc]++
	}
	return out
}
