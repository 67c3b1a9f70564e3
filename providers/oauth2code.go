package providers

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// NewPKCEVerifier returns a new PKCE code verifier (RFC 7636: 32 random
// octets, base64url) for Consent.PKCEVerifier. Use one per consent flow.
func NewPKCEVerifier() string {
	return oauth2.GenerateVerifier()
}

// oauth2AuthCode is the generic provider's authorization_code grant
// (RFC 6749 section 4.1 with PKCE S256, RFC 7636). Safe for concurrent use;
// refreshes are serialised.
//
// Consent URL: golang.org/x/oauth2's AuthCodeURL (response_type=code,
// client_id, redirect_uri, scope space-joined, state, code_challenge,
// code_challenge_method=S256) appended to auth_url, whose own query is
// kept: parameters the consent page needs beyond these (Auth0's audience,
// prompt, …) go there. token_params go to the token requests only.
//
// Exchange: x/oauth2's Exchange with the PKCE verifier. Refresh: the
// refresh_token grant, with token_params and without scope (so the grant
// keeps the scope the person approved). A server that rotates refresh
// tokens gets its new one returned; when it sends none, the one used is
// kept in the result. Expiry is the earlier of expires_in and, for a JWT
// access token, its exp.
type oauth2AuthCode struct {
	provider string
	client   *http.Client // bodies limited (limitBodies)
	log      *zap.Logger
	secret   string // client secret, scrubbed from error text
	conf     *oauth2.Config
	params   url.Values // token_params; never modified after construction

	mu      sync.Mutex                // guards refresh.EndpointParams
	refresh *clientcredentials.Config // the refresh_token grant
}

func newOAuth2AuthCode(r *resolved, env sourceEnv) AuthCode {
	t := r.t
	secret := string(t.ClientSecret)
	params := r.tokenParams()
	style := authStyle(t.ClientAuth)
	refreshParams := cloneValues(params)
	refreshParams.Set("grant_type", grantRefreshToken)
	return &oauth2AuthCode{
		provider: r.p.name,
		client:   limitBodies(env.client),
		log:      env.log,
		secret:   secret,
		conf: &oauth2.Config{
			ClientID:     t.ClientID,
			ClientSecret: secret,
			Endpoint:     oauth2.Endpoint{AuthURL: r.authURL.String(), TokenURL: r.tokenURL.String(), AuthStyle: style},
			Scopes:       slices.Clone(t.Scopes),
		},
		params: params,
		refresh: &clientcredentials.Config{
			ClientID:       t.ClientID,
			ClientSecret:   secret,
			TokenURL:       r.tokenURL.String(),
			EndpointParams: refreshParams,
			AuthStyle:      style,
		},
	}
}

// ConsentURL returns the consent page for c; c.PKCEVerifier is required.
func (p *oauth2AuthCode) ConsentURL(c Consent) (string, error) {
	if err := checkConsent(p.provider, c); err != nil {
		return "", err
	}
	if c.PKCEVerifier == "" {
		return "", noVerifier()
	}
	return p.conf.AuthCodeURL(c.State, oauth2.S256ChallengeOption(c.PKCEVerifier),
		oauth2.SetAuthURLParam("redirect_uri", c.RedirectURL)), nil
}

// noVerifier is the error for a consent flow without a PKCE verifier.
func noVerifier() error {
	return &TokenError{Provider: "oauth2", Code: "invalid_request",
		Description: "the consent flow has no PKCE verifier (see NewPKCEVerifier)"}
}

// CallbackState returns the state parameter.
func (p *oauth2AuthCode) CallbackState(q url.Values) (string, error) {
	return q.Get("state"), nil
}

// Exchange trades code for tokens, proving the PKCE verifier.
func (p *oauth2AuthCode) Exchange(ctx context.Context, code string, c Consent) (*oauth2.Token, error) {
	if code == "" {
		return nil, missingCode(p.provider)
	}
	if c.PKCEVerifier == "" {
		return nil, noVerifier()
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.VerifierOption(c.PKCEVerifier),
		oauth2.SetAuthURLParam("redirect_uri", c.RedirectURL),
	}
	for k := range p.params {
		opts = append(opts, oauth2.SetAuthURLParam(k, p.params.Get(k)))
	}
	start := timeNow()
	tok, err := p.conf.Exchange(context.WithValue(ctx, oauth2.HTTPClient, p.client), code, opts...)
	return p.issued(tok, err, start, []string{p.secret, code, c.PKCEVerifier})
}

// Refresh gets a new token with refreshToken.
func (p *oauth2AuthCode) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	if refreshToken == "" {
		return nil, noRefreshToken(p.provider)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refresh.EndpointParams.Set("refresh_token", refreshToken)
	defer p.refresh.EndpointParams.Del("refresh_token")
	start := timeNow()
	tok, err := p.refresh.Token(context.WithValue(ctx, oauth2.HTTPClient, p.client))
	tok, err = p.issued(tok, err, start, []string{p.secret, refreshToken})
	if err != nil {
		return nil, refused(err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return tok, nil
}

// issued checks and logs the outcome of one x/oauth2 token request; every
// failure becomes a *TokenError scrubbed of secrets.
func (p *oauth2AuthCode) issued(tok *oauth2.Token, err error, start time.Time, secrets []string) (*oauth2.Token, error) {
	return issuedByOAuth2(p.provider, p.log, tok, err, start, secrets)
}
