package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/store"
)

// storeKeyProblems checks the form of the store key serve will read:
// storage.key_file, or the file store's default {path}/key, when the file
// exists (a missing one is config's to report, or the file store's to
// generate). The check reads only; the message names the file, never its
// content.
func storeKeyProblems(cfg *config.Config) config.Problems {
	path := cfg.Storage.KeyFile
	if path == "" && (cfg.Storage.Type == "" || cfg.Storage.Type == "file") {
		path = filepath.Join(cfg.Storage.Path, "key")
	}
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return nil // missing: generated or reported; not a file: reported by config
	}
	// The file exists, so this reads and parses it and creates nothing.
	if _, _, err := store.LoadOrCreateKey(path, nil); err != nil {
		return config.Problems{{Key: "storage.key_file", Message: strings.TrimPrefix(err.Error(), "store: ")}}
	}
	return nil
}
