package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sidekey/sidekey/localca"
	"github.com/sidekey/sidekey/store"
)

// caCmd prints the local CA certificate (PEM) that apps trust for tls:
// local listeners and the forward proxy: the one in local_ca's files, or
// the one in the token store — generated and stored there now if the
// store has none yet, exactly as `sidekey serve` would on first use. The
// CA key is never printed.
func caCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, cfg, err := configArgs("ca", args, stderr)
	if err != nil {
		return err
	}
	opts := localca.Options{CertFile: cfg.LocalCA.CertFile, KeyFile: cfg.LocalCA.KeyFile}
	if opts.CertFile == "" {
		if cfg.Storage.Type == "memory" {
			return errors.New("sidekey ca: storage type memory keeps a generated CA only inside the serving process; " +
				"set local_ca.cert_file and local_ca.key_file, or use storage type file or redis")
		}
		st, err := store.Open(cfg.Storage, nil)
		if err != nil {
			return fmt.Errorf("sidekey ca: opening the token store (a file store is locked while sidekey serves from it: "+
				"run `sidekey ca` before `sidekey serve`, or use redis or local_ca): %w", err)
		}
		defer st.Close()
		opts.Store = st
	}
	ca, err := localca.Open(ctx, opts)
	if err != nil {
		return err
	}
	_, err = stdout.Write(ca.CertificatePEM())
	return err
}
