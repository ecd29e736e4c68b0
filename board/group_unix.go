//go:build unix

package board

import (
	"io/fs"
	"os/user"
	"strconv"
	"syscall"
)

// groupName names the group that owns a file, "" if unknown.
func groupName(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	g, err := user.LookupGroupId(strconv.FormatUint(uint64(st.Gid), 10))
	if err != nil {
		return ""
	}
	return g.Name
}
