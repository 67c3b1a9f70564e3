package store

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
)

// KeySize is the length of a store key in bytes (AES-256).
const KeySize = 32

// Sealed value format, version 1:
//
//	version (1 byte, 0x01) | nonce (12 random bytes) | AES-256-GCM ciphertext and tag
//
// The additional authenticated data is the version byte followed by the key
// name, so a value opens only under the name it was written under.
const (
	sealVersion  = 1
	nonceSize    = 12
	sealOverhead = 1 + nonceSize + 16 // version, nonce, GCM tag
)

// sealer encrypts and authenticates values for one store key. It is safe
// for concurrent use (a GCM AEAD keeps no state between calls).
type sealer struct {
	aead cipher.AEAD
}

// newSealer returns a sealer for a KeySize-byte key.
func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("store: the store key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// seal encrypts plaintext for the key name with a fresh random nonce.
func (s *sealer) seal(name string, plaintext []byte) []byte {
	out := make([]byte, 1+nonceSize, sealOverhead+len(plaintext))
	out[0] = sealVersion
	nonce := out[1 : 1+nonceSize]
	_, _ = rand.Read(nonce) // never fails: crypto/rand crashes the program rather than return an error
	return s.aead.Seal(out, nonce, plaintext, additionalData(name))
}

// open decrypts a sealed value read under the key name. Any failure is an
// error wrapping ErrWrongKey that names the key and never shows the data.
func (s *sealer) open(name string, sealed []byte) ([]byte, error) {
	switch {
	case len(sealed) < sealOverhead:
		return nil, fmt.Errorf("store: value of %q is not a sealed value (%d bytes, too short): %w", name, len(sealed), ErrWrongKey)
	case sealed[0] != sealVersion:
		return nil, fmt.Errorf("store: value of %q has unknown seal format version %d: %w", name, sealed[0], ErrWrongKey)
	}
	nonce, ciphertext := sealed[1:1+nonceSize], sealed[1+nonceSize:]
	plaintext, err := s.aead.Open(nil, nonce, ciphertext, additionalData(name))
	if err != nil {
		return nil, fmt.Errorf("store: value of %q does not open with the store key (written with another key, under another name, or damaged): %w", name, ErrWrongKey)
	}
	if plaintext == nil {
		plaintext = []byte{}
	}
	return plaintext, nil
}

// additionalData binds a sealed value to its format version and key name.
func additionalData(name string) []byte {
	return append([]byte{sealVersion}, name...)
}

// sealedStore is a Store that seals every value before the inner store sees
// it. See Seal.
type sealedStore struct {
	inner Store
	s     *sealer
}

// Seal returns a Store that encrypts every value with AES-256-GCM under key
// (KeySize bytes; Seal keeps no reference to the slice) before passing it to
// inner, and decrypts on the way out. Each value gets a fresh random nonce
// and is bound to its key name, so a value copied to another key fails to
// open. A value that does not open is an error wrapping ErrWrongKey naming
// the key. Key names, List, Lock, Watch, Ping and Close pass through
// unchanged. It is safe for concurrent use when inner is. Closing it closes
// inner.
func Seal(inner Store, key []byte) (Store, error) {
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	return &sealedStore{inner: inner, s: s}, nil
}

// Load implements Store.
func (ss *sealedStore) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := ss.inner.Load(ctx, key)
	if err != nil {
		return nil, err
	}
	return ss.s.open(key, v)
}

// Store implements Store.
func (ss *sealedStore) Store(ctx context.Context, key string, value []byte) error {
	if err := begin(ctx, key); err != nil {
		return err
	}
	return ss.inner.Store(ctx, key, ss.s.seal(key, value))
}

// Delete implements Store.
func (ss *sealedStore) Delete(ctx context.Context, key string) error {
	return ss.inner.Delete(ctx, key)
}

// casAttempts bounds how often CompareAndSwap retries when the sealed value
// changed under it but still opens to old (a concurrent write of the same
// plaintext, under a fresh nonce).
const casAttempts = 8

// CompareAndSwap implements Store: old and new are plaintexts. It loads the
// sealed value, opens it and compares it with old, then swaps in the
// sealed new value on inner only if inner still holds exactly the sealed
// value it read, so the swap stays atomic. A stored value that does not
// open is an error wrapping ErrWrongKey.
//
// A retry is idempotent: when the stored plaintext already equals new (an
// earlier attempt was applied, but its answer was lost or its replicas did
// not acknowledge it) it rewrites that value unchanged and reports a swap,
// so that a store waiting for replicas waits for them again.
func (ss *sealedStore) CompareAndSwap(ctx context.Context, key string, old, new []byte) (bool, error) {
	if err := begin(ctx, key); err != nil {
		return false, err
	}
	sealedNew := ss.s.seal(key, new)
	if old == nil {
		swapped, err := ss.inner.CompareAndSwap(ctx, key, nil, sealedNew)
		if swapped || err != nil {
			return swapped, err
		}
		return ss.rewriteIfHolds(ctx, key, new)
	}
	for range casAttempts {
		cur, err := ss.inner.Load(ctx, key)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		plain, err := ss.s.open(key, cur)
		if err != nil {
			return false, err
		}
		if !bytes.Equal(plain, old) {
			if bytes.Equal(plain, new) {
				return ss.inner.CompareAndSwap(ctx, key, cur, cur)
			}
			return false, nil
		}
		swapped, err := ss.inner.CompareAndSwap(ctx, key, cur, sealedNew)
		if swapped || err != nil {
			return swapped, err
		}
	}
	return false, nil // rewritten all along; the caller re-reads as after a mismatch
}

// rewriteIfHolds rewrites key's sealed value unchanged, reporting a swap,
// when it opens to want; otherwise it reports none.
func (ss *sealedStore) rewriteIfHolds(ctx context.Context, key string, want []byte) (bool, error) {
	cur, err := ss.inner.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if plain, err := ss.s.open(key, cur); err != nil || !bytes.Equal(plain, want) {
		return false, err
	}
	return ss.inner.CompareAndSwap(ctx, key, cur, cur)
}

// Take implements Store. A value that was taken but does not open is gone
// from the inner store all the same.
func (ss *sealedStore) Take(ctx context.Context, key string) ([]byte, error) {
	v, err := ss.inner.Take(ctx, key)
	if err != nil {
		return nil, err
	}
	return ss.s.open(key, v)
}

// List implements Store.
func (ss *sealedStore) List(ctx context.Context, prefix string) ([]string, error) {
	return ss.inner.List(ctx, prefix)
}

// Lock implements Store.
func (ss *sealedStore) Lock(ctx context.Context, name string) (func(), error) {
	return ss.inner.Lock(ctx, name)
}

// Watch implements Watcher when inner does; otherwise it returns an error
// wrapping errors.ErrUnsupported.
func (ss *sealedStore) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	w, ok := ss.inner.(Watcher)
	if !ok {
		return nil, fmt.Errorf("store: %T does not report changes: %w", ss.inner, errors.ErrUnsupported)
	}
	return w.Watch(ctx, prefix)
}

// Ping implements Store.
func (ss *sealedStore) Ping(ctx context.Context) error { return ss.inner.Ping(ctx) }

// Close implements Store.
func (ss *sealedStore) Close() error { return ss.inner.Close() }
