package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

const (
	// dbFileName is the database file inside FileOptions.Dir.
	dbFileName = "sidekey.db"
	// defaultKeyFileName is the key file inside FileOptions.Dir when
	// FileOptions.KeyFile is empty.
	defaultKeyFileName = "key"
	// lockTimeout is how long OpenFile waits for another process to let go
	// of the database.
	lockTimeout = time.Second

	// canaryRecord is the meta bucket record holding the sealed canary.
	canaryRecord = "canary"
	// canaryName is the name the canary is sealed under. Its control
	// character makes it an invalid key, so no stored value can pass for it.
	canaryName = "\x00sidekey/canary"
	// canaryValue is the canary's plaintext.
	canaryValue = "sidekey store canary v1"
)

// FileOptions configures OpenFile. Zero values mean "use the default".
type FileOptions struct {
	// Dir is the store's directory; it holds the database sidekey.db and,
	// by default, the key. Required. Created with mode 0700 if missing.
	Dir string
	// KeyFile holds the store key (32 raw bytes, 64 hex characters or
	// base64 of 32 bytes). Default {Dir}/key. Generated (mode 0600, with a
	// warning) if absent — unless the database already holds sealed data,
	// which a new key could not open: then its absence is an error.
	KeyFile string
	// Logger receives warnings about the key file. Nil: zap.NewNop().
	Logger *zap.Logger

	hook func(stage string) // test hook called at each stage of opening; nil: none
}

// OpenFile opens the file store in opts.Dir, creating it if needed, and
// returns it sealed with the key from opts.KeyFile: every value is encrypted
// with AES-256-GCM before it reaches the disk, so it must not be passed to
// Seal again. It is safe for concurrent use.
//
// The database is a bbolt file, mode 0600, that one process at a time may
// open: if another holds it, OpenFile fails after about a second with
// "store: PATH is in use by another sidekey process". Every Store, Delete,
// Take and CompareAndSwap is one transaction, committed and fsync'd before
// it returns, so a crash loses nothing that was reported stored; each is
// first handed to the kernel through the journal sidekey.journal beside the
// database and replayed at the next open, so a process killed during the
// commit's fsync loses nothing either (see journal.go). Lock and Watch are
// in-process: the database has no other users. While open, the store
// answers backups on the Unix socket sidekey.sock in opts.Dir (see
// snapshot_server.go).
//
// On first open OpenFile writes a sealed canary into the database; later
// opens decrypt it, and if the key does not open it they fail with an error
// wrapping ErrWrongKey rather than start empty or overwrite anything. The
// canary is kept apart from keys and never appears in List.
func OpenFile(opts FileOptions) (Store, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if opts.Dir == "" {
		return nil, errors.New("store: the file store needs a directory (storage.path)")
	}
	keyFile := opts.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(opts.Dir, defaultKeyFileName)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating the store directory: %w", err)
	}
	dbPath := filepath.Join(opts.Dir, dbFileName)
	b, err := openBolt(dbPath, lockTimeout)
	if err != nil {
		return nil, err
	}
	b.hook = opts.hook
	callHook(opts.hook, "db-opened")
	s, err := unlockFile(b, keyFile, log, opts.hook)
	if err != nil {
		b.Close()
		return nil, err
	}
	b.serveSnapshots(opts.Dir, log)
	log.Info("opened the file store", zap.String("path", dbPath), zap.String("key_file", keyFile))
	return &sealedStore{inner: b, s: s}, nil
}

// unlockFile loads the key for the open database b and proves it right with
// the canary, writing the canary if the database has none yet. It refuses a
// database in a newer format than this sidekey's and upgrades an older one
// (see storeFormat) once the key is proven.
func unlockFile(b *boltStore, keyFile string, log *zap.Logger, hook func(string)) (*sealer, error) {
	meta, err := b.readMetas(formatRecord, canaryRecord, fingerprintRecord, retiredRecord)
	if err != nil {
		return nil, err
	}
	format, err := parseFormat(b.path, meta[formatRecord])
	if err != nil {
		return nil, err
	}
	if err := checkFormat(b.path, format); err != nil {
		return nil, err
	}
	canary := meta[canaryRecord]
	var key []byte
	if canary != nil {
		key, err = readKeyFile(keyFile, log)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store: %s holds sealed data but its key file %s is missing; restore the key (a new one could not open the data): %w",
				b.path, keyFile, err)
		}
	} else {
		key, _, err = loadOrCreateKey(keyFile, log, hook)
	}
	if err != nil {
		return nil, err
	}
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	fp := KeyFingerprint(key)
	upgrade := map[string][]byte{}
	if format < storeFormat {
		upgrade[formatRecord] = formatValue()
	}
	if string(meta[fingerprintRecord]) != fp {
		upgrade[fingerprintRecord] = []byte(fp)
	}

	if canary != nil {
		if v, err := s.open(canaryName, canary); err != nil || string(v) != canaryValue {
			return nil, wrongKeyError(b.path, keyFile, key, meta[retiredRecord], meta[fingerprintRecord])
		}
		if len(upgrade) > 0 {
			if err := b.writeMetas(upgrade); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	// No canary: a new database, or one whose first open stopped before
	// the canary was written. Whatever it holds must open with this key.
	k, v, ok, err := b.first()
	if err != nil {
		return nil, err
	}
	if ok {
		if _, err := s.open(k, v); err != nil {
			return nil, wrongKeyError(b.path, keyFile, key, meta[retiredRecord], meta[fingerprintRecord])
		}
	}
	callHook(hook, "before-canary")
	upgrade[canaryRecord] = s.seal(canaryName, []byte(canaryValue))
	if err := b.writeMetas(upgrade); err != nil {
		return nil, err
	}
	return s, nil
}
