package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The file store's whole-store operations behind Backup, Restore and Rekey.
// Each is one bbolt transaction: a backup sees one consistent state, and a
// restore or rekey is committed whole or not at all, whatever kills the
// process meanwhile.

// snapshot copies every sealed value and the canary in one read
// transaction. It runs beside writers.
func (b *boltStore) snapshot() (*snapshot, error) {
	snap := &snapshot{header: backupHeader{Kind: "file", StoreFormat: storeFormat, Created: time.Now().UTC()}}
	err := b.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if v, ok := get(meta, canaryRecord); ok {
			snap.header.Canary = append([]byte{}, v...)
		}
		if v, ok := get(meta, formatRecord); ok {
			n, err := parseFormat(b.path, v)
			if err != nil {
				return err
			}
			snap.header.StoreFormat = n
		} else {
			snap.header.StoreFormat = 1
		}
		return tx.Bucket(dataBucket).ForEach(func(k, v []byte) error {
			snap.records = append(snap.records, record{key: string(k), value: append([]byte{}, v...)})
			return nil
		})
	})
	return snap, b.wrap(err)
}

// errNotEmpty is the error for a restore into a store that holds values.
type errNotEmpty struct {
	where  string
	values int
}

// Error names the store and how much it holds.
func (e *errNotEmpty) Error() string {
	return fmt.Sprintf("store: %s is not empty (%d values); restore refuses to overwrite it without --force", e.where, e.values)
}

// restore replaces everything the database holds with snap's values and
// canary, sealed with the key of fingerprint fp, in one transaction. Unless
// force is set it refuses (errNotEmpty) a database that holds any value.
func (b *boltStore) restore(snap *snapshot, fp string, force bool) error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	err := b.db.Update(func(tx *bolt.Tx) error {
		if n := tx.Bucket(dataBucket).Stats().KeyN; n > 0 && !force {
			return &errNotEmpty{where: b.path, values: n}
		}
		if err := tx.DeleteBucket(dataBucket); err != nil {
			return err
		}
		data, err := tx.CreateBucket(dataBucket)
		if err != nil {
			return err
		}
		data.FillPercent = 0.9 // keys arrive in order
		for _, r := range snap.records {
			if err := data.Put([]byte(r.key), r.value); err != nil {
				return err
			}
		}
		meta := tx.Bucket(metaBucket)
		for name, value := range map[string][]byte{
			canaryRecord: snap.header.Canary, formatRecord: formatValue(), fingerprintRecord: []byte(fp),
		} {
			if err := meta.Put([]byte(name), value); err != nil {
				return err
			}
		}
		return meta.Delete([]byte(retiredRecord))
	})
	if ne := (*errNotEmpty)(nil); errors.As(err, &ne) {
		return err
	}
	return b.wrap(err)
}

// rekey re-seals every value and the canary from old to new in one
// transaction, records new's fingerprint and retires old's. A value that
// old does not open stops it before anything is written. It returns how
// many values it re-sealed.
func (b *boltStore) rekey(old, new *sealer, oldFP, newFP string) (int, error) {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	n := 0
	err := b.db.Update(func(tx *bolt.Tx) error {
		data, meta := tx.Bucket(dataBucket), tx.Bucket(metaBucket)
		var resealed []record // a bucket must not change under its cursor
		err := data.ForEach(func(k, v []byte) error {
			plain, err := old.open(string(k), v)
			if err != nil {
				return err
			}
			resealed = append(resealed, record{key: string(k), value: new.seal(string(k), plain)})
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range resealed {
			if err := data.Put([]byte(r.key), r.value); err != nil {
				return err
			}
		}
		retired, _ := get(meta, retiredRecord)
		for name, value := range map[string][]byte{
			canaryRecord:      new.seal(canaryName, []byte(canaryValue)),
			formatRecord:      formatValue(),
			fingerprintRecord: []byte(newFP),
			retiredRecord:     retiredWith(retired, oldFP),
		} {
			if err := meta.Put([]byte(name), value); err != nil {
				return err
			}
		}
		n = len(resealed)
		return nil
	})
	return n, b.wrap(err)
}
