package providertest

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// sim is what the tests need from either simulator.
type sim interface {
	URL() string
	TokenURL() string
	Close()
}

// fetchToken runs a client_credentials grant with credentials in the body.
func fetchToken(t *testing.T, s sim, id, secret string) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(s.TokenURL(), url.Values{
		"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token response: %v", err)
	}
	return resp.StatusCode, body
}

func mustToken(t *testing.T, s sim) string {
	t.Helper()
	code, body := fetchToken(t, s, "sim-client", "sim-secret")
	tok, _ := body["access_token"].(string)
	if code != http.StatusOK || tok == "" {
		t.Fatalf("token request: %d %v", code, body)
	}
	return tok
}

// call sends an API request with a bearer token ("" for none).
func call(t *testing.T, method, u, token, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestSimpleStoreTokenEndpoint(t *testing.T) {
	s := NewSimpleStore(SimOptions{TokenLifetime: 90 * time.Second})
	defer s.Close()
	code, body := fetchToken(t, s, "sim-client", "sim-secret")
	if code != http.StatusOK || body["expiries_in"] != float64(90) || body["token_type"] != "Bearer" {
		t.Errorf("token response %d %v; want 200 with expiries_in 90", code, body)
	}
	if _, ok := body["expires_in"]; ok {
		t.Error("expires_in present; SimpleStore's default spelling is expiries_in")
	}
	code, body = fetchToken(t, s, "sim-client", "wrong")
	if code != http.StatusBadRequest || body["error"] != "invalid_client" || body["title"] == nil {
		t.Errorf("wrong secret: %d %v; want 400 invalid_client with a title", code, body)
	}
	if n := s.TokenRequests(); n != 2 {
		t.Errorf("TokenRequests = %d; want 2", n)
	}
	resp, err := http.PostForm(s.TokenURL(), url.Values{"grant_type": {"password"}, "client_id": {"sim-client"}, "client_secret": {"sim-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("password grant: %d; want 400", resp.StatusCode)
	}
}

func TestAPIRecordsExactRequest(t *testing.T) {
	s := NewSimpleStore(SimOptions{})
	defer s.Close()
	tok := mustToken(t, s)
	resp, body := call(t, http.MethodPut, s.APIURL()+"/v1/echo/a%2Fb/c%20d?x=1&y=%2F", tok, `{"n":1}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("echo: %d %s", resp.StatusCode, body)
	}
	var echo map[string]string
	if err := json.Unmarshal([]byte(body), &echo); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"method": "PUT", "path": "/v1/echo/a%2Fb/c%20d", "query": "x=1&y=%2F", "body": `{"n":1}`}
	for k, v := range want {
		if echo[k] != v {
			t.Errorf("echo %s = %q; want %q", k, echo[k], v)
		}
	}
	got := s.LastAPIRequest()
	if got.Method != "PUT" || got.Path != "/v1/echo/a%2Fb/c%20d" || got.RawQuery != "x=1&y=%2F" ||
		got.RequestURI != "/v1/echo/a%2Fb/c%20d?x=1&y=%2F" || string(got.Body) != `{"n":1}` {
		t.Errorf("LastAPIRequest = %+v", got)
	}
	if got.Header.Get("Authorization") != "Bearer "+tok {
		t.Errorf("recorded Authorization %q", got.Header.Get("Authorization"))
	}
	if n := s.APIRequests(); n != 1 {
		t.Errorf("APIRequests = %d; want 1", n)
	}
}

func TestAPIUnauthorized(t *testing.T) {
	s := NewSimpleStore(SimOptions{})
	defer s.Close()
	tok := mustToken(t, s)
	var tests = []struct {
		name   string // what the case is about
		token  string // bearer token sent
		detail string // RFC 7807 detail expected
	}{
		{"no token", "", "missing bearer token"},
		{"unknown token", "forged", "invalid token"},
	}
	for _, tt := range tests {
		resp, body := call(t, http.MethodGet, s.APIURL()+"/v1/cart/1", tt.token, "")
		var problem map[string]any
		json.Unmarshal([]byte(body), &problem)
		if resp.StatusCode != 401 || problem["status"] != float64(401) || problem["detail"] != tt.detail ||
			resp.Header.Get("Content-Type") != "application/problem+json" || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %v %s", tt.name, resp.StatusCode, resp.Header, body)
		}
	}
	s.ExpireAll()
	if resp, body := call(t, http.MethodGet, s.APIURL()+"/v1/cart/1", tok, ""); resp.StatusCode != 401 || !strings.Contains(body, "token expired") {
		t.Errorf("expired token: %d %s", resp.StatusCode, body)
	}
	tok = mustToken(t, s)
	if resp, _ := call(t, http.MethodGet, s.APIURL()+"/v1/cart/1", tok, ""); resp.StatusCode != 200 {
		t.Errorf("new token after ExpireAll: %d", resp.StatusCode)
	}
	s.RevokeAll()
	if resp, body := call(t, http.MethodGet, s.APIURL()+"/v1/cart/1", tok, ""); resp.StatusCode != 401 || !strings.Contains(body, "invalid token") {
		t.Errorf("revoked token: %d %s", resp.StatusCode, body)
	}
}

func TestSimpleStoreProducts(t *testing.T) {
	s := NewSimpleStore(SimOptions{})
	defer s.Close()
	tok := mustToken(t, s)
	resp, body := call(t, http.MethodGet, s.APIURL()+"/v1/products?pageSize=10&pageIndex=2", tok, "")
	var page struct {
		Result                                              []map[string]any
		PageSize, PageIndex, TotalRecordsFound, ResultCount int
		TotalPages                                          int
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if page.ResultCount != 5 || len(page.Result) != 5 || page.TotalRecordsFound != 25 || page.TotalPages != 3 || page.PageIndex != 2 {
		t.Errorf("page = %+v; want the last 5 of 25", page)
	}
	if resp, _ := call(t, http.MethodGet, s.APIURL()+"/v1/products?pageSize=0", tok, ""); resp.StatusCode != 400 {
		t.Errorf("pageSize=0: %d; want 400", resp.StatusCode)
	}
	if resp, _ := call(t, http.MethodGet, s.APIURL()+"/v1/nothing", tok, ""); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d; want 404", resp.StatusCode)
	}
}

func TestFaultInjection(t *testing.T) {
	s := NewOAuth2(SimOptions{})
	defer s.Close()
	tok := mustToken(t, s)

	s.FailAPIRequests(http.StatusTooManyRequests, 2)
	for i := range 2 {
		resp, _ := call(t, http.MethodGet, s.APIURL()+"/v1/items", tok, "")
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("failure %d: %d, Retry-After %q", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if resp, _ := call(t, http.MethodGet, s.APIURL()+"/v1/items", tok, ""); resp.StatusCode != 200 {
		t.Errorf("after 2 failures: %d", resp.StatusCode)
	}

	s.FailTokenRequests(http.StatusInternalServerError, -1)
	for range 3 {
		if code, _ := fetchToken(t, s, "sim-client", "sim-secret"); code != 500 {
			t.Errorf("token request while failing: %d", code)
		}
	}
	s.FailTokenRequests(0, 0)
	mustToken(t, s)

	s.SetLifetime(42 * time.Second)
	if _, body := fetchToken(t, s, "sim-client", "sim-secret"); body["expires_in"] != float64(42) {
		t.Errorf("after SetLifetime: %v", body)
	}
}

func TestCloseEndsPendingLatency(t *testing.T) {
	s := NewSimpleStore(SimOptions{})
	tok := mustToken(t, s)
	s.SetAPILatency(time.Hour)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, s.APIURL()+"/v1/cart/1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.APIRequests() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("request never arrived")
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a pending latency")
	}
}

func TestStreamStepByStep(t *testing.T) {
	s := NewSimpleStore(SimOptions{})
	defer s.Close()
	tok := mustToken(t, s)
	req, _ := http.NewRequest(http.MethodGet, s.APIURL()+"/v1/stream?n=3&step=1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	for i := range 3 {
		if i > 0 {
			s.StreamStep() // the chunk is only written after this
		}
		line, err := r.ReadString('\n')
		if want := `{"chunk":` + string(rune('0'+i)) + "}\n"; err != nil || line != want {
			t.Fatalf("chunk %d = %q, %v; want %q", i, line, err, want)
		}
	}
	if rest, _ := io.ReadAll(r); len(rest) != 0 {
		t.Errorf("after 3 chunks: %q", rest)
	}
}

func TestOAuth2TokenEndpoint(t *testing.T) {
	o := NewOAuth2(SimOptions{ClientAuth: "header", Scopes: []string{"a", "b"}, RefreshToken: "rt-1", RotateRefreshTokens: true})
	defer o.Close()
	post := func(form url.Values, basic bool) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, o.TokenURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(url.QueryEscape("sim-client"), url.QueryEscape("sim-secret"))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	var tests = []struct {
		name  string     // what the case is about
		form  url.Values // form body (client credentials added to it when not basic)
		basic bool       // HTTP Basic client authentication
		code  int        // status
		err   string     // error code; "" for success
	}{
		{"basic", url.Values{"grant_type": {"client_credentials"}, "scope": {"a b"}}, true, 200, ""},
		{"body refused", url.Values{"grant_type": {"client_credentials"}, "client_id": {"sim-client"}, "client_secret": {"sim-secret"}}, false, 401, "invalid_client"},
		{"both ways", url.Values{"grant_type": {"client_credentials"}, "client_secret": {"sim-secret"}}, true, 400, "invalid_request"},
		{"bad scope", url.Values{"grant_type": {"client_credentials"}, "scope": {"a c"}}, true, 400, "invalid_scope"},
		{"unknown grant", url.Values{"grant_type": {"password"}}, true, 400, "unsupported_grant_type"},
		{"no grant", url.Values{}, true, 400, "invalid_request"},
		{"refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt-1"}}, true, 200, ""},
		{"refresh reused after rotation", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt-1"}}, true, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		code, body := post(tt.form, tt.basic)
		if code != tt.code || (tt.err != "" && body["error"] != tt.err) || (tt.err == "" && body["access_token"] == nil) {
			t.Errorf("%s: %d %v; want %d %q", tt.name, code, body, tt.code, tt.err)
		}
		if tt.name == "refresh" {
			next, _ := body["refresh_token"].(string)
			if next == "" || next == "rt-1" || !o.ValidRefreshToken(next) || o.ValidRefreshToken("rt-1") {
				t.Errorf("rotation: got %q", next)
			}
		}
	}
	if got := o.LastTokenRequest(); got.ClientAuth != "header" || got.ClientID != "sim-client" {
		t.Errorf("LastTokenRequest = %+v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := NewSimpleStore(SimOptions{})
	defer s.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			// No t.Fatal off the test goroutine: report and carry on.
			resp, err := http.PostForm(s.TokenURL(), url.Values{
				"grant_type": {"client_credentials"}, "client_id": {"sim-client"}, "client_secret": {"sim-secret"},
			})
			if err != nil {
				t.Error(err)
				return
			}
			var body struct {
				AccessToken string `json:"access_token"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			tok := body.AccessToken
			for range 5 {
				req, _ := http.NewRequest(http.MethodGet, s.APIURL()+"/v1/cart/7", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
				s.LastAPIRequest()
			}
		})
	}
	wg.Wait()
	if s.TokenRequests() != 8 || s.APIRequests() != 40 {
		t.Errorf("counters %d, %d; want 8, 40", s.TokenRequests(), s.APIRequests())
	}
}
