package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/store"
)

const storeUsage = `Usage:
  sidekey store backup  --config FILE --out PATH           write a sealed, consistent snapshot of the store
  sidekey store restore --config FILE --in PATH [--force]  write a backup into an empty store
  sidekey store rekey   --config FILE --new-key-file PATH  re-seal every value under a new key

backup runs beside a serving sidekey; restore and rekey need it stopped
(every replica, for redis). A backup stays sealed: restore needs the same
key. After rekey, point storage.key_file at the new key.
`

// storeCmd is `sidekey store backup|restore|rekey`.
func storeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, storeUsage)
		return fmt.Errorf("%w: store backup|restore|rekey", errUsage)
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "backup":
		return storeBackupCmd(ctx, args, stdout, stderr)
	case "restore":
		return storeRestoreCmd(ctx, args, stdout, stderr)
	case "rekey":
		return storeRekeyCmd(ctx, args, stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, storeUsage)
		return nil
	}
	fmt.Fprint(stderr, storeUsage)
	return fmt.Errorf("%w: unknown store command %q (want backup, restore or rekey)", errUsage, sub)
}

// storeFlags parses a store sub-command's flags: --config and the one path
// flag it requires (flagName), plus what extra registers.
func storeFlags(sub string, args []string, stderr io.Writer, flagName, flagHelp string, extra func(*flag.FlagSet)) (*config.Config, string, *zap.Logger, error) {
	fs := flag.NewFlagSet("store "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage of sidekey store %s:\n", sub)
		fs.PrintDefaults()
	}
	cfgPath := configFlag(fs)
	path := fs.String(flagName, "", flagHelp)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, "", nil, err
		}
		return nil, "", nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, "", nil, fmt.Errorf("%w: store %s: unexpected argument %q", errUsage, sub, fs.Arg(0))
	}
	if *path == "" {
		return nil, "", nil, fmt.Errorf("%w: store %s needs --%s PATH", errUsage, sub, flagName)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return nil, "", nil, err
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return nil, "", nil, err
	}
	return cfg, *path, log, nil
}

// helpOK turns -h into a successful exit after the usage was printed.
func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func storeBackupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, out, log, err := storeFlags("backup", args, stderr, "out", "write the backup to `path` (replaced atomically, mode 0600)", nil)
	if err != nil {
		return helpOK(err)
	}
	var info store.BackupInfo
	err = writeFileAtomically(out, func(w io.Writer) error {
		var err error
		info, err = store.Backup(ctx, w, store.BackupOptions{Storage: cfg.Storage, Logger: log})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %d values of the %s store (format %d, key %s) to %s\n",
		info.Values, info.Kind, info.StoreFormat, info.KeyFingerprint, out)
	return nil
}

func storeRestoreCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var force bool
	cfg, in, log, err := storeFlags("restore", args, stderr, "in", "read the backup from `path`", func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "replace what a non-empty store holds")
	})
	if err != nil {
		return helpOK(err)
	}
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("store restore: --in: %w", err)
	}
	defer f.Close()
	info, err := store.Restore(ctx, f, store.RestoreOptions{Storage: cfg.Storage, Force: force, Logger: log})
	if err != nil {
		return fmt.Errorf("store restore: %s: %w", in, err)
	}
	fmt.Fprintf(stdout, "restored %d values (a backup of a %s store, key %s) into the %s store\n",
		info.Values, info.Kind, info.KeyFingerprint, storeKind(cfg.Storage))
	return nil
}

func storeRekeyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, newKey, log, err := storeFlags("rekey", args, stderr, "new-key-file",
		"the new key's `file` (32 raw bytes, 64 hex characters or base64 of 32 bytes; generated with mode 0600 if absent)", nil)
	if err != nil {
		return helpOK(err)
	}
	info, err := store.Rekey(ctx, store.RekeyOptions{Storage: cfg.Storage, NewKeyFile: newKey, Logger: log})
	if err != nil {
		return err
	}
	if info.KeyCreated {
		fmt.Fprintf(stdout, "generated a new key in %s (mode 0600); keep it as a secret\n", newKey)
	}
	fmt.Fprintf(stdout, "re-sealed %d values under the key in %s (key %s; the old key %s is retired)\n"+
		"now set storage.key_file to %s and start sidekey\n",
		info.Values, newKey, info.NewFingerprint, info.OldFingerprint, newKey)
	return nil
}

// storeKind names the configured store kind.
func storeKind(s config.Storage) string {
	if s.Type == "" {
		return "file"
	}
	return s.Type
}

// writeFileAtomically writes path through write: into a temporary file
// (mode 0600) beside it, fsync'd, then renamed over path, so path holds
// either its old content or the whole new one.
func writeFileAtomically(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("store backup: --out: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("store backup: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store backup: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("store backup: --out: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename survives a crash
		d.Close()
	}
	return nil
}
