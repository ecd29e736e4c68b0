//go:build !unix

package board

import "io/fs"

// groupName names the group that owns a file: unknown here.
func groupName(fs.FileInfo) string { return "" }
