package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sidekey/sidekey/config"
)

// pebble is a Pebble ACME server running as a child process on loopback.
type pebble struct {
	dir    string        // the ACME directory URL
	mgmt   string        // the management API's base URL
	client *http.Client  // trusts Pebble's own HTTPS certificate
	caFile string        // that certificate's CA, for tls.ca_root_file
	out    *lockedBuffer // Pebble's output, for failure messages
	cmd    *exec.Cmd     // the running process, killed by PID at cleanup
	exited chan struct{} // closed when the process ends
}

// pebbleOptions configures startPebble.
type pebbleOptions struct {
	// Validate makes Pebble really validate challenges. Off: every
	// challenge passes (PEBBLE_VA_ALWAYS_VALID).
	Validate bool
	// HTTPPort and TLSPort are where Pebble validates HTTP-01 and
	// TLS-ALPN-01 on 127.0.0.1 (Validate only).
	HTTPPort, TLSPort int
}

// pebbleBuild is a Pebble binary and the module directory it was built from
// (for its test config and certificates).
type pebbleBuild struct {
	bin, modDir string
}

// buildPebble builds Pebble from tools/go.mod (cached by go build after the
// first run). The test fails, never skips, when Pebble cannot be built.
func buildPebble(t *testing.T) pebbleBuild {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	toolsMod := filepath.Join(root, "tools", "go.mod")
	if _, err := os.Stat(toolsMod); err != nil {
		t.Fatalf("pebble: no tools module at %s: %v", toolsMod, err)
	}
	bin := filepath.Join(t.TempDir(), "pebble")
	goCmd(t, root, "build", "-modfile="+toolsMod, "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble")
	modDir := strings.TrimSpace(goCmd(t, root, "list", "-modfile="+toolsMod, "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2"))
	return pebbleBuild{bin: bin, modDir: modDir}
}

