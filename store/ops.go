package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
)

// BackupOptions configures Backup.
type BackupOptions struct {
	// Storage is the store to back up, as configured. Required.
	Storage config.Storage
	// Logger receives warnings about key files. Nil: zap.NewNop().
	Logger *zap.Logger
}

// BackupInfo describes a backup that was taken or restored.
type BackupInfo struct {
	Kind           string // "file" or "redis": where the backup was taken
	Values         int    // how many values it holds
	StoreFormat    int    // the store's format when it was taken
	KeyFingerprint string // KeyFingerprint of the key that seals it
}

// Backup writes a consistent snapshot of the configured store to w in the
// backup format (see backup_format.go): every value still sealed, so a
// backup is as safe to keep as the store, with a header naming the store
// kind, its format and the fingerprint of its key (never the key). It
// first proves that the configured key opens the store, so the backup is
// one that key can restore.
//
// It runs beside a serving sidekey: a file store in use is asked for a
// snapshot over its socket (one bbolt read transaction in the serving
// process); a redis store is read in one script. A memory store has
// nothing to back up.
func Backup(ctx context.Context, w io.Writer, opts BackupOptions) (BackupInfo, error) {
	log := orNop(opts.Logger)
	cfg := opts.Storage
	if cfg.Type != "" && cfg.Type != "file" && cfg.Type != "redis" {
		return BackupInfo{}, notDurable(cfg.Type)
	}
	key, keyFile, err := configuredKey(cfg, log)
	if err != nil {
		return BackupInfo{}, err
	}
	var snap *snapshot
	var where string
	switch cfg.Type {
	case "", "file":
		where = filepath.Join(cfg.Path, dbFileName)
		snap, err = fileSnapshot(cfg.Path)
	case "redis":
		var r *redisStore
		if r, err = openConfiguredRedis(cfg, log); err != nil {
			return BackupInfo{}, err
		}
		defer r.Close()
		where = r.where()
		snap, err = r.snapshot(ctx)
	default:
		return BackupInfo{}, notDurable(cfg.Type)
	}
	if err != nil {
		return BackupInfo{}, err
	}
	if err := checkFormat(where, snap.header.StoreFormat); err != nil {
		return BackupInfo{}, err
	}
	if snap.header.Canary == nil && len(snap.records) == 0 {
		return BackupInfo{}, fmt.Errorf("store: %s is empty and was never opened by sidekey; nothing to back up (a backup of it would replace a good one with nothing)", where)
	}
	s, err := newSealer(key)
	if err != nil {
		return BackupInfo{}, err
	}
	if err := snap.opensWith(s); err != nil {
		return BackupInfo{}, wrongKeyError(where, keyFile, key, nil, nil)
	}
	snap.header.KeyFingerprint = KeyFingerprint(key)
	if err := encodeSnapshot(w, snap); err != nil {
		return BackupInfo{}, err
	}
	return snap.info(), nil
}

// fileSnapshot takes a snapshot of the file store in dir: itself when no
// process holds the database, else from the process that does.
func fileSnapshot(dir string) (*snapshot, error) {
	if dir == "" {
		return nil, errors.New("store: the file store needs a directory (storage.path)")
	}
	dbPath := filepath.Join(dir, dbFileName)
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("store: no file store at %s: %w", dbPath, err)
	}
	b, err := openBolt(dbPath, 100*time.Millisecond)
	if errors.Is(err, berrors.ErrTimeout) {
		return dialSnapshot(dir)
	}
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return b.snapshot()
}

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// Storage is the store to restore into, as configured. Required. Its
	// key file must hold the key the backup was sealed with.
	Storage config.Storage
	// Force replaces what a non-empty store holds. Default false: a store
	// holding any value is refused.
	Force bool
	// Logger receives warnings about key files. Nil: zap.NewNop().
	Logger *zap.Logger
}

