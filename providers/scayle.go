package providers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/config"
)

// SCAYLE (scayle.dev, Checkout Guide, "Single Sign-on: Integrate"): the
// person logs in at the shop's identity provider through SCAYLE's
// Authentication API, which calls back with a code; the code is exchanged
// for a JWT access token and a refresh token that rotates on every refresh.
// The Checkout API wants the shop id in X-Shop-Id.
const (
	scayleAuthURL  = "https://{tenant_space}.auth.scayle.cloud/v1/auth/external/redirect"
	scayleTokenURL = "https://{tenant_space}.auth.scayle.cloud/v1/oauth/token"
	scayleAPIURL   = "https://{tenant_space}.checkout.api.scayle.cloud/api"
	// scayleConsentLifetime is the consent JWT's life (exp - iat), the
	// documentation's 15 minutes.
	scayleConsentLifetime = 15 * time.Minute
	// scayleLogoutPath is SCAYLE's logout (revokes an access token and its
	// refresh token), below the token endpoint's scheme and host.
	scayleLogoutPath = "/v1/auth/logout"
)

func scaylePlatform() *platform {
	return &platform{
		name:         "scayle",
		authURL:      scayleAuthURL,
		tokenURL:     scayleTokenURL,
		apiURL:       scayleAPIURL,
		usesTokenURL: true,
		consent:      always,
		headers: func(t *config.Tenant) map[string]string {
			return map[string]string{"X-Shop-Id": t.ShopID}
		},
		check:    checkSCAYLE,
		authCode: newSCAYLE,
	}
}

func checkSCAYLE(c *checker) {
	t := c.t
	c.label("tenant_space", t.TenantSpace)
	c.required("shop_id", t.ShopID)
	if !validHeaderValue(t.ShopID) {
		c.add("shop_id", "must not contain control characters")
	}
	c.required("idp_key", t.IdpKey)
	c.required("client_id", t.ClientID)
	c.required("client_secret", string(t.ClientSecret))
	c.required("shop_secret", string(t.ShopSecret))
	if len(t.Scopes) > 0 {
		c.add("scopes", "not used by scayle (its consent has no scopes)")
	}
	c.tokenParams("grant_type", "code", "refresh_token")
	checkConsentGrant(c, "scayle")
}

// scayle is the SCAYLE consent flow. Safe for concurrent use.
//
// Consent URL: auth_url?shopId&jwt, where jwt is HS256-signed with the shop
// secret over {callbackUrl, idpKey, clientId, iat, exp = iat + 15 min,
// nonce}; nonce is sidekey's state, which SCAYLE hands back inside the
// callback's state (the base64 JSON of this payload).
//
// Token requests are JSON ({"grant_type":"authorization_code","code"} and
// {"grant_type":"refresh_token","refresh_token"}) with HTTP Basic
// base64(client_id:client_secret). Every refresh returns a new pair and
// kills the refresh token used. Expiry is the earlier of expires_in and the
// access token's JWT exp.
type scayle struct {
	authURL    *url.URL
	clientID   string
	shopID     string
	idpKey     string
	shopSecret []byte
	params     url.Values // token_params; never modified after construction
	endpoint   *tokenEndpoint
	creds      credentials
	logoutURL  string // scheme://host of the token endpoint + scayleLogoutPath
	client     *http.Client
	log        *zap.Logger
}

func newSCAYLE(r *resolved, env sourceEnv) AuthCode {
	t := r.t
	secret := string(t.ClientSecret)
	shopSecret := string(t.ShopSecret)
	params := r.tokenParams()
	logout := url.URL{Scheme: r.tokenURL.Scheme, Host: r.tokenURL.Host, Path: scayleLogoutPath}
	endpoint := r.tokenEndpoint(env, secret, shopSecret)
	endpoint.json = true
	return &scayle{
		authURL:    r.authURL,
		clientID:   t.ClientID,
		shopID:     t.ShopID,
		idpKey:     t.IdpKey,
		shopSecret: []byte(shopSecret),
		params:     params,
		endpoint:   endpoint,
		creds:      credentials{id: t.ClientID, secret: secret, inHeader: true, rawBasic: true},
		logoutURL:  logout.String(),
		client:     env.client,
		log:        env.log,
	}
}

