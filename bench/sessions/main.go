// Command sessions measures per-customer sessions at scale: N sessions
// stored, A of them active (sessions.max_active = A). It reports the
// process's memory, the latency of redeeming a login's ticket, and the
// latency of proxied requests for a loaded session and for one loaded from
// the store.
//
// L customers log in for real (sidekey's login → the SCAYLE simulator →
// the callback → redeem). The other N-L sessions are written straight into
// the store in sidekey's layout (record and token under the SHA-256 of a
// fresh handle, sealed), each holding the token of one real login, so that
// the simulated API accepts them; no refresh happens during the run (1-hour
// tokens). sidekey, the simulator and the load run in this one process on
// loopback, over a sealed memory store: it keeps all N sealed records in
// process memory (a Redis store keeps them out of it), so the RSS figures
// are upper bounds.
//
//	go run ./bench/sessions -n 1000000 -active 50000
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/sidekey/sidekey/bench/internal/benchutil"
	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/providers/providertest"
	"github.com/sidekey/sidekey/server"
	"github.com/sidekey/sidekey/store"
)

const returnTo = "https://shop.example/account"

func main() {
	n := flag.Int("n", 1000000, "sessions in the store")
	active := flag.Int("active", 50000, "sessions.max_active (and the size of the active set)")
	logins := flag.Int("logins", 2000, "real logins (each redeemed; their latency is the redeem figure)")
	requests := flag.Int("requests", 100000, "requests to loaded sessions for the latency figures")
	conc := flag.Int("c", 16, "concurrent clients")
	flag.Parse()
	if err := run(*n, *active, *logins, *requests, *conc); err != nil {
		log.Fatal(err)
	}
}

