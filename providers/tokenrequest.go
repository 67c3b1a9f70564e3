package providers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// Ways a client authenticates at a token endpoint (config client_auth).
const (
	clientAuthHeader = "header" // HTTP Basic, RFC 6749 section 2.3.1
	clientAuthBody   = "body"   // client_id and client_secret form fields
)

// tokenEndpoint performs form-encoded token requests for providers whose
// responses golang.org/x/oauth2 cannot read (SimpleStore's expiries_in).
// It holds no state between requests and is safe for concurrent use.
type tokenEndpoint struct {
	provider string
	url      string
	client   *http.Client
	log      *zap.Logger
	// defaultLifetime is assumed when a response states no lifetime; zero
	// leaves the token's Expiry zero (unknown).
	defaultLifetime time.Duration
	// secrets are scrubbed from any provider text that reaches an error.
	secrets []string
}

// credentials are how the client identifies itself on one request.
type credentials struct {
	id, secret string
	inHeader   bool // HTTP Basic instead of form fields
}

// request posts form (plus the client credentials) and returns the issued
// token; every failure is a *TokenError. Expiry is measured from the moment
// the request was sent, so it errs on the early side.
func (e *tokenEndpoint) request(ctx context.Context, form url.Values, creds credentials) (*oauth2.Token, error) {
	form = cloneValues(form)
	if !creds.inHeader {
		form.Set("client_id", creds.id)
		form.Set("client_secret", creds.secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, e.fail(&TokenError{Err: err}, time.Time{})
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if creds.inHeader {
		req.SetBasicAuth(url.QueryEscape(creds.id), url.QueryEscape(creds.secret))
	}
	start := timeNow()
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, e.fail(&TokenError{Err: err}, start)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return nil, e.fail(&TokenError{Status: resp.StatusCode, Err: fmt.Errorf("reading response: %w", err)}, start)
	}
	if len(body) > maxTokenResponse {
		return nil, e.fail(&TokenError{Status: resp.StatusCode, Code: codeInvalidResponse,
			Description: "response body exceeds 1 MiB"}, start)
	}
	tr, err := parseTokenResponse(resp.StatusCode, resp.Header.Get("Content-Type"), body)
	if err != nil {
		te := err.(*TokenError)
		te.RetryAfter = retryAfter(resp.Header)
		return nil, e.fail(te, start)
	}
	tok := &oauth2.Token{
		AccessToken:  tr.AccessToken,
		TokenType:    tr.TokenType,
		RefreshToken: tr.RefreshToken,
		ExpiresIn:    tr.ExpiresIn,
	}
	lifetime := time.Duration(tr.ExpiresIn) * time.Second
	if lifetime == 0 {
		lifetime = e.defaultLifetime
	}
	if lifetime > 0 {
		tok.Expiry = start.Add(lifetime)
	}
	if tr.Scope != "" {
		tok = tok.WithExtra(map[string]any{"scope": tr.Scope})
	}
	e.log.Debug("token issued", zap.Int("status", resp.StatusCode),
		zap.Duration("duration", timeNow().Sub(start)), zap.Duration("lifetime", lifetime),
		zap.Bool("stated_lifetime", tr.ExpiresIn > 0))
	return tok, nil
}

// fail completes te, logs it and returns it.
func (e *tokenEndpoint) fail(te *TokenError, start time.Time) error {
	te.Provider = e.provider
	te.scrub(e.secrets)
	describe(te)
	logFailure(e.log, te, start)
	return te
}

// describe supplies a description for the common RFC 6749 error codes when
// the provider gave none.
func describe(te *TokenError) {
	if te.Description != "" {
		return
	}
	switch te.Code {
	case "invalid_client":
		te.Description = "the token endpoint rejected the client credentials (check client_id and client_secret)"
	case "unauthorized_client":
		te.Description = "the client may not use this grant"
	case "invalid_grant":
		te.Description = "the grant (refresh token or code) was rejected: it may be expired or revoked"
	case "unsupported_grant_type":
		te.Description = "the token endpoint does not support this grant type"
	case "invalid_scope":
		te.Description = "a requested scope is invalid or not allowed"
	case "invalid_request":
		te.Description = "the token endpoint rejected the request as malformed"
	}
}

// logFailure logs a failed token request; te is safe to log.
func logFailure(log *zap.Logger, te *TokenError, start time.Time) {
	fields := []zap.Field{zap.Error(te), zap.Int("status", te.Status), zap.Bool("retryable", te.Retryable())}
	if !start.IsZero() {
		fields = append(fields, zap.Duration("duration", timeNow().Sub(start)))
	}
	log.Debug("token request failed", fields...)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v)+2)
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// limitBodies returns a copy of client whose responses are read whole, up to
// maxTokenResponse, before golang.org/x/oauth2 sees them: a larger body
// fails with *bodyTooLargeError instead of being cut off and then reported
// as broken JSON.
func limitBodies(client *http.Client) *http.Client {
	c := *client
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = limitedTransport{base: base}
	return &c
}

// limitedTransport reads every response body into memory, up to
// maxTokenResponse bytes. Only for token requests.
type limitedTransport struct {
	base http.RoundTripper
}

// RoundTrip sends req and buffers the response body.
func (l limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return nil, fmt.Errorf("providers: reading token response: %w", err)
	}
	if len(body) > maxTokenResponse {
		return nil, &bodyTooLargeError{status: resp.StatusCode}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// bodyTooLargeError reports a token response over maxTokenResponse.
type bodyTooLargeError struct {
	status int
}

func (e *bodyTooLargeError) Error() string {
	return "providers: token response body exceeds 1 MiB"
}
