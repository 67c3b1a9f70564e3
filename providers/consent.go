package providers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Grant of consent-flow tenants (config grant).
const grantAuthorizationCode = "authorization_code"

// checkConsent checks what every consent URL needs from c.
func checkConsent(provider string, c Consent) error {
	if c.State == "" {
		return fmt.Errorf("providers: %s: consent needs a state", provider)
	}
	u, err := url.Parse(c.RedirectURL)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("providers: %s: consent needs an absolute redirect URL", provider)
	}
	return nil
}

// withQuery returns base with params added to the query it already has.
func withQuery(base *url.URL, params url.Values) string {
	u := *base
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// missingCode is the error for a callback without a code.
func missingCode(provider string) error {
	return &TokenError{Provider: provider, Code: "invalid_request", Description: "the callback carries no code"}
}

// refused marks err, from a refresh, as requiring consent when the
// platform refused the refresh token: invalid_grant in any case (SCAYLE
// writes INVALID_GRANT), a code saying the grant cannot be used
// (unsupported_grant_type, unauthorized_client), or any other 400 or 401
// unless it blames the client's own credentials (invalid_client: the
// configuration must change, not the consent). It returns err.
func refused(err error) error {
	var te *TokenError
	if !errors.As(err, &te) {
		return err
	}
	switch strings.ToLower(te.Code) {
	case "invalid_grant", "unsupported_grant_type", "unauthorized_client":
		te.ConsentRequired = true
	case "invalid_client":
	default:
		te.ConsentRequired = te.Status == 400 || te.Status == 401
	}
	return err
}

// noRefreshGrant is Refresh's answer on a platform without a refresh
// grant.
func noRefreshGrant(provider string) error {
	return &TokenError{
		Provider:        provider,
		Code:            "unsupported_grant_type",
		Description:     provider + " has no refresh grant: a person must connect the tenant again",
		ConsentRequired: true,
	}
}

// checkConsentGrant rejects config keys a consent-flow platform does not
// use in the way the config suggests.
func checkConsentGrant(c *checker, provider string) {
	if g := c.t.Grant; g != "" && g != grantAuthorizationCode {
		c.add("grant", "%s supports only authorization_code", provider)
	}
	if c.t.ClientAuth != "" {
		c.add("client_auth", "not used by %s (it authenticates the client as its documentation says)", provider)
	}
}

// refreshWith performs a refresh_token grant at e: it marks a refused
// refresh token (see refused) and keeps refreshToken in the result when the
// platform sends no new one.
func refreshWith(ctx context.Context, e *tokenEndpoint, extra url.Values, refreshToken string, creds credentials) (*oauth2.Token, error) {
	if refreshToken == "" {
		return nil, noRefreshToken(e.provider)
	}
	params := cloneValues(extra)
	params.Set("grant_type", grantRefreshToken)
	params.Set("refresh_token", refreshToken)
	tok, err := e.request(ctx, params, creds)
	if err != nil {
		return nil, refused(err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return tok, nil
}

// noRefreshToken is Refresh's answer when there is no refresh token to use.
func noRefreshToken(provider string) error {
	return &TokenError{Provider: provider, Code: "invalid_grant",
		Description: "no refresh token: a person must connect the tenant again", ConsentRequired: true}
}