func run(n, active, logins, requests, conc int) error {
	sim := providertest.NewSCAYLE(providertest.SCAYLEOptions{
		SimOptions: providertest.SimOptions{ClientID: "bench", ClientSecret: "bench-secret", TokenLifetime: time.Hour},
	})
	defer sim.Close()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	st, err := store.Seal(store.NewMemory(), key)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	off := false
	cfg := &config.Config{
		Listen:  ln.Addr().String(),
		Storage: config.Storage{Type: "memory"},
		Log:     config.Log{Level: "error", AccessLog: &off},
		Tenants: map[string]*config.Tenant{"shop": {Provider: "scayle", TenantSpace: "acme", ShopID: sim.ShopID(), IdpKey: "sim-idp",
			ClientID: "bench", ClientSecret: "bench-secret", ShopSecret: "sim-shop-secret",
			AuthURL: sim.AuthURL(), TokenURL: sim.TokenURL(), APIURL: sim.APIURL(),
			Sessions: &config.Sessions{ReturnTo: []string{returnTo}, MaxActive: active}}},
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	srv, err := server.New(server.Options{Config: cfg, Store: st})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.RunListener(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}}
	browser := &http.Client{Transport: client.Transport, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == "shop.example" {
			return http.ErrUseLastResponse
		}
		return nil
	}}

	runtime.GC()
	before := benchutil.Sample()

	// Real logins, each redeemed.
	handles := make([]string, max(n, logins))
	var mu sync.Mutex
	var redeemed []time.Duration
	if err := benchutil.Parallel(logins, conc, func(i int) error {
		resp, err := browser.Get(base + "/_sidekey/login/shop?return_to=" + url.QueryEscape(returnTo))
		if err != nil {
			return err
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		ticket := loc.Query().Get("sidekey_ticket")
		if ticket == "" {
			return fmt.Errorf("login %d: %s, no ticket", i, resp.Status)
		}
		start := time.Now()
		resp, err = client.Post(base+"/_sidekey/sessions/redeem", "application/json", strings.NewReader(`{"ticket":"`+ticket+`"}`))
		if err != nil {
			return err
		}
		var out struct{ Session string }
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		d := time.Since(start)
		if err != nil || out.Session == "" {
			return fmt.Errorf("redeem %d: %s", i, resp.Status)
		}
		mu.Lock()
		redeemed = append(redeemed, d)
		mu.Unlock()
		handles[i] = out.Session
		return nil
	}); err != nil {
		return err
	}

	// The other sessions, written in sidekey's store layout.
	tokens := make([][]byte, logins)
	for i := range logins {
		if tokens[i], err = st.Load(ctx, "session-tokens/shop/"+hashOf(handles[i])); err != nil {
			return err
		}
	}
	t0 := time.Now()
	now := time.Now().UTC()
	record, _ := json.Marshal(map[string]any{"tenant": "shop", "created": now, "last_used": now})
	if err := benchutil.Parallel(n-logins, conc, func(j int) error {
		i := logins + j
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		handles[i] = base64.RawURLEncoding.EncodeToString(b)
		h := hashOf(handles[i])
		if err := st.Store(ctx, "session-tokens/shop/"+h, tokens[i%logins]); err != nil {
			return err
		}
		return st.Store(ctx, "sessions/shop/"+h, record)
	}); err != nil {
		return err
	}
	seeded := time.Since(t0)
	runtime.GC()
	stored := benchutil.Sample()

	get := func(i int) (time.Duration, error) {
		req, _ := http.NewRequest("GET", base+"/shop/v1/customers/me", nil)
		req.Header.Set("Sidekey-Session", handles[i])
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("session %d: %s", i, resp.Status)
		}
		return time.Since(start), nil
	}
	// The active set: sessions spread over the whole store, each loaded
	// from it on its first request.
	stride := max(n/active, 1)
	activeIdx := func(k int) int { return (k * stride) % n }
	tokensBefore := sim.TokenRequests()
	first, err := benchutil.Timed(active, conc, func(k int) (time.Duration, error) { return get(activeIdx(k)) })
	if err != nil {
		return err
	}
	runtime.GC()
	warm := benchutil.Sample()

	loaded, err := benchutil.Timed(requests, conc, func(i int) (time.Duration, error) { return get(activeIdx((i * 7919) % active)) })
	if err != nil {
		return err
	}
	extraTokens := sim.TokenRequests() - tokensBefore
	runtime.GC()
	end := benchutil.Sample()

	var out bytes.Buffer
	fmt.Fprintf(&out, "sessions: %d stored (%d real logins), sessions.max_active %d, %d clients, %s/%s, %d cores\n\n", n, logins, active, conc, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintf(&out, "| figure | value |\n| --- | --- |\n")
	fmt.Fprintf(&out, "| redeem a ticket (%d real logins) | p50 %s, p99 %s |\n", logins, benchutil.Percentile(redeemed, 50), benchutil.Percentile(redeemed, 99))
	fmt.Fprintf(&out, "| write %d more sessions into the store | %.1f s |\n", n-logins, seeded.Seconds())
	fmt.Fprintf(&out, "| RSS added by %d stored sessions (sealed memory store) | %.1f MiB (%.0f B each) |\n", n, benchutil.MiB(stored.RSS-before.RSS), float64(stored.RSS-before.RSS)/float64(n))
	fmt.Fprintf(&out, "| RSS added by %d active sessions | %.1f MiB (%.1f KiB each) |\n", active, benchutil.MiB(warm.RSS-stored.RSS), float64(warm.RSS-stored.RSS)/1024/float64(active))
	fmt.Fprintf(&out, "| first request of a session, loaded from the store | p50 %s, p99 %s |\n", benchutil.Percentile(first, 50), benchutil.Percentile(first, 99))
	fmt.Fprintf(&out, "| request for a loaded session | p50 %s, p99 %s, p99.9 %s |\n", benchutil.Percentile(loaded, 50), benchutil.Percentile(loaded, 99), benchutil.Percentile(loaded, 99.9))
	fmt.Fprintf(&out, "| token requests to the platform during the proxied load | %d |\n", extraTokens)
	fmt.Fprintf(&out, "| Go heap in use at the end | %.1f MiB |\n", benchutil.MiB(end.Heap))
	fmt.Fprintf(&out, "| peak RSS (VmHWM) | %.1f MiB |\n", benchutil.MiB(end.HWM))
	_, err = os.Stdout.Write(out.Bytes())
	return err
}

// hashOf is a handle's name in the store: its SHA-256, hex.
func hashOf(handle string) string {
	sum := sha256.Sum256([]byte(handle))
	return hex.EncodeToString(sum[:])
}
