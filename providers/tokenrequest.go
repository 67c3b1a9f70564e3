package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/tokensource"
)

// Ways a client authenticates at a token endpoint (config client_auth).
const (
	clientAuthHeader = "header" // HTTP Basic, RFC 6749 section 2.3.1
	clientAuthBody   = "body"   // client_id and client_secret form fields
)

// tokenEndpoint performs token requests for providers whose requests or
// responses golang.org/x/oauth2 cannot handle: SimpleStore's expiries_in,
// JSON request bodies (SCAYLE, Istores), permanent tokens (StoreHippo).
// It holds no state between requests and is safe for concurrent use.
type tokenEndpoint struct {
	provider string
	url      string
	client   *http.Client
	log      *zap.Logger
	// json sends the parameters as a JSON object of strings instead of a
	// form.
	json bool
	// defaultLifetime is assumed when a response states no lifetime; zero
	// leaves the token's Expiry zero (unknown).
	defaultLifetime time.Duration
	// secrets are scrubbed from any provider text that reaches an error;
	// the request's own credentials (code, refresh_token, …) are added per
	// request.
	secrets []string
}

// tokenEndpoint returns the token endpoint of tenant r, sending with env's
// client and logger and scrubbing secrets from error text; the caller sets
// json and defaultLifetime as the platform needs.
func (r *resolved) tokenEndpoint(env sourceEnv, secrets ...string) *tokenEndpoint {
	return &tokenEndpoint{provider: r.p.name, url: r.tokenURL.String(), client: env.client, log: env.log, secrets: secrets}
}

// tokenParams returns a fresh copy of tenant r's token_params.
func (r *resolved) tokenParams() url.Values {
	params := url.Values{}
	for k, v := range r.t.TokenParams {
		params.Set(k, v)
	}
	return params
}

// credentials are how the client identifies itself on one request.
type credentials struct {
	id, secret string
	inHeader   bool // HTTP Basic instead of body fields
	// rawBasic sends base64(id:secret) as is, without RFC 6749's
	// form-encoding of id and secret (SCAYLE documents it this way).
	rawBasic bool
}

// request posts params (plus the client credentials) as a form or, with
// e.json, as a JSON object, and returns the issued token; every failure is
// a *TokenError. Expiry is measured from the moment the request was sent,
// so it errs on the early side, and is capped by the access token's JWT
// exp claim (see capExpiry).
func (e *tokenEndpoint) request(ctx context.Context, params url.Values, creds credentials) (*oauth2.Token, error) {
	params = cloneValues(params)
	if !creds.inHeader {
		params.Set("client_id", creds.id)
		params.Set("client_secret", creds.secret)
	}
	secrets := slices.Clone(e.secrets)
	for _, name := range []string{"client_secret", "code", "refresh_token", "code_verifier"} {
		if v := params.Get(name); v != "" {
			secrets = append(secrets, v)
		}
	}
	body, contentType := encodeParams(params, e.json)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return nil, e.fail(&TokenError{Err: err}, time.Time{}, secrets)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	switch {
	case creds.inHeader && creds.rawBasic:
		req.SetBasicAuth(creds.id, creds.secret)
	case creds.inHeader:
		req.SetBasicAuth(url.QueryEscape(creds.id), url.QueryEscape(creds.secret))
	}
	start := timeNow()
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, e.fail(&TokenError{Err: err}, start, secrets)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return nil, e.fail(&TokenError{Status: resp.StatusCode, Err: fmt.Errorf("reading response: %w", err)}, start, secrets)
	}
	if len(body) > maxTokenResponse {
		return nil, e.fail(&TokenError{Status: resp.StatusCode, Code: codeInvalidResponse,
			Description: "response body exceeds 1 MiB"}, start, secrets)
	}
	tr, err := parseTokenResponse(resp.StatusCode, resp.Header.Get("Content-Type"), body)
	if err != nil {
		te := err.(*TokenError)
		te.RetryAfter = retryAfter(resp.Header)
		return nil, e.fail(te, start, append(secrets, issuedSecrets(resp.Header.Get("Content-Type"), body)...))
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
	extra := map[string]any{}
	if tr.Scope != "" {
		extra["scope"] = tr.Scope
	}
	if tr.RefreshExpiresIn > 0 {
		extra[tokensource.RefreshExpiryExtra] = start.Add(time.Duration(tr.RefreshExpiresIn) * time.Second)
	}
	if len(extra) > 0 {
		tok = tok.WithExtra(extra)
	}
	return finishIssued(e.log, tok, start, zap.Int("status", resp.StatusCode), zap.Bool("stated_lifetime", tr.ExpiresIn > 0)), nil
}

// withStatedRefreshExpiry returns tok, issued by x/oauth2 for a request
// sent at start, with tokensource.RefreshExpiryExtra set when the answer
// stated its refresh token's lifetime (refresh_expires_in or
// refresh_token_expires_in, read as parseTokenResponse reads them; an
// unreadable one is ignored, as x/oauth2 already accepted the answer).
func withStatedRefreshExpiry(tok *oauth2.Token, start time.Time) *oauth2.Token {
	if tok.RefreshToken == "" {
		return tok
	}
	for _, name := range []string{"refresh_expires_in", "refresh_token_expires_in"} {
		var text string
		switch v := tok.Extra(name).(type) {
		case float64:
			text = strconv.FormatFloat(v, 'f', -1, 64)
		case string:
			text = v
		default:
			continue
		}
		secs, given, err := (responseFields{form: url.Values{name: {text}}}).lifetime(name)
		if err != nil || !given || secs == 0 {
			continue
		}
		extra := map[string]any{tokensource.RefreshExpiryExtra: start.Add(time.Duration(secs) * time.Second)}
		if scope := tok.Extra("scope"); scope != nil {
			extra["scope"] = scope
		}
		return tok.WithExtra(extra)
	}
	return tok
}

// issuedSecrets returns the tokens an unusable answer may still carry
// (access_token, refresh_token), so that its error text cannot quote them.
func issuedSecrets(contentType string, body []byte) []string {
	fields, _, _ := decodeFields(contentType, body)
	return []string{fields.str("access_token"), fields.str("refresh_token")}
}

// encodeParams encodes params as a form or as a JSON object whose members
// are the first value of each parameter.
func encodeParams(params url.Values, asJSON bool) (body []byte, contentType string) {
	if !asJSON {
		return []byte(params.Encode()), "application/x-www-form-urlencoded"
	}
	obj := make(map[string]string, len(params))
	for k := range params {
		obj[k] = params.Get(k)
	}
	body, _ = json.Marshal(obj) // a map of strings always encodes
	return body, "application/json"
}

// fail completes te, logs it and returns it.
func (e *tokenEndpoint) fail(te *TokenError, start time.Time, secrets []string) error {
	te.Provider = e.provider
	te.scrub(secrets)
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
