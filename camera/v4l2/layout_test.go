package v4l2

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// layoutCheck is one number the kernel's header and types.go must agree on: C is a C
// expression over linux/videodev2.h; Go names a type ("Buffer"), a field ("Buffer.M") or a
// constant ("VIDIOC_QBUF") of this package.
type layoutCheck struct{ C, Go string }

var layoutChecks = []layoutCheck{
	{"sizeof(struct v4l2_capability)", "Capability"},
	{"offsetof(struct v4l2_capability, capabilities)", "Capability.Capabilities"},
	{"offsetof(struct v4l2_capability, device_caps)", "Capability.DeviceCaps"},
	{"sizeof(struct v4l2_pix_format)", "PixFormat"},
	{"offsetof(struct v4l2_pix_format, sizeimage)", "PixFormat.SizeImage"},
	{"offsetof(struct v4l2_pix_format, xfer_func)", "PixFormat.XferFunc"},
	{"sizeof(struct v4l2_plane_pix_format)", "PlanePixFormat"},
	{"sizeof(struct v4l2_pix_format_mplane)", "PixFormatMplane"},
	{"offsetof(struct v4l2_pix_format_mplane, plane_fmt)", "PixFormatMplane.PlaneFmt"},
	{"offsetof(struct v4l2_pix_format_mplane, num_planes)", "PixFormatMplane.NumPlanes"},
	{"offsetof(struct v4l2_pix_format_mplane, xfer_func)", "PixFormatMplane.XferFunc"},
	{"sizeof(struct v4l2_format)", "Format"},
	{"offsetof(struct v4l2_format, fmt)", "Format.Raw"},
	{"sizeof(struct v4l2_fmtdesc)", "FmtDesc"},
	{"offsetof(struct v4l2_fmtdesc, pixelformat)", "FmtDesc.PixelFormat"},
	{"sizeof(struct v4l2_frmsizeenum)", "FrmSizeEnum"},
	{"offsetof(struct v4l2_frmsizeenum, discrete)", "FrmSizeEnum.Size"},
	{"sizeof(struct v4l2_requestbuffers)", "RequestBuffers"},
	{"offsetof(struct v4l2_requestbuffers, capabilities)", "RequestBuffers.Capabilities"},
	{"sizeof(struct v4l2_buffer)", "Buffer"},
	{"offsetof(struct v4l2_buffer, timestamp)", "Buffer.Timestamp"},
	{"offsetof(struct v4l2_buffer, timecode)", "Buffer.Timecode"},
	{"offsetof(struct v4l2_buffer, sequence)", "Buffer.Sequence"},
	{"offsetof(struct v4l2_buffer, memory)", "Buffer.Memory"},
	{"offsetof(struct v4l2_buffer, m)", "Buffer.M"},
	{"offsetof(struct v4l2_buffer, length)", "Buffer.Length"},
	{"offsetof(struct v4l2_buffer, request_fd)", "Buffer.RequestFD"},
	{"sizeof(struct v4l2_timecode)", "Timecode"},
	{"sizeof(struct v4l2_plane)", "Plane"},
	{"offsetof(struct v4l2_plane, m)", "Plane.M"},
	{"offsetof(struct v4l2_plane, data_offset)", "Plane.DataOffset"},
	{"sizeof(struct v4l2_captureparm)", "CaptureParm"},
	{"sizeof(struct v4l2_outputparm)", "CaptureParm"},
	{"offsetof(struct v4l2_captureparm, timeperframe)", "CaptureParm.TimePerFrame"},
	{"offsetof(struct v4l2_outputparm, timeperframe)", "CaptureParm.TimePerFrame"},
	{"sizeof(struct v4l2_streamparm)", "StreamParm"},
	{"offsetof(struct v4l2_streamparm, parm)", "StreamParm.Parm"},
	{"sizeof(struct v4l2_control)", "Control"},
	{"sizeof(struct v4l2_encoder_cmd)", "EncoderCmd"},
	{"sizeof(struct v4l2_queryctrl)", "QueryCtrl"},
	{"offsetof(struct v4l2_queryctrl, flags)", "QueryCtrl.Flags"},
	{"VIDIOC_QUERYCTRL", "VIDIOC_QUERYCTRL"},
	{"V4L2_CTRL_FLAG_NEXT_CTRL", "CtrlFlagNextCtrl"},
	{"sizeof(struct v4l2_exportbuffer)", "ExportBuffer"},
	{"offsetof(struct v4l2_exportbuffer, fd)", "ExportBuffer.FD"},
	{"VIDEO_MAX_PLANES", "MaxPlanes"},
	{"VIDIOC_QUERYCAP", "VIDIOC_QUERYCAP"},
	{"VIDIOC_ENUM_FMT", "VIDIOC_ENUM_FMT"},
	{"VIDIOC_G_FMT", "VIDIOC_G_FMT"},
	{"VIDIOC_S_FMT", "VIDIOC_S_FMT"},
	{"VIDIOC_TRY_FMT", "VIDIOC_TRY_FMT"},
	{"VIDIOC_REQBUFS", "VIDIOC_REQBUFS"},
	{"VIDIOC_QUERYBUF", "VIDIOC_QUERYBUF"},
	{"VIDIOC_QBUF", "VIDIOC_QBUF"},
	{"VIDIOC_EXPBUF", "VIDIOC_EXPBUF"},
	{"VIDIOC_DQBUF", "VIDIOC_DQBUF"},
	{"VIDIOC_STREAMON", "VIDIOC_STREAMON"},
	{"VIDIOC_STREAMOFF", "VIDIOC_STREAMOFF"},
	{"VIDIOC_G_PARM", "VIDIOC_G_PARM"},
	{"VIDIOC_S_PARM", "VIDIOC_S_PARM"},
	{"VIDIOC_G_CTRL", "VIDIOC_G_CTRL"},
	{"VIDIOC_S_CTRL", "VIDIOC_S_CTRL"},
	{"VIDIOC_ENUM_FRAMESIZES", "VIDIOC_ENUM_FRAMESIZES"},
	{"VIDIOC_ENCODER_CMD", "VIDIOC_ENCODER_CMD"},
	{"V4L2_CAP_VIDEO_CAPTURE", "CapVideoCapture"},
	{"V4L2_CAP_VIDEO_OUTPUT", "CapVideoOutput"},
	{"V4L2_CAP_VIDEO_CAPTURE_MPLANE", "CapVideoCaptureMplane"},
	{"V4L2_CAP_VIDEO_OUTPUT_MPLANE", "CapVideoOutputMplane"},
	{"V4L2_CAP_VIDEO_M2M_MPLANE", "CapVideoM2MMplane"},
	{"V4L2_CAP_VIDEO_M2M", "CapVideoM2M"},
	{"V4L2_CAP_STREAMING", "CapStreaming"},
	{"V4L2_CAP_DEVICE_CAPS", "CapDeviceCaps"},
	{"V4L2_BUF_TYPE_VIDEO_CAPTURE", "BufTypeVideoCapture"},
	{"V4L2_BUF_TYPE_VIDEO_OUTPUT", "BufTypeVideoOutput"},
	{"V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE", "BufTypeVideoCaptureMplane"},
	{"V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE", "BufTypeVideoOutputMplane"},
	{"V4L2_MEMORY_MMAP", "MemoryMmap"},
	{"V4L2_FIELD_ANY", "FieldAny"},
	{"V4L2_FIELD_NONE", "FieldNone"},
	{"V4L2_FRMSIZE_TYPE_DISCRETE", "FrmSizeTypeDiscrete"},
	{"V4L2_FMT_FLAG_COMPRESSED", "FmtFlagCompressed"},
	{"V4L2_BUF_FLAG_MAPPED", "BufFlagMapped"},
	{"V4L2_BUF_FLAG_QUEUED", "BufFlagQueued"},
	{"V4L2_BUF_FLAG_DONE", "BufFlagDone"},
	{"V4L2_BUF_FLAG_KEYFRAME", "BufFlagKeyframe"},
	{"V4L2_BUF_FLAG_PFRAME", "BufFlagPframe"},
	{"V4L2_BUF_FLAG_ERROR", "BufFlagError"},
	{"V4L2_BUF_FLAG_LAST", "BufFlagLast"},
	{"V4L2_ENC_CMD_START", "EncCmdStart"},
	{"V4L2_ENC_CMD_STOP", "EncCmdStop"},
	{"V4L2_CID_MPEG_VIDEO_GOP_SIZE", "CIDGopSize"},
	{"V4L2_CID_MPEG_VIDEO_BITRATE_MODE", "CIDBitrateMode"},
	{"V4L2_CID_MPEG_VIDEO_BITRATE", "CIDBitrate"},
	{"V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER", "CIDRepeatSeqHeader"},
	{"V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME", "CIDForceKeyFrame"},
	{"V4L2_CID_MPEG_VIDEO_H264_I_PERIOD", "CIDH264IPeriod"},
	{"V4L2_CID_MPEG_VIDEO_H264_LEVEL", "CIDH264Level"},
	{"V4L2_CID_MPEG_VIDEO_H264_PROFILE", "CIDH264Profile"},
	{"V4L2_MPEG_VIDEO_BITRATE_MODE_VBR", "BitrateModeVBR"},
	{"V4L2_MPEG_VIDEO_BITRATE_MODE_CBR", "BitrateModeCBR"},
	{"V4L2_MPEG_VIDEO_H264_PROFILE_BASELINE", "H264ProfileBaseline"},
	{"V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE", "H264ProfileConstrainedBaseline"},
	{"V4L2_MPEG_VIDEO_H264_PROFILE_MAIN", "H264ProfileMain"},
	{"V4L2_MPEG_VIDEO_H264_PROFILE_HIGH", "H264ProfileHigh"},
	{"V4L2_FWHT_FL_I_FRAME", "FWHTFlagIFrame"},
	{"V4L2_PIX_FMT_YUV420", "PixFmtYUV420"},
	{"V4L2_PIX_FMT_NV12", "PixFmtNV12"},
	{"V4L2_PIX_FMT_YUYV", "PixFmtYUYV"},
	{"V4L2_PIX_FMT_MJPEG", "PixFmtMJPEG"},
	{"V4L2_PIX_FMT_JPEG", "PixFmtJPEG"},
	{"V4L2_PIX_FMT_H264", "PixFmtH264"},
	{"V4L2_PIX_FMT_FWHT", "PixFmtFWHT"},
}

