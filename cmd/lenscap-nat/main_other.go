//go:build !linux

package main

// lenscap-nat builds its networks from Linux network namespaces (make nat); elsewhere it only
// says so.

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "lenscap-nat: needs Linux (network namespaces, nftables): make nat on a Linux machine, as root")
	os.Exit(2)
}
