package store

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
)

// maxKeyFileSize bounds how much of a key file is read; every accepted form
// is far shorter.
const maxKeyFileSize = 4096

// LoadOrCreateKey returns the KeySize-byte store key held in the file at
// path, which may hold 32 raw bytes, 64 hex characters or the base64 of 32
// bytes (a trailing newline is fine). created reports whether it was absent
// and has just been generated: 32 random bytes written to a new file of
// mode 0600 (its directory created 0700 if missing), published only once
// complete so a crash never leaves a partial key, and never overwriting a
// key file another process created meanwhile. Generating a key logs a
// warning, as does a key file that group or others may read. A file in any
// other form is an error naming the path, never its content. log may be nil.
func LoadOrCreateKey(path string, log *zap.Logger) (key []byte, created bool, err error) {
	return loadOrCreateKey(path, log, nil)
}

// loadOrCreateKey is LoadOrCreateKey with a test hook called at each stage
// of creating the key (nil: none).
func loadOrCreateKey(path string, log *zap.Logger, hook func(stage string)) ([]byte, bool, error) {
	if log == nil {
		log = zap.NewNop()
	}
	key, err := readKeyFile(path, log)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	key, created, err := createKeyFile(path, hook)
	if err != nil {
		return nil, false, err
	}
	if !created { // another process created it first: use theirs
		key, err = readKeyFile(path, log)
		return key, false, err
	}
	log.Warn("generated a new store key at "+path+"; in production provide storage.key_file from a secret",
		zap.String("path", path))
	return key, true, nil
}

// readKeyFile reads and parses the key file at path, warning when group or
// others may read it. A missing file is an error matching fs.ErrNotExist.
func readKeyFile(path string, log *zap.Logger) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store: key file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("store: key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("store: key file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); config.SecretFileExposed(info) {
		log.Warn("STORE KEY FILE READABLE BY OTHERS: the store key file "+path+" (mode "+perm.String()+
			") is readable by others or by a group sidekey is not in; restrict it to the owner (chmod 600)",
			zap.String("path", path), zap.String("mode", perm.String()))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("store: key file %s: %w", path, err)
	}
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("store: key file %s: %w", path, err)
	}
	return key, nil
}

// parseKey decodes a key file's content: 32 raw bytes, 64 hex characters or
// base64 (standard or URL alphabet, padded or not) of 32 bytes, with
// surrounding white space allowed for the text forms and one trailing
// newline for the raw form. 32 printable characters are refused: they are a
// passphrase or a 16-byte key in hex, not 32 random bytes. Errors never
// show the content.
func parseKey(data []byte) ([]byte, error) {
	if len(data) == KeySize+1 && data[KeySize] == '\n' && !printable(data[:KeySize]) {
		data = data[:KeySize]
	}
	if len(data) == KeySize {
		if printable(data) {
			return nil, errors.New("holds 32 printable characters, not a key: want 32 random bytes, 64 hex characters or base64 of 32 bytes")
		}
		return bytes.Clone(data), nil
	}
	text := bytes.TrimSpace(data)
	if len(text) == 2*KeySize {
		key := make([]byte, KeySize)
		if _, err := hex.Decode(key, text); err != nil {
			return nil, errors.New("holds 64 characters that are not hex")
		}
		return key, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if enc.DecodedLen(len(text)) < KeySize || enc.DecodedLen(len(text)) > KeySize+2 {
			continue
		}
		key, err := enc.DecodeString(string(text))
		if err == nil && len(key) == KeySize {
			return key, nil
		}
	}
	return nil, fmt.Errorf("holds %d bytes: want 32 raw bytes, 64 hex characters or base64 of 32 bytes", len(data))
}

// printable reports whether b is all printable ASCII.
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// createKeyFile writes a new random key to path unless a file is there.
// The key goes to a temporary file (O_CREATE|O_EXCL, mode 0600) that is
// fsync'd and then hard-linked into place, which fails rather than replace
// an existing file; so path never holds a partial key. created is false
// when path appeared meanwhile. hook (may be nil) is called at each stage.
func createKeyFile(path string, hook func(stage string)) (key []byte, created bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("store: creating the key file's directory: %w", err)
	}
	key = make([]byte, KeySize)
	_, _ = rand.Read(key) // never fails: crypto/rand crashes the program rather than return an error

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // O_CREATE|O_EXCL, mode 0600
	if err != nil {
		return nil, false, fmt.Errorf("store: creating the key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeAndSync(tmp, key); err != nil {
		return nil, false, fmt.Errorf("store: writing the key file: %w", err)
	}
	callHook(hook, "key-temp-written")

	err = os.Link(tmp.Name(), path)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil, false, nil
	case err != nil:
		// No hard links here (some network or FUSE file systems): create
		// the file itself, exclusively.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("store: creating the key file: %w", err)
		}
		if err := writeAndSync(f, key); err != nil {
			os.Remove(path)
			return nil, false, fmt.Errorf("store: writing the key file: %w", err)
		}
	}
	if err := syncDir(dir); err != nil {
		return nil, false, fmt.Errorf("store: creating the key file: %w", err)
	}
	removeStaleTemps(path)
	return key, true, nil
}

// removeStaleTemps removes temporary key files that an earlier creator left
// behind when it was killed before publishing its key. Should it remove a
// concurrent creator's file, that creator's link fails, its exclusive
// create finds our key, and it reads ours: no harm either way.
func removeStaleTemps(path string) {
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp"))
	for _, name := range stale {
		os.Remove(name)
	}
}

// writeAndSync writes data to f, fsyncs and closes it.
func writeAndSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir fsyncs a directory so a new entry in it survives a crash. Systems
// that cannot sync a directory (Windows) are not an error.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// callHook calls hook with stage unless hook is nil.
func callHook(hook func(stage string), stage string) {
	if hook != nil {
		hook(stage)
	}
}
