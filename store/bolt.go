package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Buckets of the file store's database. Values live in dataBucket under
// their key names; metaBucket holds the store's own records (the canary), so
// they can never collide with a key or show up in List.
var (
	dataBucket = []byte("kv")
	metaBucket = []byte("meta")
)

// boltStore is an unsealed Store in a bbolt database. OpenFile wraps it with
// Seal; on its own it stores values in clear.
type boltStore struct {
	db    *bolt.DB
	path  string // database file, for messages
	locks *lockTable
	feed  *changeFeed // writes through this store, for Watch

	writeMu sync.Mutex         // serialises writes, so the journal holds at most the one in flight
	journal *journal           // nil: disabled ($SIDEKEY_STORE_JOURNAL=off)
	serving *snapshotServer    // nil: not serving snapshots (see serveSnapshots)
	hook    func(stage string) // test hook: "journaled" inside each write, before its commit; nil: none

	closeOnce sync.Once
	closeErr  error // from the first Close
}

// openBolt opens (creating if needed, mode 0600) the bbolt database at path
// and its buckets, and replays the journal beside it (see journal.go)
// unless $SIDEKEY_STORE_JOURNAL is "off". Every commit is fsync'd (bbolt's
// default). If another process holds the database it gives up after
// timeout.
func openBolt(path string, timeout time.Duration) (*boltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("store: %s is in use by another sidekey process (%w waiting for its lock)", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	// Create the buckets only when missing: every commit advances the
	// version a journal record is checked against (see replayJournal).
	ready := false
	err = db.View(func(tx *bolt.Tx) error {
		ready = tx.Bucket(dataBucket) != nil && tx.Bucket(metaBucket) != nil
		return nil
	})
	if err == nil && !ready {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{dataBucket, metaBucket} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: preparing %s: %w", path, err)
	}
	b := &boltStore{db: db, path: path, locks: newLockTable(), feed: newChangeFeed()}
	if os.Getenv(journalEnv) != "off" {
		if err := b.openJournal(); err != nil {
			db.Close()
			return nil, err
		}
	}
	return b, nil
}

// openJournal opens the journal beside the database and replays what it
// holds.
func (b *boltStore) openJournal() error {
	j, records, err := openJournal(filepath.Join(filepath.Dir(b.path), journalFileName))
	if err != nil {
		return err
	}
	if len(records) > 0 {
		if _, err := replayJournal(b.db, records); err != nil {
			j.close()
			return fmt.Errorf("store: replaying the journal into %s: %w", b.path, err)
		}
	}
	if j.dirty {
		if err := j.reset(); err != nil {
			j.close()
			return err
		}
	}
	b.journal = j
	return nil
}

// update runs one write transaction, first handing rec to the kernel
// through the journal, and empties the journal once bbolt has committed
// (or rolled back).
func (b *boltStore) update(rec journalRecord, fn func(tx *bolt.Tx) error) error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	if b.journal != nil {
		err := b.db.View(func(tx *bolt.Tx) error {
			rec.version = uint64(tx.ID())
			return nil
		})
		if err != nil {
			return err
		}
		if err := b.journal.append(rec); err != nil {
			return err
		}
	}
	callHook(b.hook, "journaled")
	err := b.db.Update(fn)
	if b.journal != nil {
		if rerr := b.journal.reset(); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// Load implements Store.
func (b *boltStore) Load(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	var out []byte
	err := b.db.View(func(tx *bolt.Tx) error {
		v, ok := get(tx.Bucket(dataBucket), key)
		if !ok {
			return errNotExist(key)
		}
		out = append([]byte{}, v...) // v is valid only inside the transaction
		return nil
	})
	return out, b.wrap(err)
}

// Store implements Store: one fsync'd transaction.
func (b *boltStore) Store(ctx context.Context, key string, value []byte) error {
	if err := begin(ctx, key); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	err := b.update(journalRecord{op: opStore, key: key, new: value}, func(tx *bolt.Tx) error {
		return tx.Bucket(dataBucket).Put([]byte(key), value)
	})
	if err != nil {
		return b.wrap(err)
	}
	b.feed.publish(key)
	return nil
}

// Delete implements Store.
func (b *boltStore) Delete(ctx context.Context, key string) error {
	if err := begin(ctx, key); err != nil {
		return err
	}
	err := b.update(journalRecord{op: opDelete, key: key}, func(tx *bolt.Tx) error {
		bucket := tx.Bucket(dataBucket)
		if _, ok := get(bucket, key); !ok {
			return errNoChange // nothing to commit or report
		}
		return bucket.Delete([]byte(key))
	})
	switch {
	case errors.Is(err, errNoChange):
		return nil
	case err != nil:
		return b.wrap(err)
	}
	b.feed.publish(key)
	return nil
}

// CompareAndSwap implements Store: the comparison and the write are one
// fsync'd transaction, so it is as crash-safe as Store. A mismatch rolls
// back without writing anything.
func (b *boltStore) CompareAndSwap(ctx context.Context, key string, old, new []byte) (bool, error) {
	if err := begin(ctx, key); err != nil {
		return false, err
	}
	if new == nil {
		new = []byte{} // bbolt refuses a nil value
	}
	err := b.update(journalRecord{op: opCAS, key: key, old: old, new: new}, func(tx *bolt.Tx) error {
		bucket := tx.Bucket(dataBucket)
		cur, ok := get(bucket, key)
		if ok != (old != nil) || !bytes.Equal(cur, old) {
			return errNoChange
		}
		return bucket.Put([]byte(key), new)
	})
	switch {
	case errors.Is(err, errNoChange):
		return false, nil
	case err != nil:
		return false, b.wrap(err)
	}
	b.feed.publish(key)
	return true, nil
}

// Take implements Store: the read and the delete are one transaction, and
// bbolt runs one writing transaction at a time.
func (b *boltStore) Take(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	var out []byte
	err := b.update(journalRecord{op: opDelete, key: key}, func(tx *bolt.Tx) error {
		bucket := tx.Bucket(dataBucket)
		v, ok := get(bucket, key)
		if !ok {
			return errNotExist(key)
		}
		out = append([]byte{}, v...)
		return bucket.Delete([]byte(key))
	})
	if err != nil {
		return nil, b.wrap(err)
	}
	b.feed.publish(key)
	return out, nil
}

// List implements Store. bbolt keeps keys in byte order, so no sort is
// needed.
func (b *boltStore) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	keys := []string{}
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(dataBucket).Cursor()
		p := []byte(prefix)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			keys = append(keys, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, b.wrap(err)
	}
	return keys, nil
}

// Lock implements Store: in-process locks (the database is exclusive to
// this process).
func (b *boltStore) Lock(ctx context.Context, name string) (func(), error) {
	if err := checkLockName(name); err != nil {
		return nil, err
	}
	return b.locks.lock(ctx, name)
}

// Watch implements Watcher: the database is exclusive to this process, so
// the writes through this store are all the writes there are.
func (b *boltStore) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	return b.feed.watch(ctx, prefix)
}

