package providers

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sidekey/sidekey/config"
)

// Grants of the generic oauth2 provider (config grant).
const (
	grantClientCredentials = "client_credentials"
	grantRefreshToken      = "refresh_token"
)

// oauth2Platform is any RFC 6749 API: token_url and api_url (and auth_url
// for the authorization_code grant) have no defaults.
func oauth2Platform() *platform {
	return &platform{
		name:         "oauth2",
		usesTokenURL: true,
		consent:      func(t *config.Tenant) bool { return t.Grant == grantAuthorizationCode },
		check:        checkOAuth2,
		source:       newOAuth2Source,
		authCode:     newOAuth2AuthCode,
	}
}

func checkOAuth2(c *checker) {
	t := c.t
	c.required("client_id", t.ClientID)
	switch t.Grant {
	case "", grantClientCredentials:
		c.required("client_secret", string(t.ClientSecret))
	case grantRefreshToken:
		// A public client may refresh without a secret.
		c.required("refresh_token", string(t.RefreshToken))
	case grantAuthorizationCode:
		// A public client may use PKCE without a secret; auth_url is
		// required through the platform's consent.
	default:
		c.add("grant", "must be client_credentials, refresh_token or authorization_code")
	}
	c.clientAuth()
	c.scopes()
	c.tokenParams("grant_type", "client_id", "client_secret", "scope", "refresh_token", "code", "redirect_uri", "code_verifier")
}

// oauth2Source performs one RFC 6749 token request per call through
// golang.org/x/oauth2/clientcredentials: the client_credentials grant, or
// the refresh_token grant by overriding grant_type (which clientcredentials
// allows for this purpose), so scopes and token_params (audience,
// resource, ...) are sent with either grant.
//
// The lifetime comes from expires_in (a number or a numeric string); when
// it is missing the token's Expiry is zero, which the engine treats as
// permanent until the API answers 401. Safe for concurrent use;
// refresh_token requests are serialised, since a rotated refresh token must
// not be used by two requests at once.
type oauth2Source struct {
	provider string
	client   *http.Client
	log      *zap.Logger
	secret   string // client secret, scrubbed from error text
	refresh  bool   // refresh_token grant

	mu   sync.Mutex                // guards conf.EndpointParams and refreshToken (refresh grant only)
	conf *clientcredentials.Config // read-only for the client_credentials grant
	// refreshToken is the latest refresh token. A rotated one is kept in
	// memory only for now: persisting it (invariant 3) is the persist
	// wrapper's job, and until that exists a restart falls back to the
	// configured refresh token.
	refreshToken string
}

func newOAuth2Source(r *resolved, env sourceEnv) ContextTokenSource {
	t := r.t
	params := r.tokenParams()
	s := &oauth2Source{
		provider: r.p.name,
		client:   limitBodies(env.client),
		log:      env.log,
		secret:   string(t.ClientSecret),
		refresh:  t.Grant == grantRefreshToken,
	}
	if s.refresh {
		params.Set("grant_type", grantRefreshToken)
		s.refreshToken = string(t.RefreshToken)
	}
	s.conf = &clientcredentials.Config{
		ClientID:       t.ClientID,
		ClientSecret:   s.secret,
		TokenURL:       r.tokenURL.String(),
		Scopes:         slices.Clone(t.Scopes),
		EndpointParams: params,
		AuthStyle:      authStyle(t.ClientAuth),
	}
	return s
}

// authStyle maps config client_auth to x/oauth2. Auto-detection tries HTTP
// Basic first and, after any failure, the form body; it remembers the style
// that worked. A rejected client therefore costs two requests.
func authStyle(clientAuth string) oauth2.AuthStyle {
	switch clientAuth {
	case clientAuthHeader:
		return oauth2.AuthStyleInHeader
	case clientAuthBody:
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleAutoDetect
}

// Token performs one token request.
func (s *oauth2Source) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext performs one token request bounded by ctx. Every failure is
// a *TokenError.
func (s *oauth2Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if s.refresh {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.conf.EndpointParams.Set("refresh_token", s.refreshToken)
	}
	secrets := []string{s.secret, s.refreshToken}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	start := timeNow()
	tok, err := s.conf.Token(ctx)
	if err == nil {
		err = checkIssued(tok, start)
	}
	if err != nil {
		te := fromOAuth2Error(s.provider, err, append(secrets, tokenSecrets(tok)...))
		describe(te)
		logFailure(s.log, te, start)
		return nil, te
	}
	tok.Expiry = capExpiry(tok.AccessToken, tok.Expiry, start, s.log)
	rotated := false
	if s.refresh && tok.RefreshToken != "" && tok.RefreshToken != s.refreshToken {
		s.refreshToken = tok.RefreshToken
		rotated = true
	}
	var lifetime time.Duration
	if !tok.Expiry.IsZero() {
		lifetime = tok.Expiry.Sub(start)
	}
	s.log.Debug("token issued", zap.Duration("duration", timeNow().Sub(start)),
		zap.Duration("lifetime", lifetime), zap.Bool("stated_lifetime", !tok.Expiry.IsZero()),
		zap.Bool("refresh_token_rotated", rotated))
	return tok, nil
}

// checkIssued rejects what x/oauth2 accepts but sidekey cannot use: a token
// that cannot go into a header, or a negative lifetime.
func checkIssued(tok *oauth2.Token, start time.Time) error {
	switch {
	case !validHeaderValue(tok.AccessToken):
		return invalidResponse("access_token contains control characters")
	case !tok.Expiry.IsZero() && tok.Expiry.Before(start):
		return invalidResponse("expires_in is negative")
	}
	return nil
}

// invalidResponse is an unusable 2xx answer, in the form fromOAuth2Error
// turns into an invalid_response TokenError.
type invalidResponse string

func (e invalidResponse) Error() string { return string(e) }

// tokenSecrets lists a token's credentials, to scrub them from error text.
func tokenSecrets(tok *oauth2.Token) []string {
	if tok == nil {
		return nil
	}
	return []string{tok.AccessToken, tok.RefreshToken}
}
