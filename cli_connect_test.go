package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidekey/sidekey/providers/providertest"
)

// TestConnectWaitsForTheConsent runs `sidekey connect` with no sidekey
// running: it starts one for the duration, prints the consent URL, and
// returns once a person (here: the test following the URL) approved.
// `tenants list` then shows the tenant connected.
func TestConnectWaitsForTheConsent(t *testing.T) {
	sim := providertest.NewStoreHippo(providertest.SimOptions{ClientID: "cli", ClientSecret: "cli-secret"})
	defer sim.Close()
	dir := t.TempDir()
	path := writeConfig(t, fmt.Sprintf(`listen: %s
storage: {type: file, path: %s}
tenants:
  hippo:
    provider: storehippo
    store: acme
    client_id: cli
    client_secret: cli-secret
    scopes: [read_products]
    auth_url: %s
    token_url: %s
    api_url: %s
`, freeAddr(t), filepath.Join(dir, "data"), sim.AuthURL(), sim.TokenURL(), sim.APIURL()))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		err := run(ctx, []string{"connect", "hippo", "--config", path}, pw, &stderr)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	lines := bufio.NewScanner(pr)
	var out strings.Builder
	approved := false
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		out.WriteString(line + "\n")
		if !approved && strings.HasPrefix(line, "http") {
			resp, err := http.Get(line) // the "browser": consent page → callback
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("consent ended with %d", resp.StatusCode)
			}
			approved = true
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("connect: %v\n%s\n%s", err, out.String(), stderr.String())
	}
	if !strings.Contains(out.String(), "hippo is connected.") {
		t.Errorf("output:\n%s", out.String())
	}

	var listOut bytes.Buffer
	if err := run(ctx, []string{"tenants", "list", "--config", path}, &listOut, &stderr); err != nil {
		t.Fatalf("tenants list: %v", err)
	}
	if !strings.Contains(listOut.String(), "hippo") || !strings.Contains(listOut.String(), "connected") {
		t.Errorf("tenants list:\n%s", listOut.String())
	}
	// StoreHippo states no refresh-token expiry: the last column says so.
	rows := strings.Split(strings.TrimSpace(listOut.String()), "\n")
	if !strings.HasSuffix(rows[0], " REFRESH EXPIRY") || !strings.HasSuffix(rows[len(rows)-1], " -") {
		t.Errorf("tenants list columns:\n%s", listOut.String())
	}
}
