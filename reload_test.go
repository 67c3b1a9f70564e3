package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sidekey/sidekey/internal/testwait"
	"github.com/sidekey/sidekey/server"
)

// TestSecretFileChangedInPlaceIsReloaded: a token_file rewritten in place
// is reloaded like the config file (no SIGHUP), and a broken one (empty)
// is rejected while the previous configuration keeps serving.
func TestSecretFileChangedInPlaceIsReloaded(t *testing.T) {
	var mu sync.Mutex
	var seen string // the token the upstream saw last
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Get("X-Api-Key")
		mu.Unlock()
	}))
	defer api.Close()
	lastSeen := func() string { mu.Lock(); defer mu.Unlock(); return seen }

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	writeFile := func(content string) {
		t.Helper()
		if err := os.WriteFile(tokenFile, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("key-one\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, fmt.Sprintf(`listen: %s
storage: {type: memory}
tenants:
  api:
    provider: static
    token_file: %s
    token_header: X-Api-Key
    api_url: %s
`, ln.Addr(), tokenFile, api.URL))
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := zap.New(zapCoreTo(logs))
	srv, err := server.New(server.Options{Config: cfg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.RunListener(ctx, ln) }()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watchConfig(ctx, watchOptions{Path: path, Config: cfg, Server: srv, Logger: log, Every: 10 * time.Millisecond})
	}()
	defer func() { cancel(); <-served; <-watched }()

	call := func() bool {
		resp, err := http.Get("http://" + ln.Addr().String() + "/api/v1/x")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	if !call() || lastSeen() != "key-one" {
		t.Fatalf("before the change the upstream saw %q; want key-one", lastSeen())
	}
	writeFile("key-two\n")
	testwait.For(t, "the rewritten token_file to be served", func() bool { return call() && lastSeen() == "key-two" })

	writeFile("") // broken: an empty secret file
	testwait.For(t, "the broken token_file to be rejected", func() bool {
		return strings.Contains(logs.String(), "reload rejected")
	})
	if !call() || lastSeen() != "key-two" {
		t.Errorf("after a broken token_file the upstream saw %q; want the previous key-two", lastSeen())
	}
	if strings.Contains(logs.String(), "key-two") || strings.Contains(logs.String(), "key-one") {
		t.Error("a token reached the log")
	}
}

// zapCoreTo writes JSON log lines at every level to w.
func zapCoreTo(w *syncBuffer) zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(w), zapcore.DebugLevel)
}
