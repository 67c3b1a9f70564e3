package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// storeFormat is the store format this sidekey writes and the newest it
// reads. Every store records its format in the meta record "format"; a
// store without one is format 1.
//
//  1. Values sealed with seal version 1 under their key names and a sealed
//     canary among the meta records (sidekey until 2026-12).
//  2. Adds the meta records "format", "key_fingerprint" (of the key that
//     seals the store) and "retired_keys" (fingerprints of keys a rekey
//     replaced), and the file store's journal. Values are unchanged, so a
//     format 1 store is upgraded by writing these records when it is first
//     opened with its key.
//
// A store whose format is newer than storeFormat is refused: an older
// sidekey cannot know what a newer one changed.
const storeFormat = 2

// Meta records besides the canary (file store: keys of the meta bucket;
// redis: "{prefix}:meta:{name}").
const (
	formatRecord      = "format"
	fingerprintRecord = "key_fingerprint"
	retiredRecord     = "retired_keys"
)

// KeyFingerprint returns a short, non-secret name of a store key: the first
// 16 hex characters of a SHA-256 over a fixed label and the key. It tells
// keys apart in messages and backup headers; it does not help anyone guess
// the key (it is a hash of 32 random bytes).
func KeyFingerprint(key []byte) string {
	h := sha256.New()
	h.Write([]byte("sidekey store key fingerprint\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// parseFormat reads a format record; nil (no record) is format 1.
func parseFormat(where string, v []byte) (int, error) {
	if v == nil {
		return 1, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("store: %s: the format record %q is not a format number", where, v)
	}
	return n, nil
}

// checkFormat refuses a store (or backup of one) in a format newer than
// this sidekey supports.
func checkFormat(where string, n int) error {
	if n > storeFormat {
		return fmt.Errorf("store: %s: store format %d is newer than this sidekey supports (%d); upgrade sidekey", where, n, storeFormat)
	}
	return nil
}

// formatValue is the format record this sidekey writes.
func formatValue() []byte { return []byte(strconv.Itoa(storeFormat)) }

// retiredWith returns the retired_keys record with fp added (at most the
// last 16 fingerprints are kept).
func retiredWith(retired []byte, fp string) []byte {
	list := retiredList(retired)
	if !slices.Contains(list, fp) {
		list = append(list, fp)
	}
	if len(list) > 16 {
		list = list[len(list)-16:]
	}
	return []byte(strings.Join(list, "\n"))
}

// retiredList splits a retired_keys record.
func retiredList(retired []byte) []string {
	return strings.Fields(string(retired))
}

// wrongKeyError is the error for a key that does not open the store at
// where: when the key is one a rekey retired, it says so, so that the
// operator points key_file at the new key instead of hunting for damage.
func wrongKeyError(where, keyFile string, key, retired []byte, current []byte) error {
	fp := KeyFingerprint(key)
	if slices.Contains(retiredList(retired), fp) {
		msg := fmt.Sprintf("store: %s: store was re-keyed; key_file %s does not open it (it holds the retired key %s", where, keyFile, fp)
		if len(current) > 0 {
			msg += fmt.Sprintf("; the store is sealed with key %s", current)
		}
		return fmt.Errorf("%s): point storage.key_file at the new key: %w", msg, ErrWrongKey)
	}
	return fmt.Errorf("store: the key in %s does not open %s (it was written with a different key): %w", keyFile, where, ErrWrongKey)
}
