package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidekey/sidekey/server"
)

// These tests drive sidekey's legacy listeners with clients nobody here
// wrote — the SCAYLE Storefront SDK from npm, curl and Python's urllib —
// configured only as an app would be: a host, or HTTPS_PROXY, and a CA
// file. make test installs them (scripts/install-deps.sh).

// clientEnv is the test process's environment without proxy settings,
// plus extra.
func clientEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(name) {
		case "http_proxy", "https_proxy", "all_proxy", "no_proxy", "ssl_cert_file", "curl_ca_bundle", "node_extra_ca_certs":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// run runs name with args and env, failing the test with its output when
// it fails, and returns its standard output.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", name, err, out, stderr.String())
	}
	return string(out)
}

// writeCA writes the server's local CA certificate where a client can read it.
func (s *legacyServer) writeCA(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sidekey-ca.pem")
	if err := os.WriteFile(path, s.caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// storefrontSDK returns the path of the installed SDK module, installing it
// when it is missing.
func storefrontSDK(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../.cache/npm/node_modules/@scayle/storefront-api")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		run(t, clientEnv(), "../scripts/install-node-deps.sh")
	}
	return dir
}

func TestStorefrontSDKOnATenantTLSListener(t *testing.T) {
	sdk := storefrontSDK(t)
	sim := newSimpleStore(t, time.Hour)
	cfg := legacyConfig(sim)
	// The simulator's echo route answers with what it received.
	cfg.Tenants["simple"].APIURL = sim.APIURL() + "/v1/echo"
	s := startLegacy(t, cfg, nil, server.TenantListenKey("simple"), server.ForwardProxyKey)
	out := run(t, clientEnv(
		"SDK_MODULE="+sdk,
		"SIDEKEY_HOST="+s.addr[server.TenantListenKey("simple")], // a host, no path prefix
		"NODE_EXTRA_CA_CERTS="+s.writeCA(t),
	), "node", "testdata/storefront-sdk.cjs")
	var echo struct{ Method, Path, Query string }
	if err := json.Unmarshal([]byte(out), &echo); err != nil {
		t.Fatalf("SDK output %q: %v", out, err)
	}
	if echo.Method != "GET" || echo.Path != "/v1/echo/v1/brands/7" || echo.Query != "shopId=1001" {
		t.Errorf("the API saw %+v; want GET /v1/echo/v1/brands/7?shopId=1001", echo)
	}
	if got := sim.LastAPIRequest().Header.Get("Authorization"); !strings.HasPrefix(got, "Bearer ") {
		t.Errorf("the API got Authorization %q; want the tenant's token", got)
	}
}

func TestCurlAndPythonThroughHTTPSProxy(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	s := startLegacy(t, legacyConfig(sim), nil, server.TenantListenKey("simple"), server.ForwardProxyKey)
	ca := s.writeCA(t)
	proxyURL := "http://" + s.addr[server.ForwardProxyKey]
	target := "https://" + interceptedHost + "/v1/cart/42"
	clients := []struct {
		name string   // the client
		env  []string // how the app is configured
		args []string // the command
	}{
		{"curl", []string{"HTTPS_PROXY=" + proxyURL, "CURL_CA_BUNDLE=" + ca},
			[]string{"curl", "-sS", "--fail-with-body", target}},
		{"python urllib", []string{"HTTPS_PROXY=" + proxyURL, "SSL_CERT_FILE=" + ca},
			[]string{"python3", "-c", "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())", target}},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			out := run(t, clientEnv(c.env...), c.args[0], c.args[1:]...)
			var got cart
			if err := json.Unmarshal([]byte(out), &got); err != nil || got.ID != "42" {
				t.Fatalf("%s got %q; want cart 42", c.name, out)
			}
			if uri := sim.LastAPIRequest().RequestURI; uri != "/v1/cart/42" {
				t.Errorf("the API saw %q; want /v1/cart/42", uri)
			}
		})
	}
	t.Run("curl to a host no tenant intercepts", func(t *testing.T) {
		cmd := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_connect}", "https://evil.example/")
		cmd.Env = clientEnv("HTTPS_PROXY="+proxyURL, "CURL_CA_BUNDLE="+ca)
		out, err := cmd.Output()
		if err == nil || strings.TrimSpace(string(out)) != "403" {
			t.Errorf("curl through the proxy to evil.example: CONNECT answered %q (err %v); want 403", out, err)
		}
	})
}
