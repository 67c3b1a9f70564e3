package providers

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseTokenResponse(t *testing.T) {
	var tests = []struct {
		status      int           // HTTP status
		contentType string        // Content-Type
		body        string        // response body
		want        tokenResponse // parsed token, when wantErr is ""
		wantErr     string        // Error() of the *TokenError
	}{
		{200, "application/json", `{"access_token":"a","token_type":"Bearer","expires_in":3600}`,
			tokenResponse{AccessToken: "a", TokenType: "Bearer", ExpiresIn: 3600}, ""},
		{200, "application/json", `{"access_token":"a","expiries_in":3600}`, tokenResponse{AccessToken: "a", ExpiresIn: 3600}, ""},
		{200, "application/json", `{"access_token":"a","expires_in":"120","expiries_in":5}`, tokenResponse{AccessToken: "a", ExpiresIn: 120}, ""},
		{200, "application/json", `{"access_token":"a","expires_in":" 60 "}`, tokenResponse{AccessToken: "a", ExpiresIn: 60}, ""},
		{200, "application/json", `{"access_token":"a","expires_in":59.9}`, tokenResponse{AccessToken: "a", ExpiresIn: 59}, ""},
		{200, "application/json", `{"access_token":"a","expires_in":1e12}`, tokenResponse{AccessToken: "a", ExpiresIn: maxExpiresIn}, ""},
		{200, "application/json", `{"access_token":"a","expires_in":"1e999"}`, tokenResponse{AccessToken: "a", ExpiresIn: maxExpiresIn}, ""},
		{200, "application/json", `{"access_token":"a","expires_in":null,"expiries_in":""}`, tokenResponse{AccessToken: "a"}, ""},
		{200, "application/json", `{"access_token":"a","expires_in":0}`, tokenResponse{AccessToken: "a"}, ""},
		{200, "application/json", `{"access_token":"a","refresh_token":"r","scope":["x","y"]}`,
			tokenResponse{AccessToken: "a", RefreshToken: "r", Scope: "x y"}, ""},
		{200, "application/json", `{"access_token":"a","token_type":7}`, tokenResponse{AccessToken: "a"}, ""},
		{200, "application/x-www-form-urlencoded", `access_token=a&expires_in=30&token_type=bearer`,
			tokenResponse{AccessToken: "a", TokenType: "bearer", ExpiresIn: 30}, ""},
		{200, "text/plain", `{"access_token":"a"}`, tokenResponse{AccessToken: "a"}, ""},
		{200, "application/json", `{"access_token":"a","refresh_token":"r","refresh_expires_in":1800}`,
			tokenResponse{AccessToken: "a", RefreshToken: "r", RefreshExpiresIn: 1800}, ""},
		{200, "application/json", `{"access_token":"a","refresh_token":"r","refresh_token_expires_in":"15897600"}`,
			tokenResponse{AccessToken: "a", RefreshToken: "r", RefreshExpiresIn: 15897600}, ""},
		{200, "application/json", `{"access_token":"a","refresh_token":"r","refresh_expires_in":0}`,
			tokenResponse{AccessToken: "a", RefreshToken: "r"}, ""}, // Keycloak's offline token: no expiry
		{200, "application/json", `{"access_token":"a","refresh_expires_in":"junk"}`,
			tokenResponse{AccessToken: "a"}, ""}, // no refresh token: its lifetime is not read

		{200, "application/json", `{"access_token":"a","expires_in":-1}`, tokenResponse{}, "200 invalid_response: expires_in is negative"},
		{200, "application/json", `{"access_token":"a","expires_in":"NaN"}`, tokenResponse{}, "200 invalid_response: expires_in is not a number"},
		{200, "application/json", `{"access_token":"a","expires_in":"Inf"}`, tokenResponse{}, "200 invalid_response: expires_in is not a number"},
		{200, "application/json", `{"access_token":"a","expires_in":"0x10"}`, tokenResponse{}, "200 invalid_response: expires_in is not a number"},
		{200, "application/json", `{"access_token":"a","expires_in":{}}`, tokenResponse{}, "200 invalid_response: expires_in is not a number"},
		{200, "application/json", `{"access_token":"a","expires_in":[1]}`, tokenResponse{}, "200 invalid_response: expires_in is not a number"},
		{200, "application/json", `{"access_token":5}`, tokenResponse{}, "200 invalid_response: access_token is not a string"},
		{200, "application/json", `{"access_token":"a","refresh_token":{}}`, tokenResponse{}, "200 invalid_response: refresh_token is not a string"},
		{200, "application/json", `{"access_token":"a","refresh_token":"r","refresh_expires_in":-5}`, tokenResponse{}, "200 invalid_response: refresh_expires_in is negative"},
		{200, "application/json", `{"access_token":"a","refresh_token":"r","refresh_token_expires_in":true}`, tokenResponse{}, "200 invalid_response: refresh_token_expires_in is not a number"},
		{200, "application/json", `{"token_type":"Bearer"}`, tokenResponse{}, "200 invalid_response: missing access_token"},
		{200, "application/json", `["access_token"]`, tokenResponse{}, "200 invalid_response: response is not a JSON object"},
		{200, "application/json", `<html>`, tokenResponse{}, "200 invalid_response: response is not a JSON object"},
		{200, "text/plain", `hello`, tokenResponse{}, "200 invalid_response: missing access_token"},
		{200, "application/json", `{"access_token":"a\nb"}`, tokenResponse{}, "200 invalid_response: access_token contains control characters"},
		{200, "application/json", `{"error":"invalid_client"}`, tokenResponse{}, "200 invalid_client"},
		{400, "application/json", `{"error":"invalid_client","title":"Invalid client"}`, tokenResponse{}, "400 invalid_client: Invalid client"},
		{400, "application/json", `{"error":"invalid_grant","error_description":"expired","title":"t"}`, tokenResponse{}, "400 invalid_grant: expired"},
		{401, "application/json", `{"error":{"code":"bad_key","message":"Key rejected"}}`, tokenResponse{}, "401 bad_key: Key rejected"},
		{401, "application/problem+json", `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"no"}`,
			tokenResponse{}, "401: Unauthorized"},
		{400, "application/x-www-form-urlencoded", `error=invalid_scope&error_description=nope`, tokenResponse{}, "400 invalid_scope: nope"},
		{503, "text/html", `<h1>down</h1>`, tokenResponse{}, "503"},
		{500, "application/json", `{"access_token":"a"}`, tokenResponse{}, "500"},
	}
	for _, tt := range tests {
		got, err := parseTokenResponse(tt.status, tt.contentType, []byte(tt.body))
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("%d %s: got %+v, %v; want %+v", tt.status, tt.body, got, err, tt.want)
			}
			continue
		}
		var te *TokenError
		if !errors.As(err, &te) {
			t.Errorf("%d %s: error %v (%T); want *TokenError", tt.status, tt.body, err, err)
			continue
		}
		if msg := strings.TrimPrefix(te.Error(), "providers: token request failed: "); msg != tt.wantErr {
			t.Errorf("%d %s: error %q; want %q", tt.status, tt.body, msg, tt.wantErr)
		}
	}
}