// Restore reads a backup from r and writes it into the configured store,
// which must be empty unless opts.Force is set (then everything it held is
// replaced). Before it writes anything it checks the whole backup: its
// checksum, its format, that the configured key is the one it was sealed
// with (by fingerprint) and that this key opens its canary and every
// value; any failure leaves the store untouched. The write itself is one
// transaction (file) or one script (redis). A backup restores into either
// kind of store. Stop sidekey first: a file store is locked by the process
// serving it, and replicas on redis keep what they cached.
func Restore(ctx context.Context, r io.Reader, opts RestoreOptions) (BackupInfo, error) {
	log := orNop(opts.Logger)
	cfg := opts.Storage
	if cfg.Type != "" && cfg.Type != "file" && cfg.Type != "redis" {
		return BackupInfo{}, notDurable(cfg.Type)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: reading the backup: %w", err)
	}
	snap, err := decodeSnapshot(data)
	if err != nil {
		return BackupInfo{}, err
	}
	if err := checkFormat("the backup", snap.header.StoreFormat); err != nil {
		return BackupInfo{}, err
	}
	key, keyFile, err := configuredKey(cfg, log)
	if errors.Is(err, fs.ErrNotExist) {
		return BackupInfo{}, fmt.Errorf("store: the backup is sealed with the key of fingerprint %s, and key_file %s is missing: %w",
			snap.header.KeyFingerprint, keyFile, err)
	}
	if err != nil {
		return BackupInfo{}, err
	}
	fp := KeyFingerprint(key)
	if fp != snap.header.KeyFingerprint {
		return BackupInfo{}, fmt.Errorf("store: the backup is sealed with the key of fingerprint %s, but key_file %s holds the key %s; point storage.key_file at the backup's key: %w",
			snap.header.KeyFingerprint, keyFile, fp, ErrWrongKey)
	}
	s, err := newSealer(key)
	if err != nil {
		return BackupInfo{}, err
	}
	if err := snap.opensWith(s); err != nil {
		return BackupInfo{}, fmt.Errorf("store: the backup does not open with key_file %s (nothing was written): %w", keyFile, err)
	}
	if snap.header.Canary == nil {
		snap.header.Canary = s.seal(canaryName, []byte(canaryValue))
	}
	switch cfg.Type {
	case "", "file":
		if cfg.Path == "" {
			return BackupInfo{}, errors.New("store: the file store needs a directory (storage.path)")
		}
		if err := os.MkdirAll(cfg.Path, 0o700); err != nil {
			return BackupInfo{}, fmt.Errorf("store: creating the store directory: %w", err)
		}
		b, err := openBolt(filepath.Join(cfg.Path, dbFileName), lockTimeout)
		if err != nil {
			return BackupInfo{}, stopFirst(err)
		}
		defer b.Close()
		err = b.restore(snap, fp, opts.Force)
		if err != nil {
			return BackupInfo{}, err
		}
	default:
		rs, err := openConfiguredRedis(cfg, log)
		if err != nil {
			return BackupInfo{}, err
		}
		defer rs.Close()
		if err := rs.restore(ctx, snap, fp, opts.Force); err != nil {
			return BackupInfo{}, err
		}
	}
	return snap.info(), nil
}

// RekeyOptions configures Rekey.
type RekeyOptions struct {
	// Storage is the store to re-seal, as configured; its key file holds
	// the current key. Required.
	Storage config.Storage
	// NewKeyFile holds the new key, in any form a key file may take. If
	// it does not exist, a new random key is generated there (mode 0600).
	// Required.
	NewKeyFile string
	// Logger receives warnings about key files. Nil: zap.NewNop().
	Logger *zap.Logger
}

// RekeyInfo describes a finished rekey.
type RekeyInfo struct {
	Values         int    // how many values were re-sealed
	OldFingerprint string // KeyFingerprint of the retired key
	NewFingerprint string // KeyFingerprint of the new key
	KeyCreated     bool   // NewKeyFile did not exist and was generated
}