// Ping implements Store: it reads the database.
func (b *boltStore) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.wrap(b.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(dataBucket) == nil {
			return errors.New("the data bucket is missing")
		}
		return nil
	}))
}

// Close implements Store. It waits for running transactions to finish.
func (b *boltStore) Close() error {
	b.closeOnce.Do(func() {
		b.locks.close()
		b.feed.close()
		if b.serving != nil {
			b.serving.close()
		}
		if err := b.db.Close(); err != nil {
			b.closeErr = fmt.Errorf("store: closing %s: %w", b.path, err)
		}
		b.writeMu.Lock()
		if b.journal != nil {
			b.journal.close()
			b.journal = nil
		}
		b.writeMu.Unlock()
	})
	return b.closeErr
}

// readMetas returns the named records of the meta bucket; a missing record
// is absent from the map.
func (b *boltStore) readMetas(names ...string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(names))
	err := b.db.View(func(tx *bolt.Tx) error {
		for _, name := range names {
			if v, ok := get(tx.Bucket(metaBucket), name); ok {
				out[name] = append([]byte{}, v...)
			}
		}
		return nil
	})
	return out, b.wrap(err)
}

// writeMetas writes records to the meta bucket in one transaction.
func (b *boltStore) writeMetas(records map[string][]byte) error {
	return b.wrap(b.db.Update(func(tx *bolt.Tx) error {
		for name, value := range records {
			if err := tx.Bucket(metaBucket).Put([]byte(name), value); err != nil {
				return err
			}
		}
		return nil
	}))
}

// first returns the first key in the data bucket and its value; ok is false
// when the bucket is empty.
func (b *boltStore) first() (key string, value []byte, ok bool, err error) {
	err = b.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(dataBucket).Cursor().First()
		if k != nil {
			key, value, ok = string(k), append([]byte{}, v...), true
		}
		return nil
	})
	return key, value, ok, b.wrap(err)
}

// wrap turns bbolt's closed-database error into ErrClosed and adds the
// package prefix to other bbolt errors; our own errors pass unchanged.
func (b *boltStore) wrap(err error) error {
	var nx *notExistError
	switch {
	case err == nil, errors.As(err, &nx):
		return err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return ErrClosed
	}
	return fmt.Errorf("store: %s: %w", b.path, err)
}

// errNoChange rolls back an update transaction that found nothing to do.
var errNoChange = errors.New("store: nothing to change")

// get returns the value of key in bucket. A cursor tells a present empty
// value from a missing key, which Bucket.Get does not.
func get(bucket *bolt.Bucket, key string) ([]byte, bool) {
	k, v := bucket.Cursor().Seek([]byte(key))
	if k == nil || string(k) != key {
		return nil, false
	}
	return v, true
}
