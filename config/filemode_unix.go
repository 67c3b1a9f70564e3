//go:build unix

package config

import (
	"io/fs"
	"os"
	"syscall"
)

// SecretFileExposed reports whether a secret file with info may be read by
// someone other than this process's user: others may read it, or its group
// may and that group is not one this process is in. A group this process
// is in is how Kubernetes shares a Secret volume with a non-root container
// (fsGroup, mode 0440) and how user-private groups work, so it is not
// counted.
func SecretFileExposed(info fs.FileInfo) bool {
	perm := info.Mode().Perm()
	if perm&0o004 != 0 {
		return true
	}
	if perm&0o040 == 0 {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	return !inGroup(int(st.Gid))
}

// inGroup reports whether this process is in group gid.
func inGroup(gid int) bool {
	if gid == os.Getgid() || gid == os.Getegid() {
		return true
	}
	groups, err := os.Getgroups()
	if err != nil {
		return false
	}
	for _, g := range groups {
		if g == gid {
			return true
		}
	}
	return false
}
