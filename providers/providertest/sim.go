// Package providertest holds faithful in-process simulators of the platforms'
// auth servers, each with a small API behind bearer tokens, over real HTTP
// on 127.0.0.1: SimpleStore, OAuth2 (client credentials, refresh token,
// authorization code with PKCE), Istores, StoreHippo and SCAYLE. Tests,
// `sidekey demo` and benchmarks use them instead of the real platforms.
// Faults (latency, failing token or API requests, revocation, expiry, rate
// limits) can be switched on and off at runtime, and each simulator records
// what reached it so proxy tests can assert exactly what an upstream saw.
//
// The consent pages approve at once: a GET on a consent URL is checked as
// strictly as the platform documents it and answered with a 302 to the
// redirect URI carrying a code (single use, 60 seconds) and the state.
//
// Every method of a simulator is safe for concurrent use.
package providertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SimOptions configure a simulator. Zero fields take the defaults given.
type SimOptions struct {
	// ClientID is the only accepted client id. Default "sim-client".
	ClientID string
	// ClientSecret is the only accepted client secret. Default "sim-secret".
	ClientSecret string
	// TokenLifetime is the lifetime of issued access tokens. Default 3600s;
	// Istores: 36000000s (its documented expires_in); StoreHippo:
	// permanent (its tokens die only when revoked). SetLifetime changes it
	// at runtime; 0 or less makes permanent tokens, stated without a
	// lifetime.
	TokenLifetime time.Duration
	// ExpiresField names the lifetime member of token responses. Default
	// "expiries_in" for SimpleStore (its documentation's spelling) and
	// "expires_in" for OAuth2; "none" leaves the lifetime out.
	ExpiresField string
	// ExpiresAsString sends the lifetime as a JSON string ("3600").
	ExpiresAsString bool
	// TokenType is the token_type sent. Default "Bearer".
	TokenType string
	// ClientAuth restricts how the OAuth2 simulator accepts client
	// credentials: "header" (HTTP Basic only), "body" (form only) or ""
	// (either). SimpleStore always takes either.
	ClientAuth string
	// Scopes are the scopes the OAuth2 simulator grants; a request for any
	// other is invalid_scope. Empty: any scope.
	Scopes []string
	// RefreshToken is a refresh token the OAuth2 simulator accepts from the
	// start. Empty: none until one is issued.
	RefreshToken string
	// RotateRefreshTokens makes every refresh_token grant return a new
	// refresh token and invalidate the one used (OAuth2; SCAYLE always
	// rotates, StoreHippo never does).
	RotateRefreshTokens bool
	// RefreshLifetime, if set, makes the OAuth2 simulator's refresh tokens
	// expire this long after the consent (a rotated one keeps the expiry)
	// and state the time left as refresh_expires_in, as Keycloak does.
	RefreshLifetime time.Duration
	// TokenLatency delays every token response from the start (0: none).
	// SetTokenLatency changes it at runtime.
	TokenLatency time.Duration
	// APILatency delays every API response from the start (0: none).
	// SetAPILatency changes it at runtime.
	APILatency time.Duration
	// RateLimit is the number of API requests served per second before
	// the API answers 429 with Retry-After, as Istores and StoreHippo do
	// at 2 per second. 0: unlimited.
	RateLimit int
}

func (o SimOptions) withDefaults(expiresField string) SimOptions {
	if o.ClientID == "" {
		o.ClientID = "sim-client"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = "sim-secret"
	}
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = time.Hour
	}
	if o.ExpiresField == "" {
		o.ExpiresField = expiresField
	}
	if o.TokenType == "" {
		o.TokenType = "Bearer"
	}
	return o
}

// APIRequest is what the simulated API received, exactly as it arrived.
type APIRequest struct {
	Method     string
	RequestURI string      // the request target as sent, e.g. "/v1/echo/a%2Fb?x=1"
	Path       string      // escaped path (r.URL.EscapedPath()): "%2F" stays "%2F"
	RawQuery   string      // query without "?"
	Header     http.Header // includes Authorization; Host is in Host
	Host       string
	Body       []byte // up to 10 MiB
}

// TokenRequest is what the simulated token endpoint received.
type TokenRequest struct {
	Header http.Header
	Form   url.Values // the form body, including client_secret when sent there
	// ClientAuth is how the client authenticated: "header" (HTTP Basic),
	// "body", or "" when it sent no credentials.
	ClientAuth string
	// ClientID is the client id presented, from either place.
	ClientID string
}

// issued is an access token the simulator handed out.
type issued struct {
	id       string // token id (a JWT's jti)
	created  time.Time
	expiry   time.Time
	clientID string
	scope    string
	audience string // audience or resource parameter, if any
	refresh  string // the refresh token issued with it, if any
	subject  string // the person it stands for (SCAYLE customers); "" for the client
}

