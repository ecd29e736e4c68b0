//go:build !linux

package main

// lenscap-hil drives Linux drivers (V4L2, gpio-sim) in the emulated board's guest (make hil,
// scripts/hil.sh); elsewhere it only says so.

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "lenscap-hil: runs in the emulated board's Linux guest only: make hil")
	os.Exit(2)
}
