// Package boardtest has fakes of package board's hardware: a PinDriver over periph's gpiotest
// pins.
package boardtest

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/lenscap/lenscap/board"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// Pins is a board.PinDriver over gpiotest pins: one chip with lines named GPIO0..GPIO<n-1>,
// found by name or offset. Its pins have an EdgesChan, so a test can press a button.
type Pins struct {
	Chip  string // the chip's name, e.g. "pinctrl-bcm2711"
	mu    sync.Mutex
	lines []*gpiotest.Pin
}

// NewPins returns a chip of n lines, each idle high.
func NewPins(chip string, n int) *Pins {
	p := &Pins{Chip: chip}
	for i := range n {
		p.lines = append(p.lines, &gpiotest.Pin{N: fmt.Sprintf("GPIO%d", i), Num: i, L: gpio.High,
			EdgesChan: make(chan gpio.Level, 64)})
	}
	return p
}

// Line returns a line by offset, for the test to drive or read.
func (p *Pins) Line(n int) *gpiotest.Pin { return p.lines[n] }

// Pin implements board.PinDriver.
func (p *Pins) Pin(chip, line string) (gpio.PinIO, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if chip != p.Chip {
		return nil, fmt.Errorf("%w: %q (this fake has %q)", board.ErrNoChip, chip, p.Chip)
	}
	for _, l := range p.lines {
		if l.N == line || strconv.Itoa(l.Num) == line {
			return l, nil
		}
	}
	return nil, fmt.Errorf("%w: %q on %s", board.ErrNoPin, line, chip)
}
