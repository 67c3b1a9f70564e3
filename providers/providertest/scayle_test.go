package providertest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// scayleJWT signs a consent JWT; modify may change the claims.
func scayleJWT(t *testing.T, secret string, method jwt.SigningMethod, modify func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"callbackUrl": testRedirect, "idpKey": "sim-idp", "clientId": "sim-client",
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "nonce": "n-1"}
	if modify != nil {
		modify(claims)
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func scayleConsent(s *SCAYLE, shopID, token string) string {
	return withQuery(s.AuthURL(), url.Values{"shopId": {shopID}, "jwt": {token}})
}

func TestSCAYLEConsentChecks(t *testing.T) {
	s := NewSCAYLE(SCAYLEOptions{})
	defer s.Close()
	const secret = "sim-shop-secret"
	hs := jwt.SigningMethodHS256
	var tests = []struct {
		name string // what is wrong
		url  string // consent URL
		want int    // status
	}{
		{"ok", scayleConsent(s, "1001", scayleJWT(t, secret, hs, nil)), 302},
		{"foreign shop", scayleConsent(s, "1002", scayleJWT(t, secret, hs, nil)), 400},
		{"wrong shop secret", scayleConsent(s, "1001", scayleJWT(t, "other", hs, nil)), 400},
		{"HS512", scayleConsent(s, "1001", scayleJWT(t, secret, jwt.SigningMethodHS512, nil)), 400},
		{"exp 16 minutes after iat", scayleConsent(s, "1001", scayleJWT(t, secret, hs, func(c jwt.MapClaims) {
			c["exp"] = time.Now().Add(16 * time.Minute).Unix()
		})), 400},
		{"expired", scayleConsent(s, "1001", scayleJWT(t, secret, hs, func(c jwt.MapClaims) {
			c["iat"], c["exp"] = time.Now().Add(-20*time.Minute).Unix(), time.Now().Add(-10*time.Minute).Unix()
		})), 400},
		{"no exp", scayleConsent(s, "1001", scayleJWT(t, secret, hs, func(c jwt.MapClaims) { delete(c, "exp") })), 400},
		{"no iat", scayleConsent(s, "1001", scayleJWT(t, secret, hs, func(c jwt.MapClaims) { delete(c, "iat") })), 400},
		{"foreign client", scayleConsent(s, "1001", scayleJWT(t, secret, hs, func(c jwt.MapClaims) { c["clientId"] = "x" })), 400},
		{"unknown idp", scayleConsent(s, "1001", scayleJWT(t, secret, hs, func(c jwt.MapClaims) { c["idpKey"] = "x" })), 400},
		{"relative callback", scayleConsent(s, "1001", scayleJWT(t, secret, hs, func(c jwt.MapClaims) { c["callbackUrl"] = "/cb" })), 400},
		{"garbage", scayleConsent(s, "1001", "not.a.jwt"), 400},
	}
	for _, tt := range tests {
		if resp := consent(t, tt.url); resp.StatusCode != tt.want {
			t.Errorf("%s: %d; want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	q := approved(t, scayleConsent(s, "1001", scayleJWT(t, secret, hs, nil)))
	payload, err := base64.StdEncoding.DecodeString(q.Get("state"))
	var claims map[string]any
	if err != nil || json.Unmarshal(payload, &claims) != nil || claims["nonce"] != "n-1" || claims["clientId"] != "sim-client" {
		t.Errorf("state %q; want the standard base64 of the JWT payload", q.Get("state"))
	}
}

func TestSCAYLETokensAndManagement(t *testing.T) {
	s := NewSCAYLE(SCAYLEOptions{RefreshLifetime: time.Hour})
	defer s.Close()
	code := approved(t, scayleConsent(s, "1001", scayleJWT(t, "sim-shop-secret", jwt.SigningMethodHS256, nil))).Get("code")
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}}
	if status, body := postToken(t, s.TokenURL(), exchange, false, "sim-client", "sim-secret"); status != 400 {
		t.Errorf("form body: %d %v; want 400 (SCAYLE takes JSON)", status, body)
	}
	if status, body := postToken(t, s.TokenURL(), exchange, true); status != 401 || body["error"] != "INVALID_CLIENT" || !hasKey(body, "context") {
		t.Errorf("no Basic: %d %v; want 401 INVALID_CLIENT in SCAYLE's shape", status, body)
	}
	status, body := postToken(t, s.TokenURL(), exchange, true, "sim-client", "sim-secret")
	access, _ := body["access_token"].(string)
	refresh, _ := body["refresh_token"].(string)
	if status != 200 || refresh == "" || body["expires_in"] != float64(3600) {
		t.Fatalf("exchange: %d %v", status, body)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(access, claims); err != nil || claims["jti"] == nil || claims["exp"] == nil {
		t.Fatalf("access token claims %v, %v; want a JWT with jti and exp", claims, err)
	}
	refreshExpiry, _ := s.RefreshExpiry(refresh)
	if d := time.Until(refreshExpiry); d < 59*time.Minute || d > time.Hour {
		t.Errorf("refresh token expires in %v; want RefreshLifetime", d)
	}

	// Rotation.
	status, body = postToken(t, s.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, true, "sim-client", "sim-secret")
	next, _ := body["refresh_token"].(string)
	if exp, _ := s.RefreshExpiry(next); status != 200 || next == refresh || !exp.Equal(refreshExpiry) {
		t.Errorf("refresh: %d %v; want a new refresh token with the original expiry", status, body)
	}
	if s.RefreshReuse() != 0 {
		t.Errorf("RefreshReuse = %d before any reuse", s.RefreshReuse())
	}
	status, body = postToken(t, s.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, true, "sim-client", "sim-secret")
	if status != 400 || body["error"] != "INVALID_GRANT" || s.RefreshReuse() != 1 || s.RefreshRequests() != 2 {
		t.Errorf("reuse: %d %v, RefreshReuse %d, RefreshRequests %d; want 400 INVALID_GRANT, 1, 2", status, body, s.RefreshReuse(), s.RefreshRequests())
	}

	bearer := map[string]string{"Authorization": "Bearer " + access}
	if resp, _ := get(t, s.AuthAPIURL()+"/oauth/token/validate", bearer); resp.StatusCode != 200 {
		t.Errorf("validate: %d", resp.StatusCode)
	}
	resp, list := get(t, s.AuthAPIURL()+"/oauth/tokens", bearer)
	var sessions []map[string]any
	if json.Unmarshal([]byte(list), &sessions); resp.StatusCode != 200 || len(sessions) != 2 || sessions[0]["expires_at"] == nil {
		t.Errorf("list: %d %s; want the two live sessions", resp.StatusCode, list)
	}
	api := map[string]string{"Authorization": "Bearer " + access, "X-Shop-Id": "1001"}
	if resp, body := get(t, s.APIURL()+"/v1/customers/me", api); resp.StatusCode != 200 || !strings.Contains(body, `"shopId":"1001"`) {
		t.Errorf("customers/me: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, s.APIURL()+"/v1/echo/a", api); resp.StatusCode != 200 || s.LastAPIRequest().Path != "/api/v1/echo/a" {
		t.Errorf("echo: %d, recorded %q", resp.StatusCode, s.LastAPIRequest().Path)
	}
	if resp, _ := get(t, s.APIURL()+"/v1/customers/me", bearer); resp.StatusCode != 400 {
		t.Errorf("without X-Shop-Id: %d; want 400", resp.StatusCode)
	}

	req, _ := http.NewRequest(http.MethodDelete, s.AuthAPIURL()+"/oauth/tokens/"+claims["jti"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+access)
	dresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dresp.Body.Close()
	if dresp.StatusCode != 204 {
		t.Errorf("revoke: %d; want 204", dresp.StatusCode)
	}
	if resp, _ := get(t, s.APIURL()+"/v1/customers/me", api); resp.StatusCode != 401 {
		t.Errorf("revoked token at the API: %d; want 401", resp.StatusCode)
	}
	if resp, _ := get(t, s.AuthAPIURL()+"/oauth/token/validate", bearer); resp.StatusCode != 401 {
		t.Errorf("revoked token at validate: %d; want 401", resp.StatusCode)
	}
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

func TestOAuth2AuthorizationCode(t *testing.T) {
	o := NewOAuth2(SimOptions{})
	defer o.Close()
	const verifier = "a-verifier-that-is-long-enough-for-rfc-7636-xyz"
	code := approved(t, withQuery(o.AuthURL(), url.Values{"client_id": {"sim-client"}, "redirect_uri": {testRedirect},
		"response_type": {"code"}, "code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}})).Get("code")
	params := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect},
		"code_verifier": {"wrong-verifier-wrong-verifier-wrong-verifier"}}
	if status, body := postToken(t, o.TokenURL(), params, false, "sim-client", "sim-secret"); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("wrong verifier: %d %v; want invalid_grant", status, body)
	}
	// The failed attempt used the code up.
	params.Set("code_verifier", verifier)
	if status, _ := postToken(t, o.TokenURL(), params, false, "sim-client", "sim-secret"); status != 400 {
		t.Errorf("code after a failed exchange: %d; want 400", status)
	}
}

// TestSCAYLERevokeOneAndLogout: DELETE /v1/oauth/tokens/{jti} revokes one
// access token and leaves its refresh token alive; POST /v1/auth/logout
// (with X-Shop-Id) revokes the access token and its refresh token.
func TestSCAYLERevokeOneAndLogout(t *testing.T) {
	s := NewSCAYLE(SCAYLEOptions{})
	defer s.Close()
	pair := func(params url.Values) (access, refresh string) {
		t.Helper()
		status, body := postToken(t, s.TokenURL(), params, true, "sim-client", "sim-secret")
		access, _ = body["access_token"].(string)
		refresh, _ = body["refresh_token"].(string)
		if status != 200 || access == "" || refresh == "" {
			t.Fatalf("token request: %d %v", status, body)
		}
		return access, refresh
	}
	send := func(method, url, access string, header map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		req.Header.Set("Authorization", "Bearer "+access)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	code := approved(t, scayleConsent(s, "1001", scayleJWT(t, "sim-shop-secret", jwt.SigningMethodHS256, nil))).Get("code")
	access, refresh := pair(url.Values{"grant_type": {"authorization_code"}, "code": {code}})
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(access, claims); err != nil {
		t.Fatal(err)
	}
	if got := send(http.MethodDelete, s.AuthAPIURL()+"/oauth/tokens/"+claims["jti"].(string), access, nil); got != 204 {
		t.Fatalf("revoke one: %d; want 204", got)
	}
	if got := send(http.MethodGet, s.AuthAPIURL()+"/oauth/token/validate", access, nil); got != 401 {
		t.Errorf("revoked access token at validate: %d; want 401", got)
	}
	if !s.ValidRefreshToken(refresh) {
		t.Fatal("DELETE of one access token killed its refresh token; SCAYLE documents that only logout does")
	}

	access, refresh = pair(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	logout := s.AuthAPIURL() + "/auth/logout"
	if got := send(http.MethodPost, logout, access, nil); got != 400 {
		t.Errorf("logout without X-Shop-Id: %d; want 400", got)
	}
	if got := send(http.MethodPost, logout, "not-a-token", map[string]string{"X-Shop-Id": "1001"}); got != 401 {
		t.Errorf("logout with an unknown token: %d; want 401", got)
	}
	if !s.ValidRefreshToken(refresh) || s.Logouts() != 0 {
		t.Fatal("a refused logout revoked something")
	}
	if got := send(http.MethodPost, logout, access, map[string]string{"X-Shop-Id": "1001"}); got != 204 || s.Logouts() != 1 {
		t.Fatalf("logout: %d, Logouts %d; want 204, 1", got, s.Logouts())
	}
	if got := send(http.MethodGet, s.AuthAPIURL()+"/oauth/token/validate", access, nil); got != 401 {
		t.Errorf("logged-out access token at validate: %d; want 401", got)
	}
	if s.ValidRefreshToken(refresh) {
		t.Error("the refresh token survived logout")
	}
}
