package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"
)

// The file store's journal narrows the window in which a process kill
// loses a write. A bbolt commit returns only after fdatasync (milliseconds
// on real disks); a kill -9 or an OOM kill inside it loses the write — for
// a rotated refresh token, the tenant. What a process has handed to the
// kernel with write() survives the process, so every write is first
// appended to the journal beside the database in one write() call, then
// committed, and the journal is truncated. At open, records still in the
// journal are replayed onto the database before anyone reads it. The window
// for a process kill shrinks to the microseconds before the write() call;
// a power loss still waits for the commit's fsync, as before.
//
// Writers are serialised (bbolt runs one write transaction at a time), so
// the journal holds at most the one write in flight. Values in it are the
// sealed values the database gets: it is as safe to keep as the database.
//
// Each record names the database version it was written against: bbolt's
// transaction id at that moment. At open a record is replayed only if the
// database is still at that version — its write never committed; once any
// later transaction committed (the write itself, or others after it, say
// by an older sidekey that ignored the journal), the record is stale and
// skipped, so a replay can never put back an older value.
//
// Record format (little endian):
//
//	length of body (4 bytes) | CRC-32C of body (4 bytes) | body
//	body: op (1 byte) | uvarint version | uvarint len(key) | key |
//	      uvarint len(old)+1, 0 for none | old | uvarint len(new) | new
//
// A torn last record (a short length, body or a CRC mismatch) is ignored:
// its write never completed, so the write it carried was never reported
// stored.
const (
	journalFileName = "sidekey.journal"
	// journalEnv set to "off" disables the journal (to measure what it
	// buys; see BENCHMARKS.md).
	journalEnv = "SIDEKEY_STORE_JOURNAL"
	// maxJournalBody bounds one record's body.
	maxJournalBody = 64 << 20
)

// Journal operations.
const (
	opStore  = 1 // put new under key
	opCAS    = 2 // put new under key if it holds old (absent when old is nil)
	opDelete = 3 // delete key (Delete and Take)
)

// journalRecord is one write in flight.
type journalRecord struct {
	op       byte
	version  uint64 // the database's transaction id when the write began
	key      string
	old, new []byte // old nil: none (opCAS: the key must be absent)
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encode returns the record framed for one write() call.
func (r journalRecord) encode() []byte {
	body := make([]byte, 0, 3*binary.MaxVarintLen64+1+len(r.key)+len(r.old)+len(r.new))
	body = append(body, r.op)
	body = binary.AppendUvarint(body, r.version)
	body = binary.AppendUvarint(body, uint64(len(r.key)))
	body = append(body, r.key...)
	if r.old == nil {
		body = binary.AppendUvarint(body, 0)
	} else {
		body = binary.AppendUvarint(body, uint64(len(r.old))+1)
		body = append(body, r.old...)
	}
	body = binary.AppendUvarint(body, uint64(len(r.new)))
	body = append(body, r.new...)
	out := make([]byte, 8, 8+len(body))
	binary.LittleEndian.PutUint32(out[0:4], uint32(len(body)))
	binary.LittleEndian.PutUint32(out[4:8], crc32.Checksum(body, crcTable))
	return append(out, body...)
}

// parseJournal returns the complete records at the start of data, in
// order, and stops at the first torn or damaged one. It never panics.
func parseJournal(data []byte) []journalRecord {
	var out []journalRecord
	for len(data) >= 8 {
		n := binary.LittleEndian.Uint32(data[0:4])
		if n > maxJournalBody || uint64(n) > uint64(len(data)-8) {
			break
		}
		body := data[8 : 8+n]
		if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(data[4:8]) {
			break
		}
		r, ok := parseJournalBody(body)
		if !ok {
			break
		}
		out = append(out, r)
		data = data[8+n:]
	}
	return out
}

// parseJournalBody decodes one record body.
func parseJournalBody(body []byte) (journalRecord, bool) {
	if len(body) < 1 {
		return journalRecord{}, false
	}
	r := journalRecord{op: body[0]}
	version, size := binary.Uvarint(body[1:])
	if size <= 0 {
		return journalRecord{}, false
	}
	r.version = version
	rest := body[1+size:]
	field := func(lenPlusOne bool) ([]byte, bool, bool) { // value, present, ok
		n, size := binary.Uvarint(rest)
		if size <= 0 {
			return nil, false, false
		}
		rest = rest[size:]
		if lenPlusOne {
			if n == 0 {
				return nil, false, true
			}
			n--
		}
		if n > uint64(len(rest)) {
			return nil, false, false
		}
		v := bytes.Clone(rest[:n])
		if v == nil {
			v = []byte{}
		}
		rest = rest[n:]
		return v, true, true
	}
	key, _, ok := field(false)
	if !ok || checkKey(string(key)) != nil {
		return journalRecord{}, false
	}
	r.key = string(key)
	old, present, ok := field(true)
	if !ok {
		return journalRecord{}, false
	}
	if present {
		r.old = old
	}
	if r.new, _, ok = field(false); !ok || len(rest) != 0 {
		return journalRecord{}, false
	}
	switch r.op {
	case opStore, opCAS, opDelete:
		return r, true
	}
	return journalRecord{}, false
}

// journal is the append-only journal file of one file store. Its methods
// are called with the store's writeMu held.
type journal struct {
	f     *os.File
	path  string
	dirty bool // a truncation failed: the journal must be emptied before the next append
}

// openJournal opens (creating, mode 0600) the journal at path and returns
// the records it holds.
func openJournal(path string) (*journal, []journalRecord, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("store: opening the journal: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("store: reading the journal %s: %w", path, err)
	}
	return &journal{f: f, path: path, dirty: len(data) > 0}, parseJournal(data), nil
}

// append hands the record to the kernel in one write() call.
func (j *journal) append(r journalRecord) error {
	if j.dirty {
		if err := j.reset(); err != nil {
			return err
		}
	}
	if _, err := j.f.Write(r.encode()); err != nil {
		j.dirty = true
		return fmt.Errorf("store: writing the journal %s: %w", j.path, err)
	}
	return nil
}

// reset empties the journal once its record is committed (or refused).
func (j *journal) reset() error {
	if err := j.f.Truncate(0); err != nil {
		j.dirty = true
		return fmt.Errorf("store: truncating the journal %s: %w", j.path, err)
	}
	j.dirty = false
	return nil
}

// close closes the file.
func (j *journal) close() error { return j.f.Close() }

// replayJournal applies, in one transaction, the records written against
// the database's current version (their writes never committed); records
// of an older version are stale and skipped. A compare-and-swap applies
// only where the key still holds its old value. It returns how many
// records changed something.
func replayJournal(db *bolt.DB, records []journalRecord) (int, error) {
	applied := 0
	err := db.Update(func(tx *bolt.Tx) error {
		data := tx.Bucket(dataBucket)
		version := uint64(tx.ID() - 1) // the committed version this transaction builds on
		for _, r := range records {
			if r.version != version {
				continue
			}
			cur, ok := get(data, r.key)
			var err error
			switch r.op {
			case opStore:
				if ok && bytes.Equal(cur, r.new) {
					continue
				}
				err = data.Put([]byte(r.key), r.new)
			case opCAS:
				if ok != (r.old != nil) || !bytes.Equal(cur, r.old) {
					continue // committed already (it holds new), or it would not have swapped
				}
				err = data.Put([]byte(r.key), r.new)
			case opDelete:
				if !ok {
					continue
				}
				err = data.Delete([]byte(r.key))
			default:
				err = errors.New("unknown journal operation")
			}
			if err != nil {
				return err
			}
			applied++
		}
		return nil
	})
	return applied, err
}
