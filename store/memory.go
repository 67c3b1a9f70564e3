package store

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
)

// memoryStore is a Store held in a map. See NewMemory.
type memoryStore struct {
	locks *lockTable
	feed  *changeFeed

	mu     sync.RWMutex      // guards values and closed
	values map[string][]byte // by key; each slice owned by the store
	closed bool
}

// NewMemory returns an empty Store kept in memory: nothing survives the
// process, Lock excludes within the process, and it implements Watcher
// within the process. It is safe for concurrent use. Values are copied in
// and out, so callers may reuse their slices. It does not seal values; wrap
// it with Seal for that.
func NewMemory() Store {
	return &memoryStore{locks: newLockTable(), feed: newChangeFeed(), values: make(map[string][]byte)}
}

// Load implements Store.
func (m *memoryStore) Load(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	v, ok := m.values[key]
	if !ok {
		return nil, errNotExist(key)
	}
	return slices.Clone(v), nil
}

// Store implements Store.
func (m *memoryStore) Store(ctx context.Context, key string, value []byte) error {
	if err := begin(ctx, key); err != nil {
		return err
	}
	v := append(make([]byte, 0, len(value)), value...)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.values[key] = v
	m.mu.Unlock()
	m.feed.publish(key)
	return nil
}

// Delete implements Store.
func (m *memoryStore) Delete(ctx context.Context, key string) error {
	if err := begin(ctx, key); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	_, ok := m.values[key]
	delete(m.values, key)
	m.mu.Unlock()
	if ok {
		m.feed.publish(key)
	}
	return nil
}

// CompareAndSwap implements Store.
func (m *memoryStore) CompareAndSwap(ctx context.Context, key string, old, new []byte) (bool, error) {
	if err := begin(ctx, key); err != nil {
		return false, err
	}
	v := append(make([]byte, 0, len(new)), new...)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false, ErrClosed
	}
	cur, ok := m.values[key]
	if ok != (old != nil) || !bytes.Equal(cur, old) {
		m.mu.Unlock()
		return false, nil
	}
	m.values[key] = v
	m.mu.Unlock()
	m.feed.publish(key)
	return true, nil
}

// Take implements Store.
func (m *memoryStore) Take(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	v, ok := m.values[key]
	delete(m.values, key)
	m.mu.Unlock()
	if !ok {
		return nil, errNotExist(key)
	}
	m.feed.publish(key)
	return v, nil // the store no longer refers to v
}

// List implements Store.
func (m *memoryStore) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	keys := []string{}
	for k := range m.values {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// Lock implements Store.
func (m *memoryStore) Lock(ctx context.Context, name string) (func(), error) {
	if err := checkLockName(name); err != nil {
		return nil, err
	}
	return m.locks.lock(ctx, name)
}

// Watch implements Watcher for writes through this store.
func (m *memoryStore) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	return m.feed.watch(ctx, prefix)
}

// Ping implements Store: nil until Close.
func (m *memoryStore) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Close implements Store. It drops every value and ends every Watch.
func (m *memoryStore) Close() error {
	m.locks.close()
	m.feed.close()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.values = nil
	return nil
}

// begin checks what every keyed operation checks first: the context and
// the key.
func begin(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return checkKey(key)
}
