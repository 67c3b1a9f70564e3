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
// The refresh_token grant presents the stored refresh token (fetchWith,
// through Tenant.Fetch): the configured refresh_token is only the seed used
// while the store holds none, so a rotated refresh token survives restarts
// and is shared by replicas (invariant 3).
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
	seed     string // the configured refresh token (refresh grant)

	mu   sync.Mutex                // guards conf.EndpointParams and latest (refresh grant only)
	conf *clientcredentials.Config // read-only for the client_credentials grant
	// latest is the last refresh token this source saw, for TokenContext
	// used on its own (without a store); the engine uses fetchWith.
	latest string
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
		s.seed = string(t.RefreshToken)
		s.latest = s.seed
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

// TokenContext performs one token request bounded by ctx; the refresh
// grant presents the last refresh token this source saw. Every failure is
// a *TokenError.
func (s *oauth2Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if !s.refresh {
		return s.request(ctx, "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.request(ctx, s.latest)
}

// fetchWith performs one token request for the stored token prev (nil:
// none): the refresh grant presents prev's refresh token, or the
// configured one when prev has none.
func (s *oauth2Source) fetchWith(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error) {
	if !s.refresh {
		return s.request(ctx, "")
	}
	rt := s.seed
	if prev != nil && prev.RefreshToken != "" {
		rt = prev.RefreshToken
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.request(ctx, rt)
}

// request performs one token request; refreshToken is presented with the
// refresh grant (s.mu held).
func (s *oauth2Source) request(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	if s.refresh {
		s.conf.EndpointParams.Set("refresh_token", refreshToken)
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	start := timeNow()
	tok, err := s.conf.Token(ctx)
	tok, err = issuedByOAuth2(s.provider, s.log, tok, err, start, []string{s.secret, refreshToken})
	if err != nil {
		return nil, err
	}
	if s.refresh {
		if tok.RefreshToken == "" {
			tok.RefreshToken = refreshToken
		}
		s.latest = tok.RefreshToken
	}
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
