// Package store keeps sidekey's durable state — tokens, rotated refresh
// tokens, runtime connections and single-use consent state — behind a small
// interface modelled on certmagic's Storage.
//
// Three kinds exist: NewMemory (nothing survives the process), OpenFile (an
// embedded bbolt database, every value sealed with AES-256-GCM, fsync'd on
// every write) and OpenRedis (a Redis server shared by several replicas,
// with leased locks). Open picks one from the configuration and seals it.
// Seal wraps any Store so that every value it holds is encrypted and bound
// to its key name.
//
// Backup, Restore and Rekey work on a whole file or redis store: a sealed,
// consistent snapshot; a restore into an empty store; re-sealing every value
// under a new key in one atomic step. Every store records its format (see
// storeFormat): a newer sidekey reads an older store, an older one refuses
// a newer store.
//
// Keys are '/'-separated names such as "tokens/acme" or "connections/acme". They are names,
// not secrets: they appear in error messages.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// Store is a durable key/value store with named locks. Implementations MUST
// be safe for concurrent use by multiple goroutines.
//
// Every method checks its key (or lock name, or List prefix) first and
// returns an error matching ErrInvalidKey for a name that is empty, starts
// with '/', has an empty, "." or ".." segment, holds a control character or
// invalid UTF-8, or is longer than MaxKeyLen bytes. After Close every method
// but Close returns an error matching ErrClosed.
type Store interface {
	// Load returns the value stored under key. A missing key is an error
	// matching fs.ErrNotExist. The returned slice belongs to the caller.
	Load(ctx context.Context, key string) ([]byte, error)

	// Store writes value under key, replacing any previous value. When it
	// returns nil the value is durable: the file store has committed and
	// fsync'd it. The store keeps its own copy of value.
	Store(ctx context.Context, key string, value []byte) error

	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// CompareAndSwap replaces the value of key with new, in one atomic
	// step, only if the current value equals old byte for byte — or, when
	// old is nil, only if key is absent (a non-nil empty old matches an
	// empty value). swapped reports whether it did; a mismatch is not an
	// error. new is kept like Store keeps a value (nil: an empty value).
	//
	// It is the fence on writes that follow a lock: a holder that read a
	// value under the lock and writes its successor with CompareAndSwap
	// cannot overwrite a newer value written by someone who took over after
	// its lease was lost.
	CompareAndSwap(ctx context.Context, key string, old, new []byte) (swapped bool, err error)

	// Take loads and deletes key in one atomic step: when several callers
	// take the same key at once, exactly one gets the value and the others
	// get an error matching fs.ErrNotExist, as does a missing key. It is
	// meant for single-use state such as an OAuth consent's state nonce.
	Take(ctx context.Context, key string) ([]byte, error)

	// List returns every key that starts with prefix (a plain string
	// prefix: "tenants/" or "tenants/ac"), sorted in byte order. An empty
	// prefix lists every key. Keys a store uses for itself never appear.
	List(ctx context.Context, prefix string) ([]string, error)

	// Lock acquires the exclusive lock called name, waiting until it is
	// free or ctx is done (then it returns an error matching ctx.Err()).
	// The returned unlock releases it; calling unlock again is harmless and
	// never releases a lock someone else acquired since.
	//
	// Locks are advisory and apart from keys: holding "tenants/acme" does
	// not stop anyone writing the key "tenants/acme".
	//
	// Scope: the memory and file stores lock within this process, which is
	// every user of their data (a file store's database can be open in one
	// process only). A store shared by several processes (redis) locks
	// across all of them with a lease: it renews the lease while the lock is
	// held, and if the holder dies the lock frees itself once the lease runs
	// out. A lease can be lost (the holder stalls past it, or cannot reach
	// the store), so holders should do one bounded piece of work — one token
	// refresh — re-read state after acquiring rather than trusting what they
	// read before, and write the result with CompareAndSwap against what
	// they read.
	//
	// When the store cannot be reached, Lock fails at once with an error
	// matching ErrUnavailable instead of waiting for ctx: "the lock backend
	// is down" is not "someone else holds the lock".
	Lock(ctx context.Context, name string) (unlock func(), err error)

	// Ping reports whether the store can serve requests (for /readyz).
	Ping(ctx context.Context) error

	// Close releases the store's resources and wakes every Lock still
	// waiting (they return ErrClosed). Calling it again returns nil. Locks
	// already held need not be unlocked after Close.
	Close() error
}

// MaxKeyLen is the longest key, lock name or List prefix, in bytes.
const MaxKeyLen = 1024

var (
	// ErrWrongKey matches the error for a sealed value that does not open
	// with the store key: it was written with another key, moved from
	// another key name, or damaged.
	ErrWrongKey = errors.New("store: value does not open with this key")

	// ErrClosed matches the error every method but Close returns after
	// Close.
	ErrClosed = errors.New("store: closed")

	// ErrInvalidKey matches the error for a malformed key, lock name or
	// List prefix.
	ErrInvalidKey = errors.New("store: invalid key")

	// ErrUnavailable matches the error for a store that cannot be reached
	// (a redis server that is down, restarting or unreachable). The
	// operation may be retried later; a caller holding a still-valid cached
	// value can keep using it.
	ErrUnavailable = errors.New("store: unavailable")
)

// Watcher is implemented by stores that report changed keys. Every store
// this package returns implements it: the redis store across every process
// sharing the server, the memory and file stores within the process (every
// writer of their data).
type Watcher interface {
	// Watch returns a channel that receives the name of each key under
	// prefix (a List prefix; "" for all) written by Store, Delete, Take or
	// a successful CompareAndSwap after Watch returns, until ctx is done or
	// the store is closed; then the channel is closed. A name means "read
	// it again": values are never sent, and a key may be reported without a
	// visible change. Delivery never blocks writers: when the receiver
	// falls behind, names are dropped, so a receiver that must not miss a
	// change re-reads everything it cares about now and then as well.
	Watch(ctx context.Context, prefix string) (<-chan string, error)
}

// notExistError is the error for a missing key. It matches fs.ErrNotExist.
type notExistError struct {
	key string
}

// Error names the missing key.
func (e *notExistError) Error() string { return fmt.Sprintf("store: no value for key %q", e.key) }

// Unwrap returns fs.ErrNotExist so errors.Is(err, fs.ErrNotExist) holds.
func (e *notExistError) Unwrap() error { return fs.ErrNotExist }

// errNotExist returns the error for a missing key.
func errNotExist(key string) error { return &notExistError{key: key} }
