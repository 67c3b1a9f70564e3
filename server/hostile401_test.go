package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/internal/testwait"
)

// TestOneCallersUnauthorizedPathCannotTakeTheTenantOffline (invariant 7):
// the platform answers 401 on one path whatever the token. A caller
// hammering that path while 16 others use other paths costs at most one
// extra token request, and the others never see anything but 200.
func TestOneCallersUnauthorizedPathCannotTakeTheTenantOffline(t *testing.T) {
	sim := newSimpleStore(t, time.Hour)
	tokens := sync.Map{} // distinct bearer tokens the API saw
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens.Store(r.Header.Get("Authorization"), true)
		if r.URL.Path == "/admin/secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(api.Close)
	shop := simpleTenant(sim, clientSecret)
	shop.APIURL = api.URL
	r := start(t, &config.Config{Tenants: map[string]*config.Tenant{"shop": shop}}, nil)

	stop := make(chan struct{})
	var hostile, others, failed atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	hostileDone := make(chan struct{})
	go func() { // the hostile caller, until the others are done
		defer close(hostileDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			fetchOK(client, r.base+"/shop/admin/secret")
			hostile.Add(1)
		}
	}()
	testwait.For(t, "the hostile caller to get going", func() bool { return hostile.Load() >= 20 })
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				if !fetchOK(client, r.base+"/shop/v1/products") {
					failed.Add(1)
				}
				others.Add(1)
			}
		})
	}
	wg.Wait()
	testwait.For(t, "50 hostile requests", func() bool { return hostile.Load() >= 50 })
	close(stop)
	<-hostileDone

	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests on healthy paths failed; want 0", n, others.Load())
	}
	var distinct int64
	tokens.Range(func(any, any) bool { distinct++; return true })
	if n := sim.TokenRequests(); n > 2 || n > 1+distinct {
		t.Errorf("%d token requests for %d hostile requests (%d distinct tokens); want at most 2: one token dropped once",
			n, hostile.Load(), distinct)
	}
	var status struct {
		Tenants map[string]struct {
			Failures  int
			LastError string `json:"last_error"`
		}
	}
	if got := get(t, r.base+"/_sidekey/status"); json.Unmarshal([]byte(got.body), &status) != nil {
		t.Fatalf("status: %d %s", got.status, got.body)
	}
	if st := status.Tenants["shop"]; st.Failures != 0 || st.LastError != "" {
		t.Errorf("status %+v; want no failure counted", st)
	}
}
