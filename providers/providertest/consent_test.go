package providertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const testRedirect = "http://127.0.0.1:8080/_sidekey/oauth/callback"

// consent opens a consent URL without following the redirect.
func consent(t *testing.T, u string) *http.Response {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// approved opens a consent URL, expects a 302 to testRedirect and returns
// the callback's query.
func approved(t *testing.T, u string) url.Values {
	t.Helper()
	resp := consent(t, u)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("consent %s: %d, Location %q; want 302", u, resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	loc.RawQuery = ""
	if loc.String() != testRedirect || q.Get("code") == "" {
		t.Fatalf("redirected to %s?%s; want %s with a code", loc, q.Encode(), testRedirect)
	}
	return q
}

// withQuery returns base?q.
func withQuery(base string, q url.Values) string { return base + "?" + q.Encode() }

// postToken sends a token request: a form, or JSON when asJSON; basic adds
// HTTP Basic with the raw id and secret.
func postToken(t *testing.T, tokenURL string, params url.Values, asJSON bool, basic ...string) (int, map[string]any) {
	t.Helper()
	var body []byte
	contentType := "application/x-www-form-urlencoded"
	if asJSON {
		obj := map[string]string{}
		for k := range params {
			obj[k] = params.Get(k)
		}
		body, _ = json.Marshal(obj)
		contentType = "application/json"
	} else {
		body = []byte(params.Encode())
	}
	req, _ := http.NewRequest(http.MethodPost, tokenURL, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// get sends a GET with the given headers.
func get(t *testing.T, u string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestCodesSingleUseAndExpiring(t *testing.T) {
	s := NewIstores(SimOptions{})
	defer s.Close()
	authorize := url.Values{"client_id": {"sim-client"}, "redirect_uri": {testRedirect}, "response_type": {"code"}, "scopes": {"products:read"}}
	exchange := func(code string) int {
		status, _ := postToken(t, s.TokenURL(), url.Values{"client_id": {"sim-client"}, "client_secret": {"sim-secret"}, "code": {code}}, true)
		return status
	}
	code := approved(t, withQuery(s.AuthURL(), authorize)).Get("code")
	if first, second := exchange(code), exchange(code); first != 200 || second != 400 {
		t.Errorf("exchanging a code twice: %d, %d; want 200, 400", first, second)
	}
	code = approved(t, withQuery(s.AuthURL(), authorize)).Get("code")
	s.ExpireCodes()
	if status := exchange(code); status != 400 {
		t.Errorf("expired code: %d; want 400", status)
	}
	if n := s.ConsentRequests(); n != 2 {
		t.Errorf("ConsentRequests = %d; want 2", n)
	}
}

func TestConsentRejections(t *testing.T) {
	is := NewIstores(SimOptions{})
	defer is.Close()
	sh := NewStoreHippo(SimOptions{})
	defer sh.Close()
	oa := NewOAuth2(SimOptions{})
	defer oa.Close()
	istores := func(modify func(url.Values)) string {
		q := url.Values{"client_id": {"sim-client"}, "redirect_uri": {testRedirect}, "response_type": {"code"}, "scopes": {"products:read pages:read"}}
		modify(q)
		return withQuery(is.AuthURL(), q)
	}
	hippo := func(modify func(url.Values)) string {
		q := url.Values{"client_id": {"sim-client"}, "redirect_uri": {testRedirect}, "scope": {"read_products,write_orders"}, "state": {"n"}}
		modify(q)
		return withQuery(sh.AuthURL(), q)
	}
	generic := func(modify func(url.Values)) string {
		q := url.Values{"client_id": {"sim-client"}, "redirect_uri": {testRedirect}, "response_type": {"code"}, "state": {"n"},
			"code_challenge": {s256("verifier-verifier-verifier-verifier-verifier")}, "code_challenge_method": {"S256"}}
		modify(q)
		return withQuery(oa.AuthURL(), q)
	}
	var tests = []struct {
		name string // what is wrong
		url  string // consent URL
		want int    // status
	}{
		{"istores ok", istores(func(url.Values) {}), 302},
		{"istores comma scopes", istores(func(q url.Values) { q.Set("scopes", "products:read,pages:read") }), 302},
		{"istores foreign client", istores(func(q url.Values) { q.Set("client_id", "x") }), 400},
		{"istores response_type", istores(func(q url.Values) { q.Set("response_type", "token") }), 400},
		{"istores unknown scope", istores(func(q url.Values) { q.Set("scopes", "products:read admin") }), 400},
		{"istores no scopes", istores(func(q url.Values) { q.Del("scopes") }), 400},
		{"istores relative redirect", istores(func(q url.Values) { q.Set("redirect_uri", "/cb") }), 400},
		{"storehippo ok", hippo(func(url.Values) {}), 302},
		{"storehippo no state", hippo(func(q url.Values) { q.Del("state") }), 400},
		{"storehippo space-separated scopes", hippo(func(q url.Values) { q.Set("scope", "read_products write_orders") }), 400},
		{"storehippo no redirect", hippo(func(q url.Values) { q.Del("redirect_uri") }), 400},
		{"storehippo foreign client", hippo(func(q url.Values) { q.Set("client_id", "x") }), 400},
		{"oauth2 ok", generic(func(url.Values) {}), 302},
		{"oauth2 without PKCE", generic(func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }), 400},
		{"oauth2 plain PKCE", generic(func(q url.Values) { q.Set("code_challenge_method", "plain") }), 400},
		{"oauth2 foreign client", generic(func(q url.Values) { q.Set("client_id", "x") }), 400},
	}
	for _, tt := range tests {
		if resp := consent(t, tt.url); resp.StatusCode != tt.want {
			t.Errorf("%s: %d; want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	// Istores echoes a state it does not document, and leaves it out when
	// none was sent.
	if q := approved(t, istores(func(q url.Values) { q.Set("state", "s-1") })); q.Get("state") != "s-1" {
		t.Errorf("istores state %q; want s-1", q.Get("state"))
	}
	if q := approved(t, istores(func(url.Values) {})); q.Has("state") {
		t.Errorf("istores callback %v has a state though none was sent", q)
	}
}

func TestIstoresSimulator(t *testing.T) {
	s := NewIstores(SimOptions{RateLimit: 2})
	defer s.Close()
	code := approved(t, withQuery(s.AuthURL(), url.Values{"client_id": {"sim-client"}, "redirect_uri": {testRedirect},
		"response_type": {"code"}, "scopes": {"products:read"}})).Get("code")
	// The documented parameters, form-encoded: accepted as well as JSON.
	status, body := postToken(t, s.TokenURL(), url.Values{"client_id": {"sim-client"}, "client_secret": {"sim-secret"}, "code": {code}}, false)
	tok, _ := body["access_token"].(string)
	if status != 200 || body["token_type"] != "Bearer" || body["expires_in"] != float64(36000000) || strings.Count(tok, ".") != 2 {
		t.Fatalf("token response %d %v; want a Bearer JWT with expires_in 36000000", status, body)
	}
	if status, body := postToken(t, s.TokenURL(), url.Values{"client_id": {"sim-client"}, "client_secret": {"sim-secret"},
		"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, true); status != 400 || body["error"] != "unsupported_grant_type" {
		t.Errorf("refresh grant: %d %v; want unsupported_grant_type", status, body)
	}
	if status, body := postToken(t, s.TokenURL(), url.Values{"client_id": {"sim-client"}, "client_secret": {"wrong"}, "code": {"c"}}, true); status != 401 || body["error"] != "invalid_client" || body["message"] == nil {
		t.Errorf("wrong secret: %d %v; want Passport's 401 invalid_client", status, body)
	}

	resp, page := get(t, s.APIURL()+"/products/20/3", map[string]string{"x-token": tok})
	var list struct {
		Success              bool
		Products             []map[string]any
		Results, Pages, Page int
	}
	if json.Unmarshal([]byte(page), &list); resp.StatusCode != 200 || !list.Success || len(list.Products) != 5 || list.Pages != 3 {
		t.Errorf("products via x-token: %d %s", resp.StatusCode, page)
	}
	resp, _ = get(t, s.APIURL()+"/products/1", map[string]string{"Authorization": "Bearer " + tok})
	if resp.StatusCode != 200 {
		t.Errorf("product 1: %d", resp.StatusCode)
	}
	resp, body401 := get(t, s.APIURL()+"/products/1", nil)
	if resp.StatusCode != 429 && (resp.StatusCode != 401 || !strings.Contains(body401, "Unauthenticated.")) {
		t.Errorf("without a token: %d %s", resp.StatusCode, body401)
	}
	// More than two requests within a second: over the limit.
	limited := false
	for range 10 {
		if resp, _ := get(t, s.APIURL()+"/products/1", map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode == 429 {
			limited = resp.Header.Get("Retry-After") == "1"
			break
		}
	}
	if !limited {
		t.Error("no 429 with Retry-After at 3 requests per second")
	}
}

func TestStoreHippoSimulator(t *testing.T) {
	s := NewStoreHippo(SimOptions{})
	defer s.Close()
	authorize := withQuery(s.AuthURL(), url.Values{"client_id": {"sim-client"}, "redirect_uri": {testRedirect},
		"scope": {"read_products"}, "state": {"n-1"}})
	q := approved(t, authorize)
	if q.Get("state") != "n-1" {
		t.Errorf("state %q; want n-1", q.Get("state"))
	}
	params := url.Values{"client_id": {"sim-client"}, "client_secret": {"sim-secret"}, "code": {q.Get("code")},
		"grant_type": {"authorization_code"}, "redirect_uri": {testRedirect}}
	if status, _ := postToken(t, s.TokenURL(), params, true); status != 400 {
		t.Errorf("JSON body: %d; want 400 (the documentation shows a form)", status)
	}
	params.Set("code", approved(t, authorize).Get("code"))
	status, body := postToken(t, s.TokenURL(), params, false)
	access, _ := body["access_token"].(string)
	refresh, _ := body["refresh_token"].(string)
	if status != 200 || access == "" || refresh == "" || len(body) != 2 {
		t.Fatalf("token response %d %v; want exactly access_token and refresh_token", status, body)
	}
	resp, page := get(t, s.APIURL()+"/entity/ms.products?start=20&limit=25", map[string]string{"Authorization": "Bearer " + access})
	var list struct {
		Data   []map[string]any
		Paging map[string]int
	}
	if json.Unmarshal([]byte(page), &list); resp.StatusCode != 200 || len(list.Data) != 10 || list.Paging["total"] != 30 {
		t.Errorf("ms.products: %d %s", resp.StatusCode, page)
	}
	if resp, _ := get(t, s.URL()+"/entity/ms.products", map[string]string{"Authorization": "Bearer " + access}); resp.StatusCode != 404 {
		t.Errorf("outside /api/1.1: %d; want 404", resp.StatusCode)
	}
	if resp, _ := get(t, s.APIURL()+"/v1/echo/x", map[string]string{"Authorization": "Bearer " + access}); resp.StatusCode != 200 ||
		s.LastAPIRequest().Path != "/api/1.1/v1/echo/x" {
		t.Errorf("echo: %d, recorded %q", resp.StatusCode, s.LastAPIRequest().Path)
	}

	// Refresh: a new access token, the same refresh token.
	status, body = postToken(t, s.TokenURL(), url.Values{"client_id": {"sim-client"}, "client_secret": {"sim-secret"},
		"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, false)
	if status != 200 || body["refresh_token"] != refresh || body["access_token"] == access {
		t.Errorf("refresh: %d %v; want a new access token and the same refresh token", status, body)
	}
	// Redirect mismatch.
	params.Set("code", approved(t, authorize).Get("code"))
	params.Set("redirect_uri", "http://127.0.0.1:1/other")
	if status, body := postToken(t, s.TokenURL(), params, false); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("another redirect_uri: %d %v; want invalid_grant", status, body)
	}
}