// TestLayoutMatchesKernelHeaders compiles the checks' C expressions against the kernel's
// linux/videodev2.h with the C compiler of each target (gcc for amd64,
// aarch64-linux-gnu-gcc for arm64) and compares them with types.go type-checked for that
// GOARCH by go/types. The C side is compiled to assembly only (the kernel's asm-offsets
// trick), so a cross compiler suffices and nothing foreign is run; the Go side uses the
// gc compiler's sizes for the target, so both architectures are checked from one host.
func TestLayoutMatchesKernelHeaders(t *testing.T) {
	for _, target := range []struct{ goarch, cc string }{
		{"amd64", "x86_64-linux-gnu-gcc"},
		{"arm64", "aarch64-linux-gnu-gcc"},
	} {
		t.Run(target.goarch, func(t *testing.T) {
			cc, err := exec.LookPath(target.cc)
			if err != nil && target.goarch == "amd64" {
				cc, err = exec.LookPath("gcc")
			}
			if err != nil {
				t.Skipf("no C compiler for %s (%s): install gcc (amd64) or gcc-aarch64-linux-gnu (arm64)", target.goarch, target.cc)
			}
			cVals := cValues(t, cc)
			goVals := goValues(t, target.goarch)
			for i, c := range layoutChecks {
				got, ok := goVals[c.Go]
				if !ok {
					t.Errorf("%s: not found in types.go", c.Go)
					continue
				}
				if want := cVals[i]; got != want {
					t.Errorf("%s: C %s = %d (%#x), Go %s = %d (%#x)", target.goarch, c.C, want, want, c.Go, got, got)
				}
			}
		})
	}
}

