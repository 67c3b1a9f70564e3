package tlsserve

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/certmagic"

	"github.com/sidekey/sidekey/store"
)

// acmePrefix is where certmagic's keys live in the store, and the prefix of
// its lock names there.
const acmePrefix = "acme/"

// acmeStorage is a certmagic.Storage kept in a store.Store: with the redis
// store every replica shares certmagic's certificates, account, challenge
// data and locks, so one replica obtains a certificate and the others load
// it. Values are sealed like everything else the store holds (store.Open
// seals it), so certificates' private keys never sit in Redis in plain text.
//
// Each certmagic key is kept under acmePrefix with its segments escaped (see
// escapeACMEKey), so List gives back certmagic's own names. A value is
// stored with its modification time in front (see acmeEnvelope) for Stat.
// Locks are the store's: under redis a lease renewed while held, which is
// what certmagic needs around an ACME order that may take minutes.
//
// It is safe for concurrent use. It does not own the store: closing the
// store is the caller's business.
type acmeStorage struct {
	st  store.Store
	now func() time.Time // stamps values for Stat

	mu   sync.Mutex        // guards held
	held map[string]func() // unlock funcs of locks held through Lock, by certmagic's lock name
}

// newACMEStorage returns a certmagic.Storage kept in st. now stamps stored
// values; nil means time.Now.
func newACMEStorage(st store.Store, now func() time.Time) *acmeStorage {
	if now == nil {
		now = time.Now
	}
	return &acmeStorage{st: st, now: now, held: make(map[string]func())}
}

var _ certmagic.Storage = (*acmeStorage)(nil)

// Store implements certmagic.Storage.
func (a *acmeStorage) Store(ctx context.Context, key string, value []byte) error {
	if err := a.st.Store(ctx, acmeStoreKey(key), sealEnvelope(a.now(), value)); err != nil {
		return fmt.Errorf("tlsserve: acme storage: %w", err)
	}
	return nil
}

// Load implements certmagic.Storage. A missing key is an error matching
// fs.ErrNotExist.
func (a *acmeStorage) Load(ctx context.Context, key string) ([]byte, error) {
	_, value, err := a.load(ctx, key)
	return value, err
}

// load returns key's value and when it was stored.
func (a *acmeStorage) load(ctx context.Context, key string) (time.Time, []byte, error) {
	raw, err := a.st.Load(ctx, acmeStoreKey(key))
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("tlsserve: acme storage: %w", err)
	}
	modified, value, err := openEnvelope(raw)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("tlsserve: acme storage: key %q: %w", key, err)
	}
	return modified, value, nil
}

// Delete implements certmagic.Storage: it removes key and every key under
// it. A missing key is not an error.
func (a *acmeStorage) Delete(ctx context.Context, key string) error {
	under, err := a.st.List(ctx, acmeStoreKey(key)+"/")
	if err != nil {
		return fmt.Errorf("tlsserve: acme storage: %w", err)
	}
	for _, k := range append(under, acmeStoreKey(key)) {
		if err := a.st.Delete(ctx, k); err != nil {
			return fmt.Errorf("tlsserve: acme storage: %w", err)
		}
	}
	return nil
}

// Exists implements certmagic.Storage: key holds a value, or other keys lie
// under it.
func (a *acmeStorage) Exists(ctx context.Context, key string) bool {
	_, err := a.Stat(ctx, key)
	return err == nil
}

