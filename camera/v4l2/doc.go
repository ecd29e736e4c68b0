// Package v4l2 is a minimal pure-Go binding of the Video4Linux2 ioctl API over
// golang.org/x/sys/unix: the structures and request numbers lenscap needs (types.go,
// checked against the kernel's own linux/videodev2.h for amd64 and arm64 by
// layout_test.go), a Device with EINTR-safe ioctl wrappers, MMAP buffer queues for
// single- and multi-planar buffer types, and device discovery by QUERYCAP. The device
// operations exist on Linux only; the types build everywhere.
package v4l2