// cValues compiles the checks with cc -S and reads their values from the assembly.
func cValues(t *testing.T, cc string) map[int]int64 {
	t.Helper()
	var src strings.Builder
	src.WriteString("#include <stddef.h>\n#include <linux/videodev2.h>\nvoid lenscap_layout(void) {\n")
	for i, c := range layoutChecks {
		fmt.Fprintf(&src, "\tasm volatile(\"\\n.ascii \\\"->%d %%0\\\"\" : : \"i\"((long long)(%s)));\n", i, c.C)
	}
	src.WriteString("}\n")
	dir := t.TempDir()
	file := filepath.Join(dir, "layout.c")
	if err := os.WriteFile(file, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cc, "-S", "-o", "-", file).CombinedOutput()
	if err != nil {
		t.Fatalf("%s -S: %v\n%s", cc, err, out)
	}
	vals := make(map[int]int64)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		_, rest, ok := strings.Cut(sc.Text(), "\"->")
		if !ok {
			continue
		}
		rest = strings.TrimSuffix(strings.TrimSpace(rest), "\"")
		idx, val, _ := strings.Cut(rest, " ")
		i, err1 := strconv.Atoi(idx)
		v, err2 := strconv.ParseInt(strings.TrimLeft(val, "$#"), 0, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("cannot read %q from the assembly", sc.Text())
		}
		vals[i] = v
	}
	if len(vals) != len(layoutChecks) {
		t.Fatalf("read %d values from the assembly, want %d", len(vals), len(layoutChecks))
	}
	return vals
}

