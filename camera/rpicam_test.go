package camera

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
)

// fakeRPiCam writes a stand-in rpicam-vid: a shell script that records its arguments and
// PID, then loops the embedded clip on stdout with cat (a child process) until killed.
func fakeRPiCam(t *testing.T) (program, dir string) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir = t.TempDir()
	clip := filepath.Join(dir, "clip.h264")
	if err := os.WriteFile(clip, testPatternClip, 0o644); err != nil {
		t.Fatal(err)
	}
	program = filepath.Join(dir, "rpicam-vid")
	script := `#!/bin/sh
echo "$$" > "` + dir + `/pid"
echo "$@" > "` + dir + `/args"
while :; do cat "` + clip + `" || exit 1; done
`
	if err := os.WriteFile(program, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return program, dir
}

// liveProcessesInGroup counts the processes, zombies excepted, in process group pgid.
func liveProcessesInGroup(t *testing.T, pgid int) int {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	return liveInGroup(strconv.Itoa(pgid))
}

func TestRPiCamStreamsAccessUnitsAndCloseEndsTheProcessGroup(t *testing.T) {
	program, dir := fakeRPiCam(t)
	cam, err := NewRPiCam(RPiCamOptions{Program: program, Width: 640, Height: 360})
	if err != nil {
		t.Fatal(err)
	}
	fdsBefore := openFDs(t)
	st := mustOpen(t, cam)
	if _, err := cam.Open(); !errors.Is(err, ErrBusy) {
		t.Errorf("second Open: %v, want ErrBusy", err)
	}
	clip, _ := parseH264Clip(testPatternClip)
	for i := range 40 {
		f := mustRead(t, st)
		if !bytes.Equal(f.Data, clip.aus[i].data) || f.Keyframe != clip.aus[i].key {
			t.Fatalf("frame %d: %d bytes key %v, want the clip's access unit (%d bytes, key %v)",
				i, len(f.Data), f.Keyframe, len(clip.aus[i].data), clip.aus[i].key)
		}
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	for _, want := range []string{"-t 0", "-n", "--codec h264", "--inline", "--flush", "--width 640", "--height 360",
		"--framerate 30", "--intra 30", "-o -"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("rpicam-vid %s: lacks %q", args, want)
		}
	}
	pidText, _ := os.ReadFile(filepath.Join(dir, "pid"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatal(err)
	}
	if n := liveProcessesInGroup(t, pid); n < 2 {
		t.Fatalf("%d processes in the helper's group while streaming, want the script and its cat", n)
	}
	start := time.Now()
	st.Close()
	t.Logf("Close took %v", time.Since(start))
	if n := liveProcessesInGroup(t, pid); n != 0 {
		t.Errorf("%d processes of the helper's group alive after Close", n)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("rpicam-vid (pid %d) still exists after Close: kill -0: %v", pid, err)
	}
	if cam.IsOpen() {
		t.Error("the camera is held after Close")
	}
	if _, err := st.ReadFrame(); !errors.Is(err, device.ErrStreamClosed) {
		t.Errorf("ReadFrame after Close: %v, want ErrStreamClosed", err)
	}
	if after := openFDs(t); after != fdsBefore {
		t.Errorf("%d file descriptors open after Close, %d before", after, fdsBefore)
	}
	st2 := mustOpen(t, cam) // the camera can be opened again
	mustRead(t, st2)
	st2.Close()
}

func TestRPiCamExitEndsTheStreamWithItsMessage(t *testing.T) {
	dir := t.TempDir()
	program := filepath.Join(dir, "rpicam-vid")
	os.WriteFile(program, []byte("#!/bin/sh\necho 'ERROR: *** no cameras available ***' >&2\nexit 255\n"), 0o755)
	cam, err := NewRPiCam(RPiCamOptions{Program: program})
	if err != nil {
		t.Fatal(err)
	}
	st := mustOpen(t, cam)
	defer st.Close()
	_, err = st.ReadFrame()
	if !errors.Is(err, ErrEncoder) || !strings.Contains(err.Error(), "no cameras available") {
		t.Fatalf("ReadFrame: %v, want ErrEncoder with rpicam-vid's message", err)
	}
}

func TestRPiCamRawFramesGoThroughLenscapsEncoder(t *testing.T) {
	lookFFmpegTool(t, "ffmpeg")
	dir := t.TempDir()
	program := filepath.Join(dir, "rpicam-vid")
	// YUV420 from ffmpeg's test source, as rpicam-vid --codec yuv420 writes it.
	script := "#!/bin/sh\necho \"$@\" > " + dir + "/args\nexec ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=320x240:rate=30 -pix_fmt yuv420p -f rawvideo -\n"
	os.WriteFile(program, []byte(script), 0o755)
	cam, err := NewRPiCam(RPiCamOptions{Program: program, Raw: true, Width: 320, Height: 240,
		Encoder: EncoderOptions{Kind: EncoderSoftware}})
	if err != nil {
		t.Fatal(err)
	}
	st := mustOpen(t, cam)
	for i := range 5 {
		if f := mustRead(t, st); f.Keyframe != (i == 0) {
			t.Errorf("frame %d keyframe %v", i, f.Keyframe)
		}
	}
	st.Close()
	if args, _ := os.ReadFile(filepath.Join(dir, "args")); !strings.Contains(string(args), "--codec yuv420") {
		t.Errorf("rpicam-vid %s: want --codec yuv420", args)
	}
	if cam.IsOpen() {
		t.Error("camera held after Close")
	}
	if !strings.Contains(cam.Describe(), "software encoder") {
		t.Errorf("Describe() = %q", cam.Describe())
	}
}
