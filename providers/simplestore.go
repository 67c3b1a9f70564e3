package providers

import (
	"context"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// SimpleStore (docs.simplestore.io): client credentials, form body with
// grant_type, client_id and client_secret; the token lives 60 minutes.
const (
	simpleStoreTokenURL = "https://auth.simplestore.io/connect/token"
	simpleStoreAPIURL   = "https://api.simplestore.io"
	// simpleStoreLifetime is the documented token lifetime, assumed when a
	// response states none.
	simpleStoreLifetime = 60 * time.Minute
)

func simpleStorePlatform() *platform {
	return &platform{
		name:         "simplestore",
		tokenURL:     simpleStoreTokenURL,
		apiURL:       simpleStoreAPIURL,
		usesTokenURL: true,
		check:        checkSimpleStore,
		source:       newSimpleStoreSource,
	}
}

// checkSimpleStore requires the client credentials. Scopes and token_params
// are optional extras (the documentation shows none).
func checkSimpleStore(c *checker) {
	c.required("client_id", c.t.ClientID)
	c.required("client_secret", string(c.t.ClientSecret))
	c.clientAuth()
	c.scopes()
	c.tokenParams("grant_type", "client_id", "client_secret", "scope")
	if c.t.Grant != "" && c.t.Grant != grantClientCredentials {
		c.add("grant", "simplestore supports only client_credentials")
	}
}

// simpleStoreSource requests a SimpleStore token on every call. It reads
// expires_in and the documentation's spelling expiries_in, and assumes the
// documented 60 minutes when neither is present. Safe for concurrent use.
type simpleStoreSource struct {
	endpoint *tokenEndpoint
	form     url.Values // never modified after construction
	creds    credentials
}

func newSimpleStoreSource(r *resolved, env sourceEnv) ContextTokenSource {
	t := r.t
	secret := string(t.ClientSecret)
	form := url.Values{"grant_type": {grantClientCredentials}}
	if len(t.Scopes) > 0 {
		form.Set("scope", strings.Join(t.Scopes, " "))
	}
	for k, vs := range r.tokenParams() {
		form[k] = vs
	}
	endpoint := r.tokenEndpoint(env, secret)
	endpoint.defaultLifetime = simpleStoreLifetime
	return &simpleStoreSource{
		endpoint: endpoint,
		form:     form,
		// The documentation sends the credentials in the body; its
		// IdentityServer-style endpoint also takes HTTP Basic.
		creds: credentials{id: t.ClientID, secret: secret, inHeader: t.ClientAuth == clientAuthHeader},
	}
}

// Token performs one token request.
func (s *simpleStoreSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext performs one token request bounded by ctx.
func (s *simpleStoreSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	return s.endpoint.request(ctx, s.form, s.creds)
}
