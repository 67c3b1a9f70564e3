package main

import (
	"context"
	"crypto/sha256"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/server"
)

// configPollInterval is how often serve looks for a changed config or
// secret file (Kubernetes updates a mounted ConfigMap or Secret by swapping
// a symlink, which comparing the content sees on any filesystem).
const configPollInterval = 5 * time.Second

// watchOptions configures watchConfig.
type watchOptions struct {
	// Path is the config file. Required.
	Path string
	// Config is the running configuration: its secret files are watched
	// from the start. Required.
	Config *config.Config
	// Server receives each reload. Required.
	Server *server.Server
	// Logger receives reloads and rejected files. Nil: nop.
	Logger *zap.Logger
	// Every is how often the files are compared. Default configPollInterval.
	Every time.Duration
}

// watchConfig reloads the server's configuration on SIGHUP and when the
// content of the config file or of a secret file it names (SecretFiles)
// changes, until ctx is done. A bad file is logged with every problem and
// the running configuration stays; it is tried again when a file changes
// again.
func watchConfig(ctx context.Context, opts watchOptions) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if opts.Every <= 0 {
		opts.Every = configPollInterval
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(opts.Every)
	defer tick.Stop()
	// Each reload watches the secret files of the last config that loaded.
	secrets := opts.Config.SecretFiles()
	last := fingerprint(opts.Path, secrets)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading the configuration", zap.String("path", opts.Path))
		case <-tick.C:
			if fingerprint(opts.Path, secrets) == last {
				continue
			}
			log.Info("configuration or secret file changed: reloading", zap.String("path", opts.Path))
		}
		cfg, err := loadConfig(opts.Path)
		if err == nil {
			err = opts.Server.Reload(cfg)
		}
		if err != nil {
			log.Error("reload rejected; the running configuration stays", zap.Error(err))
		} else {
			secrets = cfg.SecretFiles()
		}
		last = fingerprint(opts.Path, secrets)
	}
}

// fingerprint is a digest of the content of path and of every file in
// secrets (an unreadable file counts as empty and missing): it changes
// when any of them does. The content itself never leaves this function.
func fingerprint(path string, secrets []string) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range append([]string{path}, secrets...) {
		data, err := os.ReadFile(f)
		sum := sha256.Sum256(data)
		h.Write([]byte(f))
		h.Write([]byte{0})
		if err != nil {
			h.Write([]byte{1})
		}
		h.Write(sum[:])
	}
	return [sha256.Size]byte(h.Sum(nil))
}
