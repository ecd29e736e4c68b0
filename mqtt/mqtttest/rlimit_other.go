//go:build !unix

package mqtttest

// RaiseFileLimit does nothing where there is no RLIMIT_NOFILE; it returns 0.
func RaiseFileLimit(want uint64) (uint64, error) { return 0, nil }