// Rekey re-seals every value of the configured store under the key in
// opts.NewKeyFile, in one transaction (file) or one script (redis): a
// crash at any moment leaves a store that exactly one of the two keys
// opens whole. The store then records the new key's fingerprint and
// retires the old one, so that a sidekey still configured with the old key
// is refused with "store was re-keyed; key_file … does not open it". Stop
// sidekey first (every replica, for redis): a process holding the old key
// would keep sealing with it.
func Rekey(ctx context.Context, opts RekeyOptions) (RekeyInfo, error) {
	log := orNop(opts.Logger)
	cfg := opts.Storage
	if opts.NewKeyFile == "" {
		return RekeyInfo{}, errors.New("store: rekey needs the new key file")
	}
	if cfg.Type != "" && cfg.Type != "file" && cfg.Type != "redis" {
		return RekeyInfo{}, notDurable(cfg.Type)
	}
	oldKey, keyFile, err := configuredKey(cfg, log)
	if err != nil {
		return RekeyInfo{}, err
	}
	newKey, created, err := LoadOrCreateKey(opts.NewKeyFile, log)
	if err != nil {
		return RekeyInfo{}, err
	}
	info := RekeyInfo{OldFingerprint: KeyFingerprint(oldKey), NewFingerprint: KeyFingerprint(newKey), KeyCreated: created}
	if info.OldFingerprint == info.NewFingerprint {
		return RekeyInfo{}, fmt.Errorf("store: %s holds the store's current key (%s); a rekey needs a different key", opts.NewKeyFile, info.NewFingerprint)
	}
	newSeal, err := newSealer(newKey)
	if err != nil {
		return RekeyInfo{}, err
	}
	switch cfg.Type {
	case "", "file":
		dbPath := filepath.Join(cfg.Path, dbFileName)
		if _, err := os.Stat(dbPath); err != nil {
			return RekeyInfo{}, fmt.Errorf("store: no file store at %s: %w", dbPath, err)
		}
		b, err := openBolt(dbPath, lockTimeout)
		if err != nil {
			return RekeyInfo{}, stopFirst(err)
		}
		defer b.Close()
		oldSeal, err := unlockFile(b, keyFile, log, nil)
		if err != nil {
			return RekeyInfo{}, err
		}
		log.Info(rekeyStarting, zap.String("store", b.path), zap.String("new_key", info.NewFingerprint))
		info.Values, err = b.rekey(oldSeal, newSeal, info.OldFingerprint, info.NewFingerprint)
		return info, err
	default:
		r, err := openConfiguredRedis(cfg, log)
		if err != nil {
			return RekeyInfo{}, err
		}
		defer r.Close()
		oldSeal, err := newSealer(oldKey)
		if err != nil {
			return RekeyInfo{}, err
		}
		if err := r.checkCanary(oldSeal, oldKey, keyFile); err != nil {
			return RekeyInfo{}, err
		}
		log.Info(rekeyStarting, zap.String("store", r.where()), zap.String("new_key", info.NewFingerprint))
		info.Values, err = r.rekey(ctx, oldSeal, newSeal, info.OldFingerprint, info.NewFingerprint)
		return info, err
	}
}

// rekeyStarting is logged when Rekey has proven the old key and starts to
// re-seal.
const rekeyStarting = "re-sealing every value under the new key"

// configuredKey reads the key the configuration names: storage.key_file,
// or for the file store its default {path}/key. It never creates one.
func configuredKey(cfg config.Storage, log *zap.Logger) (key []byte, keyFile string, err error) {
	keyFile = cfg.KeyFile
	if keyFile == "" {
		if cfg.Type == "redis" {
			return nil, "", errors.New("store: storage.type redis needs storage.key_file")
		}
		if cfg.Path == "" {
			return nil, "", errors.New("store: the file store needs a directory (storage.path)")
		}
		keyFile = filepath.Join(cfg.Path, defaultKeyFileName)
	}
	key, err = readKeyFile(keyFile, log)
	return key, keyFile, err
}

// opensWith checks that s opens the snapshot's canary (when it has one)
// and every value.
func (snap *snapshot) opensWith(s *sealer) error {
	if snap.header.Canary != nil {
		if v, err := s.open(canaryName, snap.header.Canary); err != nil || string(v) != canaryValue {
			return fmt.Errorf("store: the canary does not open with this key: %w", ErrWrongKey)
		}
	}
	for _, r := range snap.records {
		if _, err := s.open(r.key, r.value); err != nil {
			return err
		}
	}
	return nil
}

// info describes the snapshot.
func (snap *snapshot) info() BackupInfo {
	return BackupInfo{Kind: snap.header.Kind, Values: len(snap.records), StoreFormat: snap.header.StoreFormat, KeyFingerprint: snap.header.KeyFingerprint}
}

// stopFirst explains a file store locked by a running sidekey.
func stopFirst(err error) error {
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("%w; stop sidekey first", err)
	}
	return err
}

// notDurable is the error for a store kind the store commands do not
// serve.
func notDurable(kind string) error {
	return fmt.Errorf("store: storage.type %q keeps nothing durable to back up, restore or re-key (want file or redis)", kind)
}

// orNop returns log, or a no-op logger for nil.
func orNop(log *zap.Logger) *zap.Logger {
	if log == nil {
		return zap.NewNop()
	}
	return log
}
