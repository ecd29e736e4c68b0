package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/lenscap/lenscap/device"
)

// sd_notify(3) in pure Go, for the systemd unit's Type=notify and WatchdogSec (make package,
// scripts/package/lenscap.service). No library: one datagram per state on $NOTIFY_SOCKET.
//
// The daemon sends "READY=1" once the privacy state is loaded and the HTTP listener is serving,
// "STOPPING=1" when it begins to shut down, and "WATCHDOG=1" every half WatchdogSec while its
// run loop is healthy; systemd restarts it (Restart=on-failure) when the pings stop.

// sdNotify sends state (e.g. "READY=1", "WATCHDOG=1", "STATUS=...") to the service manager at
// socket, the value of $NOTIFY_SOCKET: a path, or "@name" for the abstract namespace. An empty
// socket (not started by systemd, or a unit without Type=notify) is not an error: nothing is sent.
func sdNotify(socket, state string) error {
	if socket == "" {
		return nil
	}
	// Go maps a leading "@" to Linux's abstract namespace.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	return nil
}

// sdWatchdogInterval is how often to send "WATCHDOG=1": half of $WATCHDOG_USEC, when it is set
// and $WATCHDOG_PID is unset or this process's pid. ok is false when no watchdog is expected.
func sdWatchdogInterval(getenv func(string) string, pid int) (interval time.Duration, ok bool) {
	usec, err := strconv.ParseUint(getenv("WATCHDOG_USEC"), 10, 63)
	if err != nil || usec == 0 {
		return 0, false
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return 0, false
	}
	return time.Duration(usec) * time.Microsecond / 2, true
}

// sdWatchdog sends "WATCHDOG=1" through notify every interval while healthy() says so, until
// ctx is done; it returns nil then. A ping that fails is skipped (the next may work); when
// healthy() is false no ping is sent, so systemd's watchdog fires and restarts the daemon.
func sdWatchdog(ctx context.Context, interval time.Duration, healthy func() bool, notify func(state string) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if healthy() {
				_ = notify("WATCHDOG=1")
			}
		}
	}
}

// responsive is the watchdog's health check: the device answers a status query within limit
// (its lock is not stuck). A stuck query leaves its goroutine behind, and the watchdog then
// restarts the process.
func responsive(dev *device.Device, limit time.Duration) func() bool {
	return func() bool {
		done := make(chan struct{})
		go func() {
			dev.Status()
			close(done)
		}()
		select {
		case <-done:
			return true
		case <-time.After(limit):
			return false
		}
	}
}
