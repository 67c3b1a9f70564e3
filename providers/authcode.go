package providers

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// AuthCode is implemented by the providers whose tenants are connected by a
// person through a consent page (istores, storehippo, scayle, and oauth2
// with grant authorization_code). It has no state of its own: the server
// keeps the consent state and the token store keeps the tokens. Methods are
// safe for concurrent use.
type AuthCode interface {
	// ConsentURL returns the platform's consent page for c, built exactly
	// as the platform documents it (see DESIGN.md).
	ConsentURL(c Consent) (string, error)
	// CallbackState extracts sidekey's state nonce from the callback's
	// query: the plain `state` parameter for most platforms; for SCAYLE the
	// base64 JSON of the consent JWT's payload, whose clientId must match
	// and whose nonce claim is returned. "" with a nil error means the
	// callback carries no state (Istores documents none).
	CallbackState(q url.Values) (string, error)
	// Exchange trades the callback's code for tokens, exactly as the
	// platform wants the request (form, JSON, Basic auth…). c is the same
	// Consent that built the consent URL.
	Exchange(ctx context.Context, code string, c Consent) (*oauth2.Token, error)
	// Refresh uses refreshToken to get a new token. A rotating platform
	// (SCAYLE) returns a new refresh token in the result, and the old one
	// is dead from then on. Platforms without a refresh grant (Istores)
	// return an error matching ErrConsentRequired. A refused refresh token
	// (invalid_grant) also matches ErrConsentRequired.
	Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error)
}

// Revoker is implemented by providers that can revoke a tenant's tokens on
// disconnect (SCAYLE's logout).
type Revoker interface {
	// Revoke revokes tok's whole grant: its access token and its refresh
	// token. A *TokenError with Status 401 means tok's access token is
	// dead: refresh it, store the result, and call Revoke again.
	Revoke(ctx context.Context, tok *oauth2.Token) error
}

// Consent is one consent flow in progress.
type Consent struct {
	// State is sidekey's random nonce for this flow (single use, 10 minutes).
	State string
	// RedirectURL is {public_url}/_sidekey/oauth/callback.
	RedirectURL string
	// PKCEVerifier is the PKCE code verifier (S256). The oauth2 provider
	// requires it; platforms without PKCE ignore it.
	PKCEVerifier string
	// Now is the flow's start, used for iat/exp of SCAYLE's consent JWT.
	Now time.Time
}

// ErrConsentRequired means the tenant needs a person to connect it (again):
// it has no refresh grant, or its refresh token was refused.
var ErrConsentRequired = errors.New("consent required")

// codeClient is what the Istores and StoreHippo consent flows share: the
// consent page, the client, its scopes and the token endpoint.
type codeClient struct {
	authURL  *url.URL
	clientID string
	scopes   string     // joined as the platform wants
	params   url.Values // token_params; never modified after construction
	endpoint *tokenEndpoint
	creds    credentials
}

// newCodeClient builds a codeClient whose scopes are joined with sep and
// whose token requests are JSON (asJSON) or a form.
func newCodeClient(r *resolved, env sourceEnv, sep string, asJSON bool) codeClient {
	t := r.t
	secret := string(t.ClientSecret)
	params := r.tokenParams()
	endpoint := r.tokenEndpoint(env, secret)
	endpoint.json = asJSON
	return codeClient{
		authURL:  r.authURL,
		clientID: t.ClientID,
		scopes:   strings.Join(t.Scopes, sep),
		params:   params,
		endpoint: endpoint,
		creds:    credentials{id: t.ClientID, secret: secret},
	}
}
