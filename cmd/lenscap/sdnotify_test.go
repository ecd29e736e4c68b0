package main

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readDatagram(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 512)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestSdNotifySendsOneDatagramPerState(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c := listenNotify(t, sock)
	for _, state := range []string{"READY=1", "WATCHDOG=1", "STOPPING=1"} {
		if err := sdNotify(sock, state); err != nil {
			t.Fatal(err)
		}
		if got := readDatagram(t, c); got != state {
			t.Errorf("got %q, want %q", got, state)
		}
	}
}

func TestSdNotifyReachesAnAbstractSocket(t *testing.T) {
	name := "@lenscap-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c := listenNotify(t, name)
	if err := sdNotify(name, "READY=1"); err != nil {
		t.Fatal(err)
	}
	if got := readDatagram(t, c); got != "READY=1" {
		t.Errorf("got %q", got)
	}
}

func TestSdNotifyWithoutSocketDoesNothing(t *testing.T) {
	if err := sdNotify("", "READY=1"); err != nil {
		t.Errorf("no NOTIFY_SOCKET: %v, want nil", err)
	}
}

func TestSdNotifyToAMissingSocketIsAnError(t *testing.T) {
	if err := sdNotify(filepath.Join(t.TempDir(), "absent"), "READY=1"); err == nil {
		t.Error("no error for a socket that does not exist")
	}
}

func TestSdWatchdogIntervalIsHalfTheTimeoutForThisProcess(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for name, tc := range map[string]struct {
		env  map[string]string
		want time.Duration
		ok   bool
	}{
		"unset":        {map[string]string{}, 0, false},
		"20s":          {map[string]string{"WATCHDOG_USEC": "20000000"}, 10 * time.Second, true},
		"this pid":     {map[string]string{"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "42"}, 10 * time.Second, true},
		"another pid":  {map[string]string{"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "7"}, 0, false},
		"zero":         {map[string]string{"WATCHDOG_USEC": "0"}, 0, false},
		"not a number": {map[string]string{"WATCHDOG_USEC": "x"}, 0, false},
	} {
		got, ok := sdWatchdogInterval(env(tc.env), 42)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %v %v, want %v %v", name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSdWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var pings []time.Duration
		healthy := true
		start := time.Now()
		notify := func(state string) error {
			if state != "WATCHDOG=1" {
				t.Errorf("state %q", state)
			}
			mu.Lock()
			pings = append(pings, time.Since(start))
			mu.Unlock()
			return nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() {
			done <- sdWatchdog(ctx, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return healthy }, notify)
		}()
		time.Sleep(35 * time.Second) // pings at 10, 20, 30 s
		mu.Lock()
		healthy = false
		mu.Unlock()
		time.Sleep(30 * time.Second) // none at 40, 50, 60 s
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sdWatchdog returned %v at cancel, want nil", err)
		}
		want := []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second}
		if len(pings) != len(want) {
			t.Fatalf("pings at %v, want %v", pings, want)
		}
		for i := range want {
			if pings[i] != want[i] {
				t.Errorf("ping %d at %v, want %v", i, pings[i], want[i])
			}
		}
	})
}