// ConsentURL returns the Authentication API's redirect URL with a consent
// JWT signed now (c.Now, or the current time when zero).
func (p *scayle) ConsentURL(c Consent) (string, error) {
	if err := checkConsent("scayle", c); err != nil {
		return "", err
	}
	now := c.Now
	if now.IsZero() {
		now = timeNow()
	}
	claims := jwt.MapClaims{
		"callbackUrl": c.RedirectURL,
		"idpKey":      p.idpKey,
		"clientId":    p.clientID,
		"iat":         now.Unix(),
		"exp":         now.Add(scayleConsentLifetime).Unix(),
		"nonce":       c.State,
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(p.shopSecret)
	if err != nil {
		// Signing with a non-empty []byte key does not fail; keep the
		// cause out of the message all the same.
		return "", errors.New("providers: scayle: cannot sign the consent JWT")
	}
	return withQuery(p.authURL, url.Values{"shopId": {p.shopID}, "jwt": {signed}}), nil
}

// CallbackState decodes the callback's state (the base64 JSON of the
// consent JWT's payload, in any base64 alphabet, padded or not), checks
// that it was made for this client and returns its nonce.
func (p *scayle) CallbackState(q url.Values) (string, error) {
	state := q.Get("state")
	if state == "" {
		return "", errors.New("providers: scayle: the callback carries no state")
	}
	payload, err := decodeBase64(state)
	if err != nil {
		return "", errors.New("providers: scayle: the callback state is not base64")
	}
	// A map, not a struct: encoding/json matches struct fields without
	// regard to case, and the payload we signed spells clientId and nonce
	// exactly so.
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return "", errors.New("providers: scayle: the callback state is not a JSON object")
	}
	if clientID, ok := jsonText(claims["clientId"]); !ok || clientID != p.clientID {
		return "", errors.New("providers: scayle: the callback state was made for another client")
	}
	nonce, ok := jsonText(claims["nonce"])
	if !ok || nonce == "" {
		return "", errors.New("providers: scayle: the callback state carries no nonce")
	}
	return nonce, nil
}

// decodeBase64 decodes standard or URL-safe base64, padded or not. A space
// is taken for '+', which a query decodes from an unescaped '+'.
func decodeBase64(s string) ([]byte, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "+")
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("-", "+", "_", "/").Replace(s)
	return base64.RawStdEncoding.DecodeString(s)
}

// jsonText returns a JSON string's value or a JSON number's digits.
func jsonText(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var n json.Number
	if dec := json.NewDecoder(bytes.NewReader(raw)); dec.Decode(&n) == nil {
		return n.String(), true
	}
	return "", false
}

// Exchange trades code for an access token and a refresh token.
func (p *scayle) Exchange(ctx context.Context, code string, _ Consent) (*oauth2.Token, error) {
	if code == "" {
		return nil, missingCode("scayle")
	}
	params := cloneValues(p.params)
	params.Set("grant_type", grantAuthorizationCode)
	params.Set("code", code)
	return p.endpoint.request(ctx, params, p.creds)
}

// Refresh trades refreshToken for a new pair; refreshToken is dead
// afterwards, whatever the outcome of storing the new one.
func (p *scayle) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return refreshWith(ctx, p.endpoint, p.params, refreshToken, p.creds)
}

// Revoke ends tok's whole grant through SCAYLE's logout: POST {scheme://host
// of token_url}/v1/auth/logout with tok's access token as Bearer and
// X-Shop-Id, which revokes the access token and its refresh token. (DELETE
// /v1/oauth/tokens/{jti} would revoke the one access token and leave the
// refresh token alive.) The access token must still be valid: a dead one
// is refused with 401, and the caller refreshes first (storing the rotated
// refresh token before use) and tries again. Failures are *TokenError with
// Op "logout".
func (p *scayle) Revoke(ctx context.Context, tok *oauth2.Token) error {
	fail := func(te *TokenError) error {
		te.Provider, te.Op = "scayle", "logout"
		if tok != nil {
			te.scrub(append(slices.Clone(p.endpoint.secrets), tok.AccessToken, tok.RefreshToken))
		}
		logFailure(p.log, te, time.Time{})
		return te
	}
	if tok == nil || tok.AccessToken == "" {
		return fail(&TokenError{Code: "invalid_request", Description: "no access token to log out with"})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.logoutURL, nil)
	if err != nil {
		return fail(&TokenError{Err: err})
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Shop-Id", p.shopID)
	resp, err := p.client.Do(req)
	if err != nil {
		return fail(&TokenError{Err: err})
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if resp.StatusCode/100 == 2 {
		p.log.Debug("logged out: access and refresh token revoked", zap.Int("status", resp.StatusCode))
		return nil
	}
	code, desc := parseErrorFields(resp.Header.Get("Content-Type"), body)
	return fail(&TokenError{Status: resp.StatusCode, Code: code, Description: desc, RetryAfter: retryAfter(resp.Header)})
}
