package providers

import (
	"context"
	"net/url"

	"golang.org/x/oauth2"
)

// Istores (apidocs.istores.co.il, "Istores SSO Integration"): a person
// approves the app at nova.istores.co.il/oauth/authorize, and the code is
// exchanged at /oauth/token for a JWT access token. There is no refresh
// grant: when the token runs out, the tenant needs consent again.
const (
	istoresAuthURL  = "https://nova.istores.co.il/oauth/authorize"
	istoresTokenURL = "https://nova.istores.co.il/oauth/token"
	istoresAPIURL   = "https://api.istores.co.il"
)

func istoresPlatform() *platform {
	return &platform{
		name:         "istores",
		authURL:      istoresAuthURL,
		tokenURL:     istoresTokenURL,
		apiURL:       istoresAPIURL,
		usesTokenURL: true,
		consent:      always,
		check:        checkIstores,
		authCode:     newIstores,
	}
}

func checkIstores(c *checker) {
	c.required("client_id", c.t.ClientID)
	c.required("client_secret", string(c.t.ClientSecret))
	if len(c.t.Scopes) == 0 {
		c.add("scopes", "required (e.g. [products:read])")
	}
	c.scopes()
	c.tokenParams("grant_type", "client_id", "client_secret", "code", "redirect_uri")
	checkConsentGrant(c, "istores")
}

// istores is the Istores consent flow. Safe for concurrent use.
//
// Consent URL: auth_url?client_id&redirect_uri&response_type=code&scopes,
// as documented, plus state: Istores documents none, but unknown
// parameters are echoed back by convention, and the server accepts a
// callback without one (DESIGN.md). The documentation's example has a
// single scope; several are joined with spaces, the RFC 6749 way.
//
// Token request: the documentation lists client_id, client_secret and code
// without naming an encoding; its API takes JSON everywhere, so they go as
// a JSON object, together with grant_type=authorization_code and
// redirect_uri, which RFC 6749 requires and a server that does not need
// them ignores. The response is {access_token: JWT, token_type,
// expires_in: 36000000}; the token's Expiry is the earlier of expires_in
// and the JWT's exp.
type istores struct{ codeClient }

func newIstores(r *resolved, env sourceEnv) AuthCode {
	return &istores{newCodeClient(r, env, " ", true)}
}

// CanRefresh is false: Istores has no refresh grant, so the engine never
// tries to refresh its token (see Tenant.CanRefresh).
func (p *istores) CanRefresh() bool { return false }

// ConsentURL returns the Istores authorization URL for c.
func (p *istores) ConsentURL(c Consent) (string, error) {
	if err := checkConsent("istores", c); err != nil {
		return "", err
	}
	q := url.Values{
		"client_id":     {p.clientID},
		"redirect_uri":  {c.RedirectURL},
		"response_type": {"code"},
		"state":         {c.State},
	}
	if p.scopes != "" {
		q.Set("scopes", p.scopes)
	}
	return withQuery(p.authURL, q), nil
}

// CallbackState returns the state parameter, "" when Istores sent none.
func (p *istores) CallbackState(q url.Values) (string, error) {
	return q.Get("state"), nil
}

// CallbackMayOmitState is true: Istores documents no state parameter, so
// its callback may come back without one (see CallbackMayOmitState).
func (p *istores) CallbackMayOmitState() bool { return true }

// Exchange trades code for an access token (no refresh token).
func (p *istores) Exchange(ctx context.Context, code string, c Consent) (*oauth2.Token, error) {
	if code == "" {
		return nil, missingCode("istores")
	}
	params := cloneValues(p.params)
	params.Set("grant_type", grantAuthorizationCode)
	params.Set("code", code)
	params.Set("redirect_uri", c.RedirectURL)
	return p.endpoint.request(ctx, params, p.creds)
}

// Refresh always fails with an error matching ErrConsentRequired: Istores
// documents no refresh grant.
func (p *istores) Refresh(context.Context, string) (*oauth2.Token, error) {
	return nil, noRefreshGrant("istores")
}
