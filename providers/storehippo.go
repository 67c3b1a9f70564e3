package providers

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// StoreHippo (help.storehippo.com, "OAuth - Authentication"): a person
// approves the app on the store's admin, and the code is exchanged once for
// a permanent access token and a refresh token. Every endpoint lives on the
// store's own host, {store}.storehippo.com.
const (
	storeHippoAuthURL  = "https://{store}.storehippo.com/admin/oauth/authorization"
	storeHippoTokenURL = "https://{store}.storehippo.com/admin/oauth/token"
	storeHippoAPIURL   = "https://{store}.storehippo.com/api/1.1"
)

func storeHippoPlatform() *platform {
	return &platform{
		name:         "storehippo",
		authURL:      storeHippoAuthURL,
		tokenURL:     storeHippoTokenURL,
		apiURL:       storeHippoAPIURL,
		usesTokenURL: true,
		consent:      always,
		check:        checkStoreHippo,
		authCode:     newStoreHippo,
	}
}

// checkStoreHippo requires the store (it names every endpoint's host, even
// when all are overridden, so that one config reads the same everywhere)
// and the client credentials.
func checkStoreHippo(c *checker) {
	c.label("store", c.t.Store)
	c.required("client_id", c.t.ClientID)
	c.required("client_secret", string(c.t.ClientSecret))
	if len(c.t.Scopes) == 0 {
		c.add("scopes", "required (e.g. [read_products])")
	}
	c.scopes()
	for i, s := range c.t.Scopes {
		if strings.Contains(s, ",") {
			c.add(fmt.Sprintf("scopes[%d]", i), "must not contain a comma (storehippo joins scopes with commas)")
		}
	}
	c.tokenParams("grant_type", "client_id", "client_secret", "code", "redirect_uri", "refresh_token")
	checkConsentGrant(c, "storehippo")
}

// storeHippo is the StoreHippo consent flow. Safe for concurrent use.
//
// Consent URL: auth_url?client_id&scope=a,b&redirect_uri&state, as
// documented. Token request: a form with client_id, client_secret, code,
// redirect_uri and grant_type=authorization_code; the answer
// {access_token, refresh_token} states no lifetime, so Expiry is zero
// (permanent until the API answers 401).
//
// Refresh: StoreHippo documents a refresh token but not its grant; sidekey
// sends the RFC 6749 section 6 form (grant_type=refresh_token,
// refresh_token, client_id, client_secret) and keeps the refresh token it
// used when the answer carries none. A refused refresh matches
// ErrConsentRequired.
type storeHippo struct{ codeClient }

func newStoreHippo(r *resolved, env sourceEnv) AuthCode {
	return &storeHippo{newCodeClient(r, env, ",", false)}
}

// ConsentURL returns the store's authorization URL for c.
func (p *storeHippo) ConsentURL(c Consent) (string, error) {
	if err := checkConsent("storehippo", c); err != nil {
		return "", err
	}
	q := url.Values{
		"client_id":    {p.clientID},
		"redirect_uri": {c.RedirectURL},
		"state":        {c.State},
	}
	if p.scopes != "" {
		q.Set("scope", p.scopes)
	}
	return withQuery(p.authURL, q), nil
}

// CallbackState returns the state parameter.
func (p *storeHippo) CallbackState(q url.Values) (string, error) {
	return q.Get("state"), nil
}

// Exchange trades code for a permanent access token and a refresh token.
func (p *storeHippo) Exchange(ctx context.Context, code string, c Consent) (*oauth2.Token, error) {
	if code == "" {
		return nil, missingCode("storehippo")
	}
	params := cloneValues(p.params)
	params.Set("grant_type", grantAuthorizationCode)
	params.Set("code", code)
	params.Set("redirect_uri", c.RedirectURL)
	return p.endpoint.request(ctx, params, p.creds)
}

// Refresh gets a new access token with refreshToken.
func (p *storeHippo) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return refreshWith(ctx, p.endpoint, p.params, refreshToken, p.creds)
}
