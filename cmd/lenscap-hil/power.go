//go:build linux

package main

// The power interlock's hardware on the emulated board: a USB audio device on QEMU's xHCI
// controller, switched by its authorization (board.USBPower), and the camera's load switch,
// simulated: the gpio-sim line cam-power is the switch's enable, and vivid is unbound from
// its driver while the line is low (its /dev/video0 goes away, as a camera without power
// would) and bound again when it is high.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lenscap/lenscap/board"
)

const (
	lineCamPower = "cam-power"
	vividDriver  = "/sys/bus/platform/drivers/vivid"
	vividDevice  = "vivid.0"
)

// checkUSBDeauthorize switches the USB audio device off and on with board.USBPower, and reads
// back what the kernel did: "authorized" 0 and the node gone, then the node back and opening.
func checkUSBDeauthorize(ctx context.Context, h *harness) result {
	node, err := waitGlob(ctx, "/dev/snd/pcmC*D0p", 15*time.Second)
	if err != nil {
		return failf("no USB audio playback node (qemu -device usb-audio, snd-usb-audio): %v", err)
	}
	remember := "/tmp/hil/power-usb.json"
	p, err := board.NewUSBPower(node, "", remember, 5*time.Second)
	if err != nil {
		return failf("%v", err)
	}
	var r struct{ USB string } // where the remember file says the device is
	if b, err := os.ReadFile(remember); err != nil || json.Unmarshal(b, &r) != nil || r.USB == "" {
		return failf("remember file %s: %v %q", remember, err, b)
	}
	desc := p.String()
	start := time.Now()
	if err := p.Off(); err != nil {
		_ = p.On()
		return failf("%s: Off: %v", desc, err)
	}
	off := time.Since(start)
	auth, _ := os.ReadFile(filepath.Join(r.USB, "authorized"))
	_, statErr := os.Stat(node)
	if strings.TrimSpace(string(auth)) != "0" || !errors.Is(statErr, os.ErrNotExist) {
		_ = p.On()
		return failf("after Off: %s/authorized reads %q, stat %s: %v", r.USB, auth, node, statErr)
	}
	start = time.Now()
	if err := p.On(); err != nil {
		return failf("%s: On: %v", desc, err)
	}
	on := time.Since(start)
	f, err := os.OpenFile(node, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return failf("after On: %v", err)
	}
	f.Close()
	return passf("%s at %s: off (authorized=0, %s gone) in %.0fms, on (%s opens) in %.0fms; now %s",
		desc, r.USB, node, off.Seconds()*1000, node, on.Seconds()*1000, p.String())
}

// checkVividUnbind proves the camera's simulated load switch on the kernel side: unbinding
// vivid removes its node, binding it again brings the node back, a vivid capture node.
func checkVividUnbind(ctx context.Context, h *harness) result {
	if h.camera == nil {
		return skipf("v4l2.find-camera")
	}
	restore, err := h.releaseCamera(ctx)
	if err != nil {
		return failf("%v", err)
	}
	detail, err := unbindAndBindVivid(ctx, h.camera.Path)
	if restore != nil {
		if rerr := restore(); rerr != nil {
			return failf("%s; %v", detail, rerr)
		}
		detail += "; lenscap's video cut and lifted around it"
	}
	if err != nil {
		return failf("%v", err)
	}
	return passf("%s", detail)
}

// unbindAndBindVivid unbinds vivid, waits for node to go, binds it and waits for node to come
// back as vivid's capture node; vivid is left bound.
func unbindAndBindVivid(ctx context.Context, node string) (string, error) {
	start := time.Now()
	if err := setVivid(false); err != nil {
		return "", err
	}
	if err := waitNode(ctx, node, false, 5*time.Second); err != nil {
		_ = setVivid(true)
		return "", fmt.Errorf("vivid unbound: %v", err)
	}
	gone := time.Since(start)
	start = time.Now()
	if err := setVivid(true); err != nil {
		return "", err
	}
	if err := waitNode(ctx, node, true, 5*time.Second); err != nil {
		return "", fmt.Errorf("vivid bound again: %v", err)
	}
	back := time.Since(start)
	nodes, _ := videoNodes()
	if n, ok := findCapture(nodes, "vivid"); !ok || n.Path != node {
		return "", fmt.Errorf("vivid bound again: its capture node is %q, not %s", n.Path, node)
	}
	return fmt.Sprintf("%s unbound: %s gone in %.0fms; bound: back in %.0fms (vivid capture)",
		vividDevice, node, gone.Seconds()*1000, back.Seconds()*1000), nil
}