// maxRecordedBody bounds the request body a simulator keeps.
const maxRecordedBody = 10 << 20

// core is the state and fault switches every simulator shares.
type core struct {
	opts   SimOptions
	server *httptest.Server
	done   chan struct{} // closed by Close: ends latencies and streams
	closer sync.Once
	stream chan struct{} // StreamStep signals

	// jwtKey signs access tokens as HS256 JWTs; nil: opaque tokens.
	jwtKey []byte

	lifetime     atomic.Int64 // nanoseconds; <= 0: permanent tokens
	jwtLifetime  atomic.Int64 // nanoseconds; caps a JWT's exp; 0: none
	tokenLatency atomic.Int64 // nanoseconds
	apiLatency   atomic.Int64 // nanoseconds
	tokenCount   atomic.Int64
	apiCount     atomic.Int64
	refreshCount atomic.Int64
	reuseCount   atomic.Int64
	consentCount atomic.Int64

	mu            sync.Mutex // guards everything below
	tokens        map[string]issued
	refreshTokens map[string]refreshGrant
	codes         map[string]codeGrant
	tokenFail     fault
	apiFail       fault
	lastAPI       *APIRequest
	lastToken     *TokenRequest
	window        time.Time // start of the current rate-limit second
	windowCount   int       // API requests in it
	latestIssued  string    // the access token issued last
	latestUsed    bool      // latestIssued was presented to the API

	gate               tokenGate    // see HoldTokenRequests
	tokenResponseDelay atomic.Int64 // nanoseconds; see SetTokenResponseDelay
}

// fault answers the next n requests with status (n < 0: until cleared).
type fault struct {
	status int
	n      int
}

// take reports the status to fail this request with, or 0.
func (f *fault) take() int {
	if f.status == 0 || f.n == 0 {
		return 0
	}
	if f.n > 0 {
		f.n--
	}
	return f.status
}

func newCore(opts SimOptions) *core {
	c := &core{
		opts:          opts,
		done:          make(chan struct{}),
		stream:        make(chan struct{}, 64),
		tokens:        make(map[string]issued),
		refreshTokens: make(map[string]refreshGrant),
		codes:         make(map[string]codeGrant),
		latestUsed:    true,
	}
	c.lifetime.Store(int64(opts.TokenLifetime))
	c.tokenLatency.Store(int64(opts.TokenLatency))
	c.apiLatency.Store(int64(opts.APILatency))
	if opts.RefreshToken != "" {
		c.refreshTokens[opts.RefreshToken] = refreshGrant{clientID: opts.ClientID}
	}
	return c
}

// start serves h on 127.0.0.1.
func (c *core) start(h http.Handler) {
	c.server = httptest.NewServer(h)
}

// URL returns the simulator's base URL (http://127.0.0.1:port).
func (c *core) URL() string { return c.server.URL }

// Close ends pending latencies and streams, then stops the server.
func (c *core) Close() {
	c.closer.Do(func() {
		close(c.done)
		c.server.Close()
	})
}

// SetLifetime changes the lifetime of access tokens issued from now on
// (the stated expires_in and, for JWTs, the exp claim).
func (c *core) SetLifetime(d time.Duration) { c.lifetime.Store(int64(d)) }

// SetJWTLifetime makes the exp of JWT access tokens issued from now on come
// d after issue when that is sooner than their lifetime, while expires_in
// still states the lifetime; the token dies at its exp. 0 restores exp =
// lifetime. No effect on simulators with opaque tokens.
func (c *core) SetJWTLifetime(d time.Duration) { c.jwtLifetime.Store(int64(d)) }

// SetTokenLatency delays every token response by d (0: none).
func (c *core) SetTokenLatency(d time.Duration) { c.tokenLatency.Store(int64(d)) }

// SetAPILatency delays every API response by d (0: none).
func (c *core) SetAPILatency(d time.Duration) { c.apiLatency.Store(int64(d)) }

// FailTokenRequests answers the next n token requests with status
// (n < 0: every one until FailTokenRequests(0, 0)). 429 and 503 carry
// Retry-After: 1.
func (c *core) FailTokenRequests(status, n int) {
	c.mu.Lock()
	c.tokenFail = fault{status: status, n: n}
	c.mu.Unlock()
}

// FailAPIRequests answers the next n API requests with status (n < 0:
// every one until FailAPIRequests(0, 0)), before checking the token. 429
// and 503 carry Retry-After: 1.
func (c *core) FailAPIRequests(status, n int) {
	c.mu.Lock()
	c.apiFail = fault{status: status, n: n}
	c.mu.Unlock()
}