// goValues type-checks types.go for goarch and returns every type's size, every field's
// offset ("Type.Field") and every integer constant's value.
func goValues(t *testing.T, goarch string) map[string]int64 {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	sizes := types.SizesFor("gc", goarch)
	conf := types.Config{Sizes: sizes, Importer: unsafeImporter{}}
	pkg, err := conf.Check("v4l2", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vals := make(map[string]int64)
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		switch obj := scope.Lookup(name).(type) {
		case *types.Const:
			if v, ok := constant.Int64Val(constant.ToInt(obj.Val())); ok {
				vals[name] = v
			}
		case *types.TypeName:
			vals[name] = sizes.Sizeof(obj.Type())
			st, ok := obj.Type().Underlying().(*types.Struct)
			if !ok {
				continue
			}
			var fields []*types.Var
			for i := range st.NumFields() {
				fields = append(fields, st.Field(i))
			}
			for i, off := range sizes.Offsetsof(fields) {
				vals[name+"."+fields[i].Name()] = off
			}
		case *types.Var: // the pixel formats: Fourcc calls, evaluated here
			if strings.HasPrefix(name, "PixFmt") {
				vals[name] = int64(pixFmtValue(t, name))
			}
		}
	}
	return vals
}

// pixFmtValue is the value of a PixFmt variable of this build.
func pixFmtValue(t *testing.T, name string) uint32 {
	m := map[string]uint32{
		"PixFmtYUV420": PixFmtYUV420, "PixFmtNV12": PixFmtNV12, "PixFmtYUYV": PixFmtYUYV,
		"PixFmtMJPEG": PixFmtMJPEG, "PixFmtJPEG": PixFmtJPEG, "PixFmtH264": PixFmtH264,
		"PixFmtFWHT": PixFmtFWHT,
	}
	v, ok := m[name]
	if !ok {
		t.Fatalf("pixel format %s missing from pixFmtValue", name)
	}
	return v
}

// unsafeImporter resolves the one import of types.go.
type unsafeImporter struct{}

func (unsafeImporter) Import(path string) (*types.Package, error) {
	if path == "unsafe" {
		return types.Unsafe, nil
	}
	return nil, fmt.Errorf("types.go may import only unsafe, not %q", path)
}
