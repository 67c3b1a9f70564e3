package store

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A file store's database is locked by the one process that has it open,
// so `sidekey store backup` cannot read it while sidekey serves. The
// serving process therefore answers backups itself: it listens on a Unix
// socket beside the database (sidekey.sock, mode 0600 in the 0700 store
// directory) and writes, to every connection, a snapshot taken in one read
// transaction — the sealed values and canary in the backup format — then
// closes it. It reads nothing from the connection. What it gives away is
// what the database file holds, to whoever may open that file already.
const (
	snapshotSocketName = "sidekey.sock"
	// snapshotTimeout bounds writing or reading one snapshot.
	snapshotTimeout = 5 * time.Minute
)

// snapshotServer answers snapshot requests on the store's socket.
type snapshotServer struct {
	ln   net.Listener
	path string
	wg   sync.WaitGroup // the accept loop and running answers
}

// serveSnapshots starts answering snapshot requests for b on the socket in
// dir. A socket that cannot be created (a path too long for a Unix socket,
// a file system without them) is a warning: sidekey serves anyway, and
// backups need it stopped.
func (b *boltStore) serveSnapshots(dir string, log *zap.Logger) {
	path := filepath.Join(dir, snapshotSocketName)
	_ = os.Remove(path) // a socket left by a killed process; we hold the database, so it is no one's
	ln, err := net.Listen("unix", path)
	if err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		log.Warn("cannot serve backups of the running file store; `sidekey store backup` will need sidekey stopped",
			zap.String("socket", path), zap.Error(err))
		return
	}
	s := &snapshotServer{ln: ln, path: path}
	s.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // closed
			}
			s.wg.Go(func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(snapshotTimeout))
				snap, err := b.snapshot()
				if err != nil {
					log.Warn("taking a snapshot for a backup failed", zap.Error(err))
					return
				}
				if err := encodeSnapshot(conn, snap); err != nil {
					log.Warn("sending a snapshot for a backup failed", zap.Error(err))
				}
			})
		}
	})
	b.serving = s
}

// close stops answering, waits for answers in progress and removes the
// socket.
func (s *snapshotServer) close() {
	s.ln.Close() // a Unix listener removes its socket file when closed
	s.wg.Wait()
}

// dialSnapshot asks the process serving the file store in dir for a
// snapshot.
func dialSnapshot(dir string) (*snapshot, error) {
	path := filepath.Join(dir, snapshotSocketName)
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("store: the file store in %s is in use, and its process does not answer on %s: %w", dir, path, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(snapshotTimeout))
	data, err := io.ReadAll(conn)
	if err != nil {
		return nil, fmt.Errorf("store: reading a snapshot from %s: %w", path, err)
	}
	snap, err := decodeSnapshot(data)
	if errors.Is(err, errNotBackup) && len(data) == 0 {
		return nil, fmt.Errorf("store: the process serving %s sent no snapshot (see its log)", dir)
	}
	return snap, err
}
