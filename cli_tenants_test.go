package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidekey/sidekey/providers/providertest"
)

// TestTenantsListShowsNeverConnectedAsConsentRequired (issue 16): a
// consent tenant nobody connected is consent_required in `tenants list`
// and `tenants show`, and `--state consent_required` finds it, so the
// stores someone must connect are never missed.
func TestTenantsListShowsNeverConnectedAsConsentRequired(t *testing.T) {
	sim := providertest.NewStoreHippo(providertest.SimOptions{ClientID: "cli", ClientSecret: "cli-secret"})
	defer sim.Close()
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
`, freeAddr(t), filepath.Join(t.TempDir(), "data"), sim.AuthURL(), sim.TokenURL(), sim.APIURL()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, args := range [][]string{
		{"tenants", "list", "--config", path},
		{"tenants", "list", "--state", "consent_required", "--config", path},
		{"tenants", "show", "hippo", "--config", path},
	} {
		var out, stderr bytes.Buffer
		if err := run(ctx, args, &out, &stderr); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		if !strings.Contains(out.String(), "hippo") || !strings.Contains(out.String(), "consent_required") ||
			strings.Contains(out.String(), "connected ") || strings.Contains(out.String(), `"connected"`) {
			t.Errorf("%s:\n%s\nwant hippo consent_required", strings.Join(args, " "), out.String())
		}
	}
}
