package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidekey/sidekey/providers/providertest"
)

// TestRelativePathsFollowTheConfigFile: a relative storage.path is relative
// to the config file, so `sidekey connect`, `check` and `serve` run from
// different working directories use the same store: the tenant connected
// by one is served by the other without a new consent.
func TestRelativePathsFollowTheConfigFile(t *testing.T) {
	sim := providertest.NewStoreHippo(providertest.SimOptions{ClientID: "cli", ClientSecret: "cli-secret"})
	defer sim.Close()
	confDir, connectDir, serveDir := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(confDir, "hippo-secret"), []byte("cli-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	path := filepath.Join(confDir, "sidekey.yaml")
	cfg := fmt.Sprintf(`listen: %s
storage: {type: file, path: data}
tenants:
  hippo:
    provider: storehippo
    store: acme
    client_id: cli
    client_secret_file: hippo-secret
    scopes: [read_products]
    auth_url: %s
    token_url: %s
    api_url: %s
`, addr, sim.AuthURL(), sim.TokenURL(), sim.APIURL())
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Chdir(connectDir)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", path}, &stdout, &stderr); err != nil {
		t.Fatalf("check from another directory: %v", err)
	}
	connectByCLI(t, path, "hippo")
	if _, err := os.Stat(filepath.Join(connectDir, "data")); err == nil {
		t.Error("connect wrote a store in its working directory")
	}
	if _, err := os.Stat(filepath.Join(confDir, "data")); err != nil {
		t.Errorf("no store beside the config file: %v", err)
	}

	t.Chdir(serveDir)
	c := startChild(t, path, addr, io.Discard)
	resp, err := http.Get(c.base + "/hippo/entity/ms.products")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("serve from another directory: %d %s; want 200 without a new consent", resp.StatusCode, body)
	}
}

// connectByCLI runs `sidekey connect TENANT` and approves the consent URL it
// prints, as a person's browser would.
func connectByCLI(t *testing.T, path, tenant string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		err := run(ctx, []string{"connect", tenant, "--config", path}, pw, &stderr)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		if strings.HasPrefix(line, "http") {
			resp, err := http.Get(line)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("consent ended with %d", resp.StatusCode)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("connect: %v\n%s", err, stderr.String())
	}
}
