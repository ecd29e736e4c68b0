//go:build unix

package mqtttest

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit raises this process's soft limit of open files to want (at most the hard
// limit) and returns the new soft limit. A broker started afterwards inherits it: a fleet of N
// simulated devices needs about N descriptors in the test process and N in mosquitto.
func RaiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("mqtttest: getrlimit: %w", err)
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("mqtttest: setrlimit: %w", err)
	}
	return lim.Cur, nil
}
