package providers

import (
	"context"

	"golang.org/x/oauth2"
)

// staticPlatform injects a fixed API key (Istores x-token, StoreHippo
// access-key, SCAYLE X-Access-Token). It has no token endpoint; api_url is
// required.
func staticPlatform() *platform {
	return &platform{
		name:   "static",
		check:  checkStatic,
		source: newStaticSource,
	}
}

func checkStatic(c *checker) {
	c.required("token", string(c.t.Token))
	if !validHeaderValue(string(c.t.Token)) {
		c.add("token", "must not contain control characters")
	}
}

// staticSource returns the configured token with a zero Expiry (it never
// expires) on every call. Safe for concurrent use.
type staticSource struct {
	token string
}

func newStaticSource(r *resolved, _ sourceEnv) ContextTokenSource {
	return staticSource{token: string(r.t.Token)}
}

// Token returns a new *oauth2.Token holding the fixed key.
func (s staticSource) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: s.token}, nil
}

// TokenContext is Token; the context is not needed.
func (s staticSource) TokenContext(context.Context) (*oauth2.Token, error) {
	return s.Token()
}
