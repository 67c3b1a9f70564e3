package store

import (
	"crypto/rand"
	"fmt"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
)

// Open returns the store cfg selects, already sealed: callers must not pass
// it to Seal again. log may be nil.
//
//   - "file" (and ""): OpenFile in cfg.Path with cfg.KeyFile (default
//     {path}/key, generated if absent).
//   - "memory": NewMemory sealed with the key in cfg.KeyFile when set (it
//     must exist), otherwise with a random key that lives as long as the
//     process — as long as the values.
//   - "redis": OpenRedis with cfg.Redis, sealed with the key in
//     cfg.KeyFile, which is required and never generated: every replica
//     must seal with the same key, so it comes from a shared secret. A
//     canary proves the key right, as in the file store: a key that does
//     not open what is stored is an error wrapping ErrWrongKey.
func Open(cfg config.Storage, log *zap.Logger) (Store, error) {
	switch cfg.Type {
	case "", "file":
		return OpenFile(FileOptions{Dir: cfg.Path, KeyFile: cfg.KeyFile, Logger: log})
	case "memory":
		key, err := memoryKey(cfg.KeyFile, log)
		if err != nil {
			return nil, err
		}
		return Seal(NewMemory(), key)
	case "redis":
		return openSealedRedis(cfg, log)
	default:
		return nil, fmt.Errorf("store: storage.type %q: want file, memory or redis", cfg.Type)
	}
}

// memoryKey returns the key that seals a memory store: the one in keyFile,
// or a random one when keyFile is empty.
func memoryKey(keyFile string, log *zap.Logger) ([]byte, error) {
	if keyFile == "" {
		key := make([]byte, KeySize)
		_, _ = rand.Read(key) // never fails: crypto/rand crashes the program rather than return an error
		return key, nil
	}
	if log == nil {
		log = zap.NewNop()
	}
	return readKeyFile(keyFile, log)
}
