package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sidekey/sidekey/config"
)

// testACMEReplicasShare runs two replicas on one Redis: A obtains the
// certificate, B starts later and serves the same one, loaded from the
// shared store rather than obtained again. Then two replicas on a fresh
// Redis start together: the lock in Redis lets one obtain, and both serve
// its certificate.
func testACMEReplicasShare(t *testing.T, b pebbleBuild) {
	p := startPebble(t, b, pebbleOptions{})
	roots := p.issuingRoot(t)
	rdb, rdb2 := startRedis(t), startRedis(t)
	keyFile := filepath.Join(t.TempDir(), "store-key")
	storeKey := make([]byte, 32)
	_, _ = rand.Read(storeKey)                                    // never fails
	writeAtomic(t, keyFile, []byte(hex.EncodeToString(storeKey))) // the 32-byte store key every replica seals with

	replica := func(name string, rdb *testRedis) (data string, logs *observer.ObservedLogs, r *acmeReplica) {
		data = t.TempDir()
		cfg := &config.Config{
			Storage: config.Storage{Type: "redis", Path: data, KeyFile: keyFile, Redis: config.Redis{Addr: rdb.addr}},
			TLS: config.TLS{
				Mode:              "acme",
				Domains:           []string{"localhost"},
				CA:                p.dir,
				CARootFile:        p.caFile,
				Email:             "ops@sidekey.test",
				HTTPChallengePort: freePort(t),
			},
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		core, logs := observer.New(zapcore.InfoLevel)
		return data, logs, &acmeReplica{run: runTLS(t, zap.New(core).Named(name), cfg, ln), addr: ln.Addr().String()}
	}

	dataA, logsA, rA := replica("a", rdb)
	leafA := rA.leaf(t, roots, p)
	dataB, logsB, rB := replica("b", rdb)
	leafB := rB.leaf(t, roots, p)

	if leafA.SerialNumber.Cmp(leafB.SerialNumber) != 0 {
		t.Errorf("B serves serial %s; want A's %s: B obtained its own certificate", leafB.SerialNumber, leafA.SerialNumber)
	}
	if logsA.FilterMessage("obtaining certificate").Len() == 0 {
		t.Error("A logged no \"obtaining certificate\": it should have obtained the certificate")
	}
	for _, msg := range []string{"acquiring lock", "obtaining certificate"} {
		if n := logsB.FilterMessage(msg).Len(); n != 0 {
			t.Errorf("B logged %q %d times; want none: it should load A's certificate", msg, n)
		}
	}
	if logsB.FilterMessageSnippet("shared redis store").Len() == 0 {
		t.Error("B did not log that ACME data is kept in the shared redis store")
	}
	for _, dir := range []string{dataA, dataB} {
		if _, err := os.Stat(filepath.Join(dir, "acme")); err == nil {
			t.Errorf("%s/acme exists: ACME data went to a replica's own directory", dir)
		}
	}

	// The certificate and its key are in Redis, sealed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := redis.NewClient(&redis.Options{Addr: rdb.addr})
	defer client.Close()
	keys, err := client.Keys(ctx, "sidekey:kv:acme/*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var crt, key bool
	for _, k := range keys {
		crt = crt || strings.HasSuffix(k, "/localhost.crt")
		key = key || strings.HasSuffix(k, "/localhost.key")
		v, err := client.Get(ctx, k).Bytes()
		if err != nil {
			t.Fatalf("GET %s: %v", k, err)
		}
		if bytes.Contains(v, []byte("-----BEGIN")) {
			t.Errorf("Redis key %s holds PEM in plain text", k)
		}
	}
	if !crt || !key {
		t.Errorf("Redis keys under sidekey:kv:acme/: got %q; want localhost.crt and localhost.key among them", keys)
	}

	// Started together: both find nothing stored, one obtains under the
	// lock, the other waits for it and then finds the certificate.
	_, logsC, rC := replica("c", rdb2)
	_, logsD, rD := replica("d", rdb2)
	leafC, leafD := rC.leaf(t, roots, p), rD.leaf(t, roots, p)
	if leafC.SerialNumber.Cmp(leafD.SerialNumber) != 0 {
		t.Errorf("replicas started together serve serials %s and %s; want one certificate", leafC.SerialNumber, leafD.SerialNumber)
	}
	if leafC.SerialNumber.Cmp(leafA.SerialNumber) == 0 {
		t.Errorf("replicas on a fresh Redis serve A's serial %s; want a new certificate", leafA.SerialNumber)
	}
	obtained := logsC.FilterMessage("obtaining certificate").Len() + logsD.FilterMessage("obtaining certificate").Len()
	if obtained != 1 {
		t.Errorf("replicas started together logged \"obtaining certificate\" %d times; want 1", obtained)
	}
}

// acmeReplica is a sidekey started by runTLS.
type acmeReplica struct {
	run  *tlsRun
	addr string // its listener, 127.0.0.1:port
}

// leaf waits until the replica answers https://localhost/_sidekey/healthz
// with a certificate roots verify, and returns that certificate. A
// request, not only a handshake: while the certificate is obtained or
// loaded, handshakes are answered (for TLS-ALPN-01) before sidekey serves.
func (r *acmeReplica) leaf(t *testing.T, roots *x509.CertPool, p *pebble) *x509.Certificate {
	t.Helper()
	client := localhostClient(roots, r.addr, nil)
	_, port, _ := net.SplitHostPort(r.addr)
	url := "https://" + net.JoinHostPort("localhost", port) + "/_sidekey/healthz"
	deadline := time.Now().Add(40 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: got %d; want 200", url, resp.StatusCode)
			}
			return resp.TLS.PeerCertificates[0]
		}
		select {
		case runErr := <-r.run.done:
			t.Fatalf("sidekey on %s did not start: %v\npebble:\n%s", r.addr, runErr, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTPS with a Pebble certificate on %s within 40s: %v\npebble:\n%s", r.addr, err, p.out)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// testRedis is a redis-server child process on a free loopback port,
// killed by PID when the test ends.
type testRedis struct {
	addr string
}

// startRedis starts a redis-server that keeps nothing on disk. The test
// fails, never skips, when redis-server is not installed.
func startRedis(t *testing.T) *testRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed: the replica tests run against a real server. "+
			"`make test` installs it (Debian package redis-server); by hand: apt-get install redis-server (%v)", err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	out := &lockedBuffer{}
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: start: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return &testRedis{addr: addr}
		}
		select {
		case <-exited:
			t.Fatalf("redis-server exited before answering PING:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer PING within 10s (%v):\n%s", addr, err, out)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}
