package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
	"github.com/sidekey/sidekey/server"
)

// proxy is sidekey running in-process on a loopback listener.
type proxy struct {
	base   string // http://127.0.0.1:port
	cancel context.CancelFunc
	done   chan error
}

// tenantName is the i-th benchmark tenant.
func tenantName(i int) string { return fmt.Sprintf("t%05d", i) }

// startSidekey runs sidekey with n SimpleStore tenants t00000… whose token
// endpoint and API are sim, memory storage, no logs.
func startSidekey(sim *providertest.SimpleStore, n int) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	off := false
	cfg := &config.Config{
		Listen:  ln.Addr().String(),
		Storage: config.Storage{Type: "memory"},
		Log:     config.Log{Level: "warn", AccessLog: &off},
		Tenants: make(map[string]*config.Tenant, n),
	}
	for i := range n {
		cfg.Tenants[tenantName(i)] = &config.Tenant{
			Provider:     "simplestore",
			ClientID:     "sim-client",
			ClientSecret: "sim-secret",
			TokenURL:     sim.TokenURL(),
			APIURL:       sim.APIURL(),
		}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("config: %w", err)
	}
	srv, err := server.New(server.Options{Config: cfg})
	if err != nil {
		ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxy{base: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- srv.RunListener(ctx, ln) }()
	return p, nil
}

// stop shuts sidekey down and waits for it.
func (p *proxy) stop() error {
	p.cancel()
	select {
	case err := <-p.done:
		return err
	case <-time.After(20 * time.Second):
		return errors.New("sidekey did not stop within 20s")
	}
}

// url is the proxied URL of a cart for tenant i.
func (p *proxy) url(i int) string { return p.base + "/" + tenantName(i) + "/v1/cart/42" }

// urls lists url(i) for every tenant.
func (p *proxy) urls(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = p.url(i)
	}
	return out
}

// warm makes one request per tenant (at most 64 at a time), so that each
// has its token.
func warm(ctx context.Context, client *http.Client, p *proxy, n int) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, 64)
	)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := get(ctx, client, p.url(i)); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// get makes one request and fails on any status but 200.
func get(ctx context.Context, client *http.Client, url string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_ = drainClose(resp)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: status %d (%s)", url, resp.StatusCode, resp.Header.Get("X-Sidekey-Error"))
	}
	return time.Since(start), nil
}

// pidSelf is this process's id.
func pidSelf() int { return os.Getpid() }
