package main

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/server"
)

// configPollInterval is how often serve looks for a changed config file
// (Kubernetes updates a mounted ConfigMap by swapping a symlink, which
// polling the content sees on any filesystem).
const configPollInterval = 5 * time.Second

// watchConfig reloads srv's configuration from path on SIGHUP and when the
// file's content changes, until ctx is done. A bad file is logged with every
// problem and the running configuration stays.
func watchConfig(ctx context.Context, path string, srv *server.Server, log *zap.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(configPollInterval)
	defer tick.Stop()
	last, _ := os.ReadFile(path)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading the configuration", zap.String("path", path))
		case <-tick.C:
			cur, err := os.ReadFile(path)
			if err != nil || bytes.Equal(cur, last) {
				continue
			}
			log.Info("configuration file changed: reloading", zap.String("path", path))
		}
		last, _ = os.ReadFile(path)
		cfg, err := loadConfig(path)
		if err == nil {
			err = srv.Reload(cfg)
		}
		if err != nil {
			log.Error("reload rejected; the running configuration stays", zap.Error(err))
		}
	}
}