func TestClean(t *testing.T) {
	var tests = []struct {
		in, want string // provider text; cleaned
	}{
		{"plain", "plain"},
		{"table", "table"}, // "ab" is too short to scrub
		{"line\r\nbreak\x00", "line  break"},
		{"the secret is hunter22!", "the secret is [redacted]!"},
		{strings.Repeat("é", 200), strings.Repeat("é", 128) + "…"},
		{"bad \xff utf8", "bad  utf8"},
	}
	for _, tt := range tests {
		if got := clean(tt.in, maxDescriptionLen, []string{"hunter22", "ab"}); got != tt.want {
			t.Errorf("clean(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParseTokenResponse(f *testing.F) {
	seeds := []struct {
		status      int
		contentType string
		body        string
	}{
		{200, "application/json", `{"access_token":"a","token_type":"Bearer","expires_in":3600}`},
		{200, "application/json", `{"access_token":"a","expiries_in":"3600"}`},
		{200, "application/json", `{"access_token":"a","expires_in":-1e400,"refresh_token":"r","scope":["s"]}`},
		{200, "application/json; charset=utf-8", `{"access_token":"a","expires_in":"1e999"}`},
		{200, "application/x-www-form-urlencoded", `access_token=a&expires_in=30&refresh_token=r`},
		{200, "application/json", `{"access_token":"a","refresh_token":"r","refresh_expires_in":"1e999","refresh_token_expires_in":-1}`},
		{200, "text/plain", `access_token=%zz`},
		{400, "application/json", `{"error":"invalid_client","title":"Invalid client"}`},
		{401, "application/json", `{"error":{"code":"x","message":"y"}}`},
		{401, "application/problem+json", `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"no"}`},
		{500, "text/html", "<html>\x00\xff</html>"},
		{200, "", `{"access_token":"a\u0000"}`},
		{200, "application/json", `[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]`},
	}
	for _, s := range seeds {
		f.Add(s.status, s.contentType, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		got, err := parseTokenResponse(status, contentType, body)
		if err == nil {
			if status < 200 || status > 299 {
				t.Fatalf("status %d accepted", status)
			}
			if got.AccessToken == "" || !validHeaderValue(got.AccessToken) {
				t.Fatalf("accepted access token %q", got.AccessToken)
			}
			if got.ExpiresIn < 0 || got.ExpiresIn > maxExpiresIn {
				t.Fatalf("ExpiresIn %d out of range", got.ExpiresIn)
			}
			return
		}
		var te *TokenError
		if !errors.As(err, &te) {
			t.Fatalf("error %T, want *TokenError", err)
		}
		if te.Status != status {
			t.Fatalf("Status %d; want %d", te.Status, status)
		}
		te.Provider = "fuzz"
		te.scrub([]string{"secret-value"})
		msg := te.Error()
		if len(msg) > 400 || !utf8.ValidString(msg) || strings.ContainsAny(msg, "\r\n\x00") {
			t.Fatalf("unsafe error message %q", msg)
		}
		if strings.Contains(msg, "secret-value") {
			t.Fatalf("secret in %q", msg)
		}
		code, _ := parseErrorFields(contentType, body)
		if te.Code != clean(code, maxCodeLen, []string{"secret-value"}) && te.Code != codeInvalidResponse {
			t.Fatalf("parseErrorFields code %q disagrees with %q", code, te.Code)
		}
	})
}