// Stat implements certmagic.Storage. A key with a value is terminal; a key
// that only has keys under it is a directory, without Modified or Size.
func (a *acmeStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	modified, value, err := a.load(ctx, key)
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: modified, Size: int64(len(value)), IsTerminal: true}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return certmagic.KeyInfo{}, err
	}
	under, err := a.st.List(ctx, acmeStoreKey(key)+"/")
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("tlsserve: acme storage: %w", err)
	}
	if len(under) == 0 {
		return certmagic.KeyInfo{}, fmt.Errorf("tlsserve: acme storage: no key %q: %w", key, fs.ErrNotExist)
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

// List implements certmagic.Storage with certmagic.FileStorage's meaning:
// the full names of the keys and directories directly under dir, or with
// recursive of every key and directory at any depth below it, sorted. ""
// lists from the top. When nothing lies under dir the error matches
// fs.ErrNotExist.
func (a *acmeStorage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	prefix := acmePrefix
	if dir != "" {
		prefix = acmeStoreKey(dir) + "/"
	}
	keys, err := a.st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("tlsserve: acme storage: %w", err)
	}
	seen := make(map[string]bool)
	var names []string
	for _, k := range keys {
		segments := strings.Split(strings.TrimPrefix(k, prefix), "/")
		depth := 1
		if recursive {
			depth = len(segments) // every directory on the way, then the key
		}
		for i := 1; i <= depth; i++ {
			rel := strings.Join(segments[:i], "/")
			if seen[rel] {
				continue
			}
			seen[rel] = true
			name, err := unescapeACMEKey(rel)
			if err != nil {
				return nil, fmt.Errorf("tlsserve: acme storage: store key %q: %w", k, err)
			}
			if dir != "" {
				name = dir + "/" + name
			}
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("tlsserve: acme storage: nothing under %q: %w", dir, fs.ErrNotExist)
	}
	slices.Sort(names)
	return names, nil
}

// Lock implements certmagic.Locker with the store's lock: it waits until
// the lock called name is free or ctx is done. Under redis the lock holds
// across every replica, as a lease renewed until Unlock.
func (a *acmeStorage) Lock(ctx context.Context, name string) error {
	unlock, err := a.st.Lock(ctx, acmeStoreKey(name))
	if err != nil {
		return fmt.Errorf("tlsserve: acme storage: lock %q: %w", name, err)
	}
	a.mu.Lock()
	stale := a.held[name]
	a.held[name] = unlock
	a.mu.Unlock()
	if stale != nil {
		// Only after a lost lease: the old holder no longer has the lock,
		// and its unlock never releases one acquired since.
		stale()
	}
	return nil
}

// Unlock implements certmagic.Locker: it releases the lock Lock acquired
// for name. certmagic names no holder, so after a lost lease an Unlock by
// the old holder releases the new holder's lock in this process; certmagic
// tolerates that, as it must with any Locker.
func (a *acmeStorage) Unlock(_ context.Context, name string) error {
	a.mu.Lock()
	unlock, ok := a.held[name]
	delete(a.held, name)
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("tlsserve: acme storage: unlock %q: not locked", name)
	}
	unlock()
	return nil
}

// acmeEnvelopeHeader is the length of the modification time in front of a
// stored value: unix nanoseconds, big-endian.
const acmeEnvelopeHeader = 8

// sealEnvelope returns value with its modification time in front.
func sealEnvelope(modified time.Time, value []byte) []byte {
	b := make([]byte, acmeEnvelopeHeader, acmeEnvelopeHeader+len(value))
	binary.BigEndian.PutUint64(b, uint64(modified.UnixNano()))
	return append(b, value...)
}

// openEnvelope splits what sealEnvelope made.
func openEnvelope(b []byte) (time.Time, []byte, error) {
	if len(b) < acmeEnvelopeHeader {
		return time.Time{}, nil, fmt.Errorf("stored value of %d bytes is shorter than its %d-byte header", len(b), acmeEnvelopeHeader)
	}
	nanos := int64(binary.BigEndian.Uint64(b))
	return time.Unix(0, nanos), b[acmeEnvelopeHeader:], nil
}

// acmeStoreKey is the store key (or lock name) for certmagic's key.
func acmeStoreKey(key string) string { return acmePrefix + escapeACMEKey(key) }

// escapeACMEKey makes a certmagic key a valid store key path, reversibly
// (unescapeACMEKey): within each '/'-separated segment it percent-encodes
// '%', control characters and the bytes of invalid UTF-8; an empty segment
// becomes "%", and "." and ".." become "%2E" and "%2E%2E". The usual
// certmagic key ("certificates/acme-v02.api.letsencrypt.org-directory/
// example.com/example.com.crt") comes out unchanged.
func escapeACMEKey(key string) string {
	segments := strings.Split(key, "/")
	for i, s := range segments {
		segments[i] = escapeACMESegment(s)
	}
	return strings.Join(segments, "/")
}

// escapeACMESegment escapes one segment for escapeACMEKey.
func escapeACMESegment(s string) string {
	switch s {
	case "":
		return "%"
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '%' || unicode.IsControl(r) || (r == utf8.RuneError && size == 1) {
			for _, c := range []byte(s[i : i+size]) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// unescapeACMEKey reverses escapeACMEKey.
func unescapeACMEKey(escaped string) (string, error) {
	segments := strings.Split(escaped, "/")
	for i, s := range segments {
		if s == "%" {
			segments[i] = ""
			continue
		}
		var err error
		if segments[i], err = url.PathUnescape(s); err != nil {
			return "", err
		}
	}
	return strings.Join(segments, "/"), nil
}
