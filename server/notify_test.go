package server_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/internal/testwait"
	"github.com/sidekey/sidekey/providers/providertest"
	"github.com/sidekey/sidekey/server"
)

// webhookSecret is a valid Standard Webhooks secret for tests.
const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// hookReceiver records every webhook event it is sent.
type hookReceiver struct {
	url string

	mu     sync.Mutex // guards events
	events []hookEvent
}

// hookEvent is one received request.
type hookEvent struct {
	ID, Type, Tenant, State, ConnectURL string
	Raw                                 string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Type string `json:"type"`
			Data struct {
				Tenant     string `json:"tenant"`
				State      string `json:"state"`
				ConnectURL string `json:"connect_url"`
			} `json:"data"`
		}
		_ = json.Unmarshal(b, &body)
		h.mu.Lock()
		h.events = append(h.events, hookEvent{ID: r.Header.Get("webhook-id"), Type: body.Type, Tenant: body.Data.Tenant,
			State: body.Data.State, ConnectURL: body.Data.ConnectURL, Raw: string(b)})
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hooks/sidekey"
	return h
}

// of returns the events of type typ received for tenant.
func (h *hookReceiver) of(tenant, typ string) []hookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookEvent
	for _, e := range h.events {
		if e.Tenant == tenant && e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// all returns every event received.
func (h *hookReceiver) all() []hookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookEvent(nil), h.events...)
}

// startNotifying runs a Server for cfg on 127.0.0.1:0 that compares tenant
// states for webhooks every 20ms.
func startNotifying(t *testing.T, cfg *config.Config) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.PublicURL = ln.Addr().String(), "http://"+ln.Addr().String()
	if cfg.Storage.Type == "" {
		cfg.Storage = config.Storage{Type: "memory"}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return serve(t, server.Options{Config: cfg, Version: "test", NotifyInterval: 20 * time.Millisecond}, ln)
}

// webhookStatus reads /_sidekey/status's webhooks section.
func webhookStatus(t *testing.T, base string) (st struct {
	Deliveries map[string]uint64 `json:"deliveries"`
	Events     map[string]uint64 `json:"events"`
	LastError  string            `json:"last_error"`
}) {
	t.Helper()
	var page struct {
		Webhooks *struct {
			Deliveries map[string]uint64 `json:"deliveries"`
			Events     map[string]uint64 `json:"events"`
			LastError  string            `json:"last_error"`
		} `json:"webhooks"`
	}
	if err := json.Unmarshal([]byte(get(t, base+"/_sidekey/status").body), &page); err != nil || page.Webhooks == nil {
		t.Fatalf("status has no webhooks section (%v)", err)
	}
	st.Deliveries, st.Events, st.LastError = page.Webhooks.Deliveries, page.Webhooks.Events, page.Webhooks.LastError
	return st
}

// decided counts the events a replica sent or left to another.
func decided(t *testing.T, base string) uint64 {
	ev := webhookStatus(t, base).Events
	return ev["sent"] + ev["duplicate"] + ev["ignored"]
}

