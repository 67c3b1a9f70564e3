package store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Backup file format, version 1:
//
//	"sidekey store backup 1\n"
//	header: one line of JSON (backupHeader) ending in '\n'
//	records: uvarint len(key) | key | uvarint len(value) | value, once per value
//	end: uvarint 0 (an empty key ends the records)
//	checksum: SHA-256 (32 bytes) of everything before it
//
// Values are copied as the store holds them: sealed, never opened. The
// header names the store kind, its format and the fingerprint of the key
// that seals it (never the key), and carries the sealed canary, so restore
// can refuse a backup that its key does not open before it writes
// anything.
const (
	backupMagic   = "sidekey store backup "
	backupVersion = 1
	// maxBackupRecord bounds one key or value in a backup.
	maxBackupRecord = 64 << 20
)

// backupHeader is the JSON line after the magic line.
type backupHeader struct {
	Kind           string    `json:"kind"`            // "file" or "redis": where it was taken
	StoreFormat    int       `json:"store_format"`    // the store's format (storeFormat)
	KeyFingerprint string    `json:"key_fingerprint"` // KeyFingerprint of the sealing key; "" in a running store's raw snapshot
	Created        time.Time `json:"created"`         // when it was taken
	Values         int       `json:"values"`          // how many records follow
	Canary         []byte    `json:"canary"`          // the sealed canary; nil when the store had none
}

// record is one stored value: its key and sealed value.
type record struct {
	key   string
	value []byte
}

// snapshot is a consistent copy of a store's sealed values and canary.
type snapshot struct {
	header  backupHeader
	records []record
}

// encodeSnapshot writes snap in the backup format.
func encodeSnapshot(w io.Writer, snap *snapshot) error {
	h := sha256.New()
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	snap.header.Values = len(snap.records)
	head, err := json.Marshal(snap.header)
	if err != nil {
		return fmt.Errorf("store: encoding the backup header: %w", err)
	}
	fmt.Fprintf(bw, "%s%d\n%s\n", backupMagic, backupVersion, head)
	var n [binary.MaxVarintLen64]byte
	for _, r := range snap.records {
		bw.Write(n[:binary.PutUvarint(n[:], uint64(len(r.key)))])
		bw.WriteString(r.key)
		bw.Write(n[:binary.PutUvarint(n[:], uint64(len(r.value)))])
		bw.Write(r.value)
	}
	bw.Write(n[:binary.PutUvarint(n[:], 0)])
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("store: writing the backup: %w", err)
	}
	if _, err := w.Write(h.Sum(nil)); err != nil {
		return fmt.Errorf("store: writing the backup: %w", err)
	}
	return nil
}

// errNotBackup is the error for input that is not a sidekey store backup.
var errNotBackup = errors.New("store: not a sidekey store backup (it lacks the header line \"sidekey store backup 1\")")

// decodeSnapshot parses a whole backup. It checks the checksum first, so a
// truncated or damaged backup is refused before any record is trusted. It
// never panics on any input.
func decodeSnapshot(data []byte) (*snapshot, error) {
	if !bytes.HasPrefix(data, []byte(backupMagic)) {
		return nil, errNotBackup
	}
	line, rest, ok := bytes.Cut(data[len(backupMagic):], []byte("\n"))
	if !ok {
		return nil, errNotBackup
	}
	var version int
	if _, err := fmt.Sscanf(string(line), "%d", &version); err != nil || fmt.Sprint(version) != string(line) {
		return nil, errNotBackup
	}
	if version > backupVersion {
		return nil, fmt.Errorf("store: backup format %d is newer than this sidekey supports (%d); upgrade sidekey", version, backupVersion)
	}
	if version < 1 {
		return nil, errNotBackup
	}
	if len(data) < sha256.Size {
		return nil, errors.New("store: the backup is truncated (no checksum)")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, errors.New("store: the backup is truncated or damaged (its checksum does not match)")
	}
	rest = rest[:len(rest)-sha256.Size]
	head, rest, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return nil, errors.New("store: the backup header line is missing")
	}
	snap := &snapshot{}
	if err := json.Unmarshal(head, &snap.header); err != nil {
		return nil, fmt.Errorf("store: the backup header is not valid JSON: %w", err)
	}
	if snap.header.Values < 0 {
		return nil, fmt.Errorf("store: the backup header counts %d values", snap.header.Values)
	}
	field := func() ([]byte, error) {
		n, size := binary.Uvarint(rest)
		if size <= 0 || n > maxBackupRecord || n > uint64(len(rest)-size) {
			return nil, errors.New("store: the backup has a malformed record")
		}
		out := rest[size : size+int(n)]
		rest = rest[size+int(n):]
		return out, nil
	}
	for {
		key, err := field()
		if err != nil {
			return nil, err
		}
		if len(key) == 0 {
			break
		}
		if err := checkKey(string(key)); err != nil {
			return nil, fmt.Errorf("store: the backup holds a bad key: %w", err)
		}
		value, err := field()
		if err != nil {
			return nil, err
		}
		snap.records = append(snap.records, record{key: string(key), value: bytes.Clone(value)})
	}
	if len(rest) != 0 {
		return nil, errors.New("store: the backup has data after its last record")
	}
	if len(snap.records) != snap.header.Values {
		return nil, fmt.Errorf("store: the backup header counts %d values but it holds %d", snap.header.Values, len(snap.records))
	}
	return snap, nil
}