// RevokeAll invalidates every access token issued so far: the API answers
// 401 to them.
func (c *core) RevokeAll() {
	c.mu.Lock()
	clear(c.tokens)
	c.mu.Unlock()
}

// ExpireAll makes every access token issued so far expired: the API
// answers 401 to them, as it would once their lifetime ran out.
func (c *core) ExpireAll() {
	c.mu.Lock()
	past := time.Now().Add(-time.Second)
	for k, t := range c.tokens {
		t.expiry = past
		c.tokens[k] = t
	}
	c.mu.Unlock()
}

// TokenRequests counts requests that reached the token endpoint.
func (c *core) TokenRequests() int64 { return c.tokenCount.Load() }

// RefreshRequests counts refresh_token grants that reached the token
// endpoint, successful or not.
func (c *core) RefreshRequests() int64 { return c.refreshCount.Load() }

// RefreshReuse counts refresh tokens presented again after a rotation had
// already used them up: a client that loses a rotated refresh token, or
// two replicas refreshing at once, shows up here. Tests assert it stays 0.
func (c *core) RefreshReuse() int64 { return c.reuseCount.Load() }

// ConsentRequests counts requests that reached the consent page.
func (c *core) ConsentRequests() int64 { return c.consentCount.Load() }

// APIRequests counts requests that reached the API.
func (c *core) APIRequests() int64 { return c.apiCount.Load() }

// LastAPIRequest returns a copy of the last request the API received, or
// nil when none has arrived.
func (c *core) LastAPIRequest() *APIRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastAPI == nil {
		return nil
	}
	r := *c.lastAPI
	r.Header = r.Header.Clone()
	r.Body = append([]byte(nil), r.Body...)
	return &r
}

// LastTokenRequest returns a copy of the last request the token endpoint
// received, or nil when none has arrived.
func (c *core) LastTokenRequest() *TokenRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastToken == nil {
		return nil
	}
	r := *c.lastToken
	r.Header = r.Header.Clone()
	r.Form = cloneValues(r.Form)
	return &r
}

// StreamStep lets one waiting chunk of a /v1/stream?step=1 response go out
// (up to 64 steps are buffered).
func (c *core) StreamStep() {
	select {
	case c.stream <- struct{}{}:
	case <-c.done:
	}
}

// wait sleeps for the latency stored in d, or until the request or the
// simulator ends. It reports whether the request should still be served.
func (c *core) wait(ctx context.Context, d *atomic.Int64) bool {
	delay := time.Duration(d.Load())
	if delay <= 0 {
		return true
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-c.done:
	}
	return false
}

// issue mints an access token for clientID.
func (c *core) issue(clientID, scope, audience string) (string, time.Duration) {
	return c.issueToken(issued{clientID: clientID, scope: scope, audience: audience})
}

// issueToken mints the access token t describes (its id, created and
// expiry are filled in here) and returns it with the lifetime to state: 0
// for a permanent token. With a JWT key the token is an HS256 JWT that
// dies at its exp (see SetJWTLifetime).
func (c *core) issueToken(t issued) (string, time.Duration) {
	lifetime := time.Duration(c.lifetime.Load())
	now := time.Now()
	t.id, t.created, t.expiry = randomToken()[:16], now, permanent()
	if lifetime > 0 {
		t.expiry = now.Add(lifetime)
	}
	tok := randomToken()
	if c.jwtKey != nil {
		if d := time.Duration(c.jwtLifetime.Load()); d > 0 && now.Add(d).Before(t.expiry) {
			t.expiry = now.Add(d)
		}
		t.expiry = time.Unix(t.expiry.Unix(), 0) // exp has whole seconds
		tok = c.signJWT(t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tokens) >= 4096 {
		for k, old := range c.tokens {
			if now.After(old.expiry) {
				delete(c.tokens, k)
			}
		}
	}
	c.tokens[tok] = t
	c.noteIssuedLocked(tok)
	return tok, max(lifetime, 0)
}

// lookup finds a live access token; expired reports a known but expired one.
func (c *core) lookup(token string) (t issued, ok, expired bool) {
	c.mu.Lock()
	t, known := c.tokens[token]
	c.mu.Unlock()
	switch {
	case !known:
		return issued{}, false, false
	case !time.Now().Before(t.expiry):
		return issued{}, false, true
	}
	return t, true, false
}

// unknownScope returns the consent problem for the first of scopes that is
// not in known, or "".
func unknownScope(known, scopes []string) string {
	for _, sc := range scopes {
		if !slices.Contains(known, sc) {
			return "unknown scope " + strconv.Quote(sc)
		}
	}
	return ""
}
