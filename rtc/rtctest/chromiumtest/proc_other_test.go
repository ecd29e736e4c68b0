//go:build !linux

package chromiumtest

// descendants is not implemented without /proc.
func descendants(pid int) []int { return nil }

func alive(pid int) bool { return false }
