//go:build !unix

package config

import "io/fs"

// SecretFileExposed reports whether a secret file with info may be read by
// others. Outside Unix permission bits mean little: never.
func SecretFileExposed(fs.FileInfo) bool { return false }