// TestWebhooksFromTwoReplicasArriveOnce: two replicas share a real Redis;
// both see a consent tenant need consent, then connect, then disconnect,
// and the receiver gets each of those once.
func TestWebhooksFromTwoReplicasArriveOnce(t *testing.T) {
	rdb := startRedis(t)
	keyFile := filepath.Join(t.TempDir(), "store-key")
	storeKey := make([]byte, 32)
	_, _ = rand.Read(storeKey)
	writeAtomic(t, keyFile, []byte(hex.EncodeToString(storeKey)))
	gen := providertest.NewOAuth2(providertest.SimOptions{ClientID: clientID, ClientSecret: clientSecret})
	t.Cleanup(gen.Close)
	hooks := newHookReceiver(t)

	replica := func() *running {
		return startNotifying(t, &config.Config{
			Storage: config.Storage{Type: "redis", Path: t.TempDir(), KeyFile: keyFile, Redis: config.Redis{Addr: rdb.addr}},
			Notify:  config.Notify{Webhooks: []config.Webhook{{URL: hooks.url, Secret: webhookSecret}}},
			Tenants: map[string]*config.Tenant{"shop": {Provider: "oauth2", Grant: "authorization_code",
				ClientID: clientID, ClientSecret: clientSecret, AuthURL: gen.AuthURL(), TokenURL: gen.TokenURL(), APIURL: gen.APIURL()}},
		})
	}
	a, b := replica(), replica()

	// Both replicas are asked for the tenant and both find it unconnected.
	for _, r := range []*running{a, b} {
		if got := get(t, r.base+"/shop/v1/items"); got.status != http.StatusServiceUnavailable {
			t.Fatalf("before consent: %d %s", got.status, got.body)
		}
	}
	testwait.For(t, "both replicas to decide on consent_required", func() bool { return decided(t, a.base)+decided(t, b.base) == 2 })
	testwait.For(t, "the consent_required event", func() bool { return len(hooks.of("shop", "tenant.consent_required")) >= 1 })

	// Connected on A; B picks the token up from the store.
	cb := callbackURL(t, a.base, "shop")
	if done := do(t, "GET", cb, nil, map[string]string{"Accept": "application/json"}); done.status != 200 {
		t.Fatalf("callback: %d %s", done.status, done.body)
	}
	for _, r := range []*running{a, b} {
		if got := get(t, r.base+"/shop/v1/items"); got.status != 200 {
			t.Fatalf("after consent: %d %s", got.status, got.body)
		}
	}
	testwait.For(t, "both replicas to decide on connected", func() bool {
		return decided(t, a.base)+decided(t, b.base) == 4
	})
	testwait.For(t, "the connected event", func() bool { return len(hooks.of("shop", "tenant.connected")) >= 1 })

	if got := do(t, "DELETE", b.base+"/_sidekey/admin/connections/shop", nil, nil); got.status != 200 {
		t.Fatalf("disconnect: %d %s", got.status, got.body)
	}
	testwait.For(t, "the disconnected event", func() bool { return len(hooks.of("shop", "tenant.disconnected")) >= 1 })
	// Delivery is ordered per endpoint: the disconnect went out after
	// anything still queued for the earlier events.
	testwait.For(t, "every delivery to finish", func() bool {
		return webhookStatus(t, a.base).Deliveries["success"]+webhookStatus(t, b.base).Deliveries["success"] == uint64(len(hooks.all()))
	})

	// After the disconnect A's own watch sees the tenant need consent: that
	// is no news once B's tenant.disconnected is claimed, but A may claim
	// it first; then the receiver is told both, in that order.
	if got := hooks.of("shop", "tenant.consent_required"); len(got) == 2 {
		if all := hooks.all(); all[len(all)-1].Type != "tenant.disconnected" {
			t.Errorf("a second tenant.consent_required came after tenant.disconnected: %+v", all)
		}
	}
	ids := map[string]bool{}
	for _, e := range hooks.all() {
		if ids[e.ID] {
			t.Errorf("webhook-id %s delivered twice", e.ID)
		}
		ids[e.ID] = true
	}
	for _, typ := range []string{"tenant.consent_required", "tenant.connected", "tenant.disconnected"} {
		got := hooks.of("shop", typ)
		if typ == "tenant.consent_required" && len(got) == 2 {
			got = got[:1]
		}
		if len(got) != 1 {
			t.Errorf("%s: received %d times; want once across both replicas: %+v", typ, len(got), hooks.all())
			continue
		}
		if got[0].ConnectURL == "" || !strings.HasPrefix(got[0].ID, "msg_") {
			t.Errorf("%s: %+v", typ, got[0])
		}
	}
	for _, e := range hooks.all() {
		for _, secret := range []string{clientSecret, webhookSecret, "access_token", "refresh_token"} {
			if strings.Contains(e.Raw, secret) {
				t.Errorf("an event body contains %q: %s", secret, e.Raw)
			}
		}
	}
}

// TestWebhookRefreshFailingNamesTheErrorNotTheSecret: a tenant whose
// client secret the platform rejects is announced as refresh_failing, with
// the platform's error code and without the secret.
func TestWebhookRefreshFailingNamesTheErrorNotTheSecret(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	hooks := newHookReceiver(t)
	const wrong = "wrong-secret-do-not-leak-77"
	r := startNotifying(t, &config.Config{
		Notify:  config.Notify{Webhooks: []config.Webhook{{URL: hooks.url, Secret: webhookSecret, Events: []string{"tenant.refresh_failing"}}}},
		Tenants: map[string]*config.Tenant{"eu-simple": simpleTenant(sim, wrong)},
	})
	if got := get(t, r.base+"/eu-simple/v1/cart/1"); got.status != http.StatusServiceUnavailable {
		t.Fatalf("with a rejected secret: %d %s", got.status, got.body)
	}
	testwait.For(t, "the refresh_failing event", func() bool { return len(hooks.of("eu-simple", "tenant.refresh_failing")) == 1 })
	e := hooks.of("eu-simple", "tenant.refresh_failing")[0]
	if !strings.Contains(e.Raw, "invalid_client") || e.State != "error" {
		t.Errorf("event %s: want state error and the platform's invalid_client", e.Raw)
	}
	if strings.Contains(e.Raw, wrong) || strings.Contains(e.Raw, clientSecret) {
		t.Errorf("the event carries a secret: %s", e.Raw)
	}
}
