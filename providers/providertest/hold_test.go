package providertest

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sidekey/sidekey/internal/testwait"
)

// refreshRequest is a refresh_token grant for rt at o's token endpoint.
func refreshRequest(ctx context.Context, o *OAuth2, rt string) *http.Request {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("sim-client", "sim-secret")
	return req
}

// sendRefresh sends refreshRequest(ctx, o, rt) and reports its error.
func sendRefresh(ctx context.Context, o *OAuth2, rt string) <-chan error {
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(refreshRequest(ctx, o, rt))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	return errc
}

func TestHeldTokenRequestWaitsAndADepartedOneIsNeverProcessed(t *testing.T) {
	o := NewOAuth2(SimOptions{RefreshToken: "rt-1", RotateRefreshTokens: true})
	defer o.Close()

	release := o.HoldTokenRequests()
	ctx, cancel := context.WithCancel(context.Background())
	errc := sendRefresh(ctx, o, "rt-1")
	// The request reaches the endpoint and is held there.
	testwait.For(t, "the request to be held", func() bool { return o.TokenRequestsHeld() == 1 })
	cancel() // the client goes away while held
	if err := <-errc; err == nil {
		t.Fatal("a cancelled request got an answer")
	}
	testwait.For(t, "the held request to be dropped", func() bool { return o.TokenRequestsDropped() == 1 })
	release()
	if !o.ValidRefreshToken("rt-1") || o.RefreshRequests() != 0 {
		t.Fatalf("the dropped request was processed: rt-1 valid %v, %d refreshes", o.ValidRefreshToken("rt-1"), o.RefreshRequests())
	}
	// After release, requests are processed again.
	status, body := postToken(t, o.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt-1"}}, false, "sim-client", "sim-secret")
	if status != 200 || o.RefreshReuse() != 0 {
		t.Errorf("rt-1 after release: %d %v, reuse %d; want 200 and no reuse", status, body, o.RefreshReuse())
	}
}

func TestTokenResponseDelayRotatesBeforeAnswering(t *testing.T) {
	o := NewOAuth2(SimOptions{RefreshToken: "rt-1", RotateRefreshTokens: true})
	defer o.Close()
	o.SetTokenResponseDelay(time.Hour) // ended by Close at the latest
	ctx, cancel := context.WithCancel(context.Background())
	errc := sendRefresh(ctx, o, "rt-1")
	// The platform rotates rt-1 while the answer is still on its way.
	for o.ValidRefreshToken("rt-1") {
		select {
		case err := <-errc:
			t.Fatalf("answered before the delay: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the delayed answer arrived")
	}
	if o.LatestTokenUsed() {
		t.Error("LatestTokenUsed before any API request")
	}
}

func TestLatestTokenUsed(t *testing.T) {
	o := NewOAuth2(SimOptions{})
	defer o.Close()
	if !o.LatestTokenUsed() {
		t.Error("LatestTokenUsed = false before any token was issued")
	}
	status, body := postToken(t, o.TokenURL(), url.Values{"grant_type": {"client_credentials"}}, false, "sim-client", "sim-secret")
	access, _ := body["access_token"].(string)
	if status != 200 || access == "" {
		t.Fatalf("token: %d %v", status, body)
	}
	if o.LatestTokenUsed() {
		t.Error("LatestTokenUsed = true before the token reached the API")
	}
	get(t, o.APIURL()+"/v1/items", map[string]string{"Authorization": "Bearer " + access})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !o.WaitLatestTokenUsed(ctx) {
		t.Error("LatestTokenUsed = false after an API request with the token")
	}
}