// releaseCamera makes lenscap, when it holds the camera, close it (a remote cut of video), so
// that vivid's node number is free when vivid comes back; restore lifts the cut and waits for
// the camera to be held again. restore is nil when lenscap held nothing.
func (h *harness) releaseCamera(ctx context.Context) (restore func() error, err error) {
	if h.fw == nil || len(holders(h.fw.pid(), "/dev/video")) == 0 {
		return nil, nil
	}
	if err := h.setVideoPrivate(ctx, true); err != nil {
		return nil, err
	}
	if _, err := h.fw.waitHolds(false, 5*time.Second); err != nil {
		return nil, fmt.Errorf("after a remote cut of video: %v", err)
	}
	return func() error {
		if err := h.setVideoPrivate(ctx, false); err != nil {
			return err
		}
		if _, err := h.fw.waitHolds(true, 5*time.Second); err != nil {
			return fmt.Errorf("camera not reopened after the lift: %v", err)
		}
		return nil
	}, nil
}

// setVideoPrivate cuts or lifts video through lenscap's API.
func (h *harness) setVideoPrivate(ctx context.Context, private bool) error {
	code, b, err := h.fw.do(ctx, "POST", "/api/privacy", []byte(fmt.Sprintf(`{"video":%v}`, private)))
	if err != nil {
		return fmt.Errorf("POST /api/privacy video=%v: %v", private, err)
	}
	if code != 200 {
		return fmt.Errorf("POST /api/privacy video=%v: %d %s", private, code, b)
	}
	return nil
}

// simulateCameraPower makes the cam-power line the enable of the camera's load switch, until
// ctx ends or stop is called: while the line reads 0 vivid is unbound (no /dev/video0), while
// it reads 1 vivid is bound. The enable has a pull-up, as a switch that keeps the camera powered
// while nobody drives it: the camera has power until lenscap drives the line low. stop waits
// for the watcher, leaves vivid bound, and answers the first error the watcher met.
func (h *harness) simulateCameraPower(ctx context.Context) (stop func() error, err error) {
	if h.chip == nil {
		return nil, errors.New("simulate the camera's power: the gpio-sim chip was not found")
	}
	if err := h.chip.pull(lineCamPower, true); err != nil {
		return nil, fmt.Errorf("simulate the camera's power: %v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var first error
	record := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			v, err := h.chip.value(lineCamPower)
			if err == nil && (v == 1) != vividBound() {
				err = setVivid(v == 1)
			}
			if err != nil {
				record(err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	return func() error {
		cancel()
		wg.Wait()
		if !vividBound() {
			if err := setVivid(true); err != nil {
				record(err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return first
	}, nil
}

// vividBound says whether vivid.0 is bound to its driver.
func vividBound() bool {
	_, err := os.Lstat(filepath.Join(vividDriver, vividDevice))
	return err == nil
}

// setVivid binds vivid.0 to its driver, or unbinds it.
func setVivid(bound bool) error {
	file := filepath.Join(vividDriver, map[bool]string{true: "bind", false: "unbind"}[bound])
	if err := os.WriteFile(file, []byte(vividDevice), 0); err != nil {
		return fmt.Errorf("echo %s > %s: %v", vividDevice, file, err)
	}
	return nil
}

// waitNode waits until path exists (present) or not, up to timeout.
func waitNode(ctx context.Context, path string, present bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := os.Stat(path)
		if (err == nil) == present {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if present {
				return fmt.Errorf("%s not there %v later: %v", path, timeout, err)
			}
			return fmt.Errorf("%s still there %v later", path, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitGlob waits until a file matches pattern, up to timeout (USB enumeration under TCG takes
// seconds), and answers the first.
func waitGlob(ctx context.Context, pattern string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[0], nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("nothing matches %s after %v", pattern, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
