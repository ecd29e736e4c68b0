package v4l2

import "unsafe"

// This file holds the kernel's V4L2 ABI as Go types: the structures of linux/videodev2.h
// lenscap uses, laid out as on 64-bit Linux (amd64, arm64: LP64, 8-byte pointers and
// longs, a 16-byte struct timeval), and the ioctl request numbers computed from their
// sizes the kernel's way (_IOR/_IOW/_IOWR). It imports nothing but unsafe, so the layout
// test can type-check it for any GOARCH with go/types and compare with the kernel's
// headers compiled for that architecture. 32-bit ARM has other layouts and is not
// supported.

// Capability is struct v4l2_capability (VIDIOC_QUERYCAP).
type Capability struct {
	Driver       [16]byte
	Card         [32]byte
	BusInfo      [32]byte
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

// PixFormat is struct v4l2_pix_format, the single-planar member of Format's union.
type PixFormat struct {
	Width        uint32
	Height       uint32
	PixelFormat  uint32
	Field        uint32
	BytesPerLine uint32
	SizeImage    uint32
	Colorspace   uint32
	Priv         uint32
	Flags        uint32
	YcbcrEnc     uint32
	Quantization uint32
	XferFunc     uint32
}

// PlanePixFormat is struct v4l2_plane_pix_format (packed in C; naturally aligned here,
// which gives the same 20-byte layout).
type PlanePixFormat struct {
	SizeImage    uint32
	BytesPerLine uint32
	Reserved     [6]uint16
}

// PixFormatMplane is struct v4l2_pix_format_mplane, the multi-planar member of Format's
// union (packed in C: 192 bytes, no padding; the Go layout is the same).
type PixFormatMplane struct {
	Width        uint32
	Height       uint32
	PixelFormat  uint32
	Field        uint32
	Colorspace   uint32
	PlaneFmt     [MaxPlanes]PlanePixFormat
	NumPlanes    uint8
	Flags        uint8
	YcbcrEnc     uint8
	Quantization uint8
	XferFunc     uint8
	Reserved     [7]uint8
}

// Format is struct v4l2_format (VIDIOC_G_FMT, S_FMT, TRY_FMT). The kernel's union is 200
// bytes at offset 8 (it holds pointers, so it is 8-aligned); Pix and PixMplane view it.
type Format struct {
	Type uint32
	_    uint32
	Raw  [200]byte
}

// Pix views the union as struct v4l2_pix_format (single-planar buffer types).
func (f *Format) Pix() *PixFormat { return (*PixFormat)(unsafe.Pointer(&f.Raw[0])) }

// PixMplane views the union as struct v4l2_pix_format_mplane (multi-planar buffer types).
func (f *Format) PixMplane() *PixFormatMplane {
	return (*PixFormatMplane)(unsafe.Pointer(&f.Raw[0]))
}

// FmtDesc is struct v4l2_fmtdesc (VIDIOC_ENUM_FMT).
type FmtDesc struct {
	Index       uint32
	Type        uint32
	Flags       uint32
	Description [32]byte
	PixelFormat uint32
	MbusCode    uint32
	Reserved    [3]uint32
}

// FrmSizeEnum is struct v4l2_frmsizeenum (VIDIOC_ENUM_FRAMESIZES). For Type
// FrmSizeTypeDiscrete, Size[0] and Size[1] are the width and height; otherwise Size is
// min_width, max_width, step_width, min_height, max_height, step_height.
type FrmSizeEnum struct {
	Index       uint32
	PixelFormat uint32
	Type        uint32
	Size        [6]uint32
	Reserved    [2]uint32
}

// RequestBuffers is struct v4l2_requestbuffers (VIDIOC_REQBUFS).
type RequestBuffers struct {
	Count        uint32
	Type         uint32
	Memory       uint32
	Capabilities uint32
	Flags        uint8
	Reserved     [3]uint8
}

// Timeval is struct timeval on LP64 Linux.
type Timeval struct {
	Sec  int64
	Usec int64
}

// Timecode is struct v4l2_timecode.
type Timecode struct {
	Type     uint32
	Flags    uint32
	Frames   uint8
	Seconds  uint8
	Minutes  uint8
	Hours    uint8
	Userbits [4]uint8
}

// Buffer is struct v4l2_buffer (VIDIOC_QUERYBUF, QBUF, DQBUF). M is the union m: the
// MMAP offset (single-planar) in its low 32 bits, or the address of a []Plane array
// (multi-planar), which the caller keeps alive across the ioctl (runtime.KeepAlive).
type Buffer struct {
	Index     uint32
	Type      uint32
	BytesUsed uint32
	Flags     uint32
	Field     uint32
	_         uint32
	Timestamp Timeval
	Timecode  Timecode
	Sequence  uint32
	Memory    uint32
	M         uintptr
	Length    uint32
	Reserved2 uint32
	RequestFD int32
	_         uint32
}

// Plane is struct v4l2_plane. M is the union m: the MMAP offset in its low 32 bits.
type Plane struct {
	BytesUsed  uint32
	Length     uint32
	M          uintptr
	DataOffset uint32
	Reserved   [11]uint32
}

// Fract is struct v4l2_fract.
type Fract struct {
	Numerator   uint32
	Denominator uint32
}

// CaptureParm is struct v4l2_captureparm; struct v4l2_outputparm has the same layout
// (outputmode and writebuffers in place of capturemode and readbuffers).
type CaptureParm struct {
	Capability   uint32
	CaptureMode  uint32
	TimePerFrame Fract
	ExtendedMode uint32
	ReadBuffers  uint32
	Reserved     [4]uint32
}

// StreamParm is struct v4l2_streamparm (VIDIOC_G_PARM, S_PARM); the union is 200 bytes
// at offset 4.
type StreamParm struct {
	Type uint32
	Parm CaptureParm
	_    [200 - 40]byte
}

// Control is struct v4l2_control (VIDIOC_G_CTRL, S_CTRL). S_CTRL reaches every
// non-compound control, the codec class included.
type Control struct {
	ID    uint32
	Value int32
}

// QueryCtrl is struct v4l2_queryctrl (VIDIOC_QUERYCTRL).
type QueryCtrl struct {
	ID           uint32
	Type         uint32
	Name         [32]byte
	Minimum      int32
	Maximum      int32
	Step         int32
	DefaultValue int32
	Flags        uint32
	Reserved     [2]uint32
}

// CtrlFlagNextCtrl is V4L2_CTRL_FLAG_NEXT_CTRL: QUERYCTRL with it or'ed into ID returns the
// next control after ID.
const CtrlFlagNextCtrl = 0x80000000

// EncoderCmd is struct v4l2_encoder_cmd (VIDIOC_ENCODER_CMD).
type EncoderCmd struct {
	Cmd   uint32
	Flags uint32
	Data  [8]uint32
}

// ExportBuffer is struct v4l2_exportbuffer (VIDIOC_EXPBUF).
type ExportBuffer struct {
	Type     uint32
	Index    uint32
	Plane    uint32
	Flags    uint32
	FD       int32
	Reserved [11]uint32
}

// MaxPlanes is VIDEO_MAX_PLANES.
const MaxPlanes = 8

// The ioctl request encoding of include/uapi/asm-generic/ioctl.h, which amd64 and arm64
// both use: direction in bits 30-31, size in 16-29, type in 8-15, number in 0-7.
const (
	iocWrite = 1
	iocRead  = 2
)

// The VIDIOC_* requests lenscap uses, numbered as in videodev2.h.
const (
	VIDIOC_QUERYCAP        = iocRead<<30 | unsafe.Sizeof(Capability{})<<16 | 'V'<<8 | 0
	VIDIOC_ENUM_FMT        = (iocRead|iocWrite)<<30 | unsafe.Sizeof(FmtDesc{})<<16 | 'V'<<8 | 2
	VIDIOC_G_FMT           = (iocRead|iocWrite)<<30 | unsafe.Sizeof(Format{})<<16 | 'V'<<8 | 4
	VIDIOC_S_FMT           = (iocRead|iocWrite)<<30 | unsafe.Sizeof(Format{})<<16 | 'V'<<8 | 5
	VIDIOC_REQBUFS         = (iocRead|iocWrite)<<30 | unsafe.Sizeof(RequestBuffers{})<<16 | 'V'<<8 | 8
	VIDIOC_QUERYBUF        = (iocRead|iocWrite)<<30 | unsafe.Sizeof(Buffer{})<<16 | 'V'<<8 | 9
	VIDIOC_QBUF            = (iocRead|iocWrite)<<30 | unsafe.Sizeof(Buffer{})<<16 | 'V'<<8 | 15
	VIDIOC_EXPBUF          = (iocRead|iocWrite)<<30 | unsafe.Sizeof(ExportBuffer{})<<16 | 'V'<<8 | 16
	VIDIOC_DQBUF           = (iocRead|iocWrite)<<30 | unsafe.Sizeof(Buffer{})<<16 | 'V'<<8 | 17
	VIDIOC_STREAMON        = iocWrite<<30 | unsafe.Sizeof(int32(0))<<16 | 'V'<<8 | 18
	VIDIOC_STREAMOFF       = iocWrite<<30 | unsafe.Sizeof(int32(0))<<16 | 'V'<<8 | 19
	VIDIOC_G_PARM          = (iocRead|iocWrite)<<30 | unsafe.Sizeof(StreamParm{})<<16 | 'V'<<8 | 21
	VIDIOC_S_PARM          = (iocRead|iocWrite)<<30 | unsafe.Sizeof(StreamParm{})<<16 | 'V'<<8 | 22
	VIDIOC_G_CTRL          = (iocRead|iocWrite)<<30 | unsafe.Sizeof(Control{})<<16 | 'V'<<8 | 27
	VIDIOC_S_CTRL          = (iocRead|iocWrite)<<30 | unsafe.Sizeof(Control{})<<16 | 'V'<<8 | 28
	VIDIOC_QUERYCTRL       = (iocRead|iocWrite)<<30 | unsafe.Sizeof(QueryCtrl{})<<16 | 'V'<<8 | 36
	VIDIOC_TRY_FMT         = (iocRead|iocWrite)<<30 | unsafe.Sizeof(Format{})<<16 | 'V'<<8 | 64
	VIDIOC_ENUM_FRAMESIZES = (iocRead|iocWrite)<<30 | unsafe.Sizeof(FrmSizeEnum{})<<16 | 'V'<<8 | 74
	VIDIOC_ENCODER_CMD     = (iocRead|iocWrite)<<30 | unsafe.Sizeof(EncoderCmd{})<<16 | 'V'<<8 | 77
)

// Capabilities (v4l2_capability.capabilities and device_caps).
const (
	CapVideoCapture       = 0x00000001
	CapVideoOutput        = 0x00000002
	CapVideoCaptureMplane = 0x00001000
	CapVideoOutputMplane  = 0x00002000
	CapVideoM2MMplane     = 0x00004000
	CapVideoM2M           = 0x00008000
	CapStreaming          = 0x04000000
	CapDeviceCaps         = 0x80000000
)

// Buffer types (enum v4l2_buf_type).
const (
	BufTypeVideoCapture       = 1
	BufTypeVideoOutput        = 2
	BufTypeVideoCaptureMplane = 9
	BufTypeVideoOutputMplane  = 10
)

// Memory types, fields and frame size types.
const (
	MemoryMmap          = 1
	FieldAny            = 0
	FieldNone           = 1
	FrmSizeTypeDiscrete = 1
	FmtFlagCompressed   = 0x0001
)

// Buffer flags (v4l2_buffer.flags).
const (
	BufFlagMapped   = 0x00000001
	BufFlagQueued   = 0x00000002
	BufFlagDone     = 0x00000004
	BufFlagKeyframe = 0x00000008
	BufFlagPframe   = 0x00000010
	BufFlagError    = 0x00000040
	BufFlagLast     = 0x00100000
)

// Encoder commands (v4l2_encoder_cmd.cmd).
const (
	EncCmdStart = 0
	EncCmdStop  = 1
)

// Codec-class controls (V4L2_CID_CODEC_BASE = 0x990900 + n) and their values.
const (
	CIDGopSize                     = 0x990900 + 203
	CIDBitrateMode                 = 0x990900 + 206
	CIDBitrate                     = 0x990900 + 207
	CIDRepeatSeqHeader             = 0x990900 + 226
	CIDForceKeyFrame               = 0x990900 + 229
	CIDH264IPeriod                 = 0x990900 + 358
	CIDH264Level                   = 0x990900 + 359
	CIDH264Profile                 = 0x990900 + 363
	BitrateModeVBR                 = 0
	BitrateModeCBR                 = 1
	H264ProfileBaseline            = 0
	H264ProfileConstrainedBaseline = 1
	H264ProfileMain                = 2
	H264ProfileHigh                = 4
)

// FWHTFlagIFrame is V4L2_FWHT_FL_I_FRAME: in the big-endian flags word at offset 20 of a
// FWHT frame header (vicodec), set for an intra frame. vicodec's encoder does not set
// V4L2_BUF_FLAG_KEYFRAME; this bit says it.
const FWHTFlagIFrame = 1 << 10

// Fourcc makes a V4L2 pixel format code (v4l2_fourcc).
func Fourcc(a, b, c, d byte) uint32 {
	return uint32(a) | uint32(b)<<8 | uint32(c)<<16 | uint32(d)<<24
}

// Pixel formats lenscap reads or writes.
var (
	PixFmtYUV420 = Fourcc('Y', 'U', '1', '2') // planar 4:2:0, Y then U then V
	PixFmtNV12   = Fourcc('N', 'V', '1', '2') // Y plane, then interleaved CbCr
	PixFmtYUYV   = Fourcc('Y', 'U', 'Y', 'V') // packed 4:2:2
	PixFmtMJPEG  = Fourcc('M', 'J', 'P', 'G')
	PixFmtJPEG   = Fourcc('J', 'P', 'E', 'G')
	PixFmtH264   = Fourcc('H', '2', '6', '4') // Annex-B with start codes
	PixFmtFWHT   = Fourcc('F', 'W', 'H', 'T') // vicodec's coded format
)

// FourccString is the four characters of a pixel format code ("YU12").
func FourccString(f uint32) string {
	b := [4]byte{byte(f), byte(f >> 8), byte(f >> 16), byte(f >> 24)}
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b[:])
}

// CString is a NUL-terminated byte array of the kernel as a string.
func CString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