// startPebble starts Pebble on loopback and free ports until the test
// ends, and waits until its directory answers.
func startPebble(t *testing.T, b pebbleBuild, opts pebbleOptions) *pebble {
	t.Helper()
	modDir, tmp := b.modDir, t.TempDir()
	// Pebble's test config, moved to loopback and free ports, with absolute
	// certificate paths and short Retry-After hints.
	raw, err := os.ReadFile(filepath.Join(modDir, "test", "config", "pebble-config.json"))
	if err != nil {
		t.Fatalf("pebble: reading its test config: %v", err)
	}
	var conf map[string]map[string]any
	if err := json.Unmarshal(raw, &conf); err != nil {
		t.Fatalf("pebble: parsing its test config: %v", err)
	}
	pc := conf["pebble"]
	if pc == nil {
		t.Fatalf("pebble: test config has no \"pebble\" section: %s", raw)
	}
	listen, mgmt := freeAddr(t), freeAddr(t)
	pc["listenAddress"] = listen
	pc["managementListenAddress"] = mgmt
	pc["certificate"] = filepath.Join(modDir, "test", "certs", "localhost", "cert.pem")
	pc["privateKey"] = filepath.Join(modDir, "test", "certs", "localhost", "key.pem")
	pc["retryAfter"] = map[string]int{"authz": 1, "order": 1}
	if opts.Validate {
		pc["httpPort"], pc["tlsPort"] = opts.HTTPPort, opts.TLSPort
	}
	confFile := filepath.Join(tmp, "pebble-config.json")
	if raw, err = json.Marshal(conf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(confFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	p := &pebble{
		dir:    "https://" + listen + "/dir",
		mgmt:   "https://" + mgmt,
		caFile: filepath.Join(modDir, "test", "certs", "pebble.minica.pem"),
		out:    &lockedBuffer{},
		exited: make(chan struct{}),
	}
	caPEM, err := os.ReadFile(p.caFile)
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("pebble: no certificate in %s", p.caFile)
	}
	p.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}

	p.cmd = exec.Command(b.bin, "-config", confFile)
	p.cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",
		"PEBBLE_WFE_NONCEREJECT=0") // no deliberate badNonce retries: faster
	if !opts.Validate {
		p.cmd.Env = append(p.cmd.Env, "PEBBLE_VA_ALWAYS_VALID=1")
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("pebble: start: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.stop)

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := p.client.Get(p.dir)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("pebble exited before serving its directory:\n%s", p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble's directory %s did not answer within 20s (last: %v):\n%s", p.dir, err, p.out)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

// stop kills Pebble by its PID and waits for it to end.
func (p *pebble) stop() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// issuingRoot is the root Pebble signs certificates under (generated at
// its start).
func (p *pebble) issuingRoot(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.client.Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble: fetching its root: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble: /roots/0: %d %q %v", resp.StatusCode, body, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(body) {
		t.Fatalf("pebble: /roots/0 is not PEM: %q", body)
	}
	return pool
}

// TestTLSACME runs its cases one after another: certmagic keeps pending
// challenges per domain name in package state, so two servers in one
// process must not obtain "localhost" at once.
func TestTLSACME(t *testing.T) {
	t.Parallel() // with the files tests
	b := buildPebble(t)
	t.Run("obtains a certificate from Pebble", func(t *testing.T) { testACMEObtains(t, b) })
	t.Run("answers TLS-ALPN-01 on its listener", func(t *testing.T) { testACMEAnswersTLSALPN(t, b) })
	t.Run("replicas share certificates through redis", func(t *testing.T) { testACMEReplicasShare(t, b) })
	t.Run("unreachable CA refuses to start", testACMEUnreachableCA)
}

// testACMEObtains also verifies client certificates on the ACME listener
// (tls.client_ca_file), as callers off loopback present them.
func testACMEObtains(t *testing.T, b pebbleBuild) {
	p := startPebble(t, b, pebbleOptions{})
	roots := p.issuingRoot(t)
	data := t.TempDir()
	clientCA := newTestCA(t, "callers' CA")
	caFile := filepath.Join(data, "clients-ca.pem")
	writeAtomic(t, caFile, clientCA.pem)
	sim := newSimpleStore(t, time.Hour)
	cfg := &config.Config{
		Listen:  "0.0.0.0:0", // off loopback, as the server sees it: callers must authenticate
		Storage: config.Storage{Type: "memory", Path: data},
		TLS: config.TLS{
			Mode:              "acme",
			Domains:           []string{"localhost"},
			CA:                p.dir,
			CARootFile:        p.caFile,
			Email:             "ops@sidekey.test",
			HTTPChallengePort: freePort(t),
			ClientCAFile:      caFile,
		},
		Callers: map[string]*config.Caller{"billing": {CertSubject: "CN=billing,O=Acme", Tenants: []string{"shop"}}},
		Tenants: map[string]*config.Tenant{"shop": simpleTenant(sim, clientSecret)},
	}
	r := start(t, cfg, nil)
	_, sidekeyPort, _ := net.SplitHostPort(strings.TrimPrefix(r.base, "http://"))

	client := localhostClient(roots, net.JoinHostPort("127.0.0.1", sidekeyPort), nil)
	url := "https://" + net.JoinHostPort("localhost", sidekeyPort) + "/_sidekey/healthz"

	// The listener answers once the certificate is obtained.
	var resp *http.Response
	deadline := time.Now().Add(40 * time.Second)
	for {
		var err error
		if resp, err = client.Get(url); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTPS with a Pebble certificate within 40s: %v; server: %v\npebble:\n%s", err, r.stop(), p.out)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: got %d %q; want 200", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol: got %s; want HTTP/2", resp.Proto)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "localhost" {
		t.Errorf("certificate names: got %v; want [localhost]", leaf.DNSNames)
	}

	// The certificate is kept under storage.path/acme.
	var stored []string
	_ = filepath.WalkDir(filepath.Join(data, "acme"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".crt") {
			stored = append(stored, path)
		}
		return nil
	})
	if len(stored) != 1 {
		t.Errorf("certificates under %s/acme: got %v; want one", data, stored)
	}

	// A caller's certificate is verified on the same listener; without
	// one (or a key) the tenant is closed.
	shop := "https://" + net.JoinHostPort("localhost", sidekeyPort) + "/shop/v1/cart/42"
	billing := clientCA.issue(t, dn("O", "Acme", "CN", "billing"))
	for _, tc := range []struct {
		cert *tls.Certificate
		want int
	}{{billing, http.StatusOK}, {nil, http.StatusUnauthorized}} {
		c := localhostClient(roots, net.JoinHostPort("127.0.0.1", sidekeyPort), tc.cert)
		resp, err := c.Get(shop)
		if err != nil {
			t.Fatalf("GET %s (client certificate %v): %v", shop, tc.cert != nil, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s with client certificate %v: %d; want %d", shop, tc.cert != nil, resp.StatusCode, tc.want)
		}
		c.CloseIdleConnections()
	}
	if err := r.stop(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// localhostClient trusts roots and dials addr, sidekey's listener, for
// every https://localhost:PORT URL (the name the ACME certificate is for),
// presenting cert when it is not nil.
func localhostClient(roots *x509.CertPool, addr string, cert *tls.Certificate) *http.Client {
	client := httpsClient(roots)
	tr := client.Transport.(*http.Transport)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	if cert != nil {
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return client
}

// testACMEAnswersTLSALPN has Pebble really validate: its
// HTTP-01 check goes to a port where nothing listens, so the certificate
// can only be won by answering TLS-ALPN-01 on sidekey's own listener before
// the listener serves.
func testACMEAnswersTLSALPN(t *testing.T, b pebbleBuild) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, lnPort, _ := net.SplitHostPort(ln.Addr().String())
	sidekeyPort, _ := strconv.Atoi(lnPort)
	p := startPebble(t, b, pebbleOptions{Validate: true, HTTPPort: freePort(t), TLSPort: sidekeyPort})
	roots := p.issuingRoot(t)
	core, logs := observer.New(zapcore.InfoLevel)
	run := runTLS(t, zap.New(core), &config.Config{TLS: config.TLS{
		Mode:              "acme",
		Domains:           []string{"localhost"},
		CA:                p.dir,
		CARootFile:        p.caFile,
		Email:             "ops@sidekey.test",
		HTTPChallengePort: freePort(t), // not where Pebble looks
	}}, ln)

	client := localhostClient(roots, ln.Addr().String(), nil)
	url := "https://" + net.JoinHostPort("localhost", lnPort) + "/_sidekey/healthz"
	deadline := time.Now().Add(40 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("healthz: got %d; want 200", resp.StatusCode)
			}
			break
		}
		select {
		case runErr := <-run.done:
			t.Fatalf("sidekey did not start: %v\npebble:\n%s", runErr, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTPS with a Pebble certificate within 40s: %v\npebble:\n%s", err, p.out)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	tried := logs.FilterMessage("trying to solve challenge").FilterField(zap.String("challenge_type", "tls-alpn-01"))
	if tried.Len() == 0 {
		t.Error("certmagic logged no TLS-ALPN-01 attempt")
	}
}

func testACMEUnreachableCA(t *testing.T) {
	cfg := &config.Config{TLS: config.TLS{
		Mode:              "acme",
		Domains:           []string{"localhost"},
		CA:                "https://" + freeAddr(t) + "/dir", // nothing listens there
		Email:             "ops@sidekey.test",
		HTTPChallengePort: 1,
	}}
	_, err := runUntilError(t, cfg)
	if !strings.Contains(err.Error(), "localhost") || !strings.Contains(err.Error(), cfg.TLS.CA) {
		t.Errorf("error %q does not name the domain and the CA", err)
	}
}

// goCmd runs the go command in dir and returns its output; it fails the
// test with that output if go fails.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("pebble: go %s failed (is the module proxy reachable?): %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// freeAddr is a loopback address no one listens on (for a moment).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// freePort is a loopback port no one listens on (for a moment).
func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// lockedBuffer is a bytes.Buffer safe for a child process's output.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
