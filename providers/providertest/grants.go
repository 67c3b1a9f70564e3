package providertest

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// codeLifetime is how long an authorization code can be exchanged.
const codeLifetime = 60 * time.Second

// codeGrant is what an authorization code stands for.
type codeGrant struct {
	clientID    string
	redirectURI string // the consent's redirect_uri, which the exchange must repeat
	scope       string
	challenge   string // PKCE S256 code_challenge; "" without PKCE
	expiry      time.Time
	subject     string // the person who logged in (SCAYLE customers); "" for a client's own grant
}

// refreshGrant is what a refresh token stands for.
type refreshGrant struct {
	clientID string
	scope    string
	expiry   time.Time // zero: never expires
	dead     bool      // used up by a rotation: presenting it again is reuse
	subject  string    // the person the grant belongs to; "" for the client itself
}

// permanent is the expiry of tokens that never expire.
func permanent() time.Time { return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) }

// newCode issues a single-use authorization code for g.
func (c *core) newCode(g codeGrant) string {
	code := randomToken()
	now := time.Now()
	g.expiry = now.Add(codeLifetime)
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, old := range c.codes {
		if now.After(old.expiry) {
			delete(c.codes, k)
		}
	}
	c.codes[code] = g
	return code
}

// redeemCode uses up code; ok is false when it is unknown, used or expired.
func (c *core) redeemCode(code string) (g codeGrant, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok = c.codes[code]
	delete(c.codes, code)
	if !ok || !time.Now().Before(g.expiry) {
		return codeGrant{}, false
	}
	return g, true
}

// ExpireCodes makes every authorization code issued so far expired, as
// it would be 60 seconds after the consent.
func (c *core) ExpireCodes() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.codes)
}

// addRefresh registers a new refresh token for g.
func (c *core) addRefresh(g refreshGrant) string {
	rt := randomToken()
	c.mu.Lock()
	c.refreshTokens[rt] = g
	c.mu.Unlock()
	return rt
}

// useRefresh redeems refresh token rt. ok is false when rt is unknown,
// expired or dead; a dead one is counted as reuse. With rotate, rt dies
// and next is its successor, carrying the same grant and expiry.
func (c *core) useRefresh(rt string, rotate bool) (g refreshGrant, next string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, known := c.refreshTokens[rt]
	switch {
	case !known || rt == "":
		return refreshGrant{}, "", false
	case g.dead:
		c.reuseCount.Add(1)
		return refreshGrant{}, "", false
	case !g.expiry.IsZero() && !time.Now().Before(g.expiry):
		return refreshGrant{}, "", false
	}
	if rotate {
		dead := g
		dead.dead = true
		c.refreshTokens[rt] = dead
		next = randomToken()
		c.refreshTokens[next] = g
	}
	return g, next, true
}

// RevokeRefreshTokens invalidates every refresh token: refresh grants
// answer invalid_grant (without counting as reuse).
func (c *core) RevokeRefreshTokens() {
	c.mu.Lock()
	clear(c.refreshTokens)
	c.mu.Unlock()
}

// ValidRefreshToken reports whether rt would be accepted now.
func (c *core) ValidRefreshToken(rt string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.refreshTokens[rt]
	return ok && !g.dead && (g.expiry.IsZero() || time.Now().Before(g.expiry))
}

// redirect answers a consent with 302 to target, params added to its
// query.
func redirect(w http.ResponseWriter, target string, params url.Values) {
	u, _ := url.Parse(target) // validated by the caller
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// absoluteURL reports whether s is an absolute http or https URL without
// a fragment, as a redirect URI must be.
func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Fragment == ""
}

// Body encodings a token endpoint accepts.
const (
	bodyForm = 1 << iota // application/x-www-form-urlencoded
	bodyJSON             // a JSON object of strings
)

// tokenFailure writes a token endpoint's error in the platform's shape.
type tokenFailure func(w http.ResponseWriter, status int, code, description string)

// readTokenBody counts and records a token request, parses its body (POST,
// at most 64 KiB, in one of the accepted encodings) into r.PostForm, and
// applies latency and injected failures. It answers the request itself,
// with fail, and returns false when the request cannot go on.
func (c *core) readTokenBody(w http.ResponseWriter, r *http.Request, accept int, fail tokenFailure) bool {
	c.tokenCount.Add(1)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	media, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var bodyErr error
	switch {
	case media == "application/x-www-form-urlencoded" && accept&bodyForm != 0:
		bodyErr = r.ParseForm()
	case media == "application/json" && accept&bodyJSON != 0:
		r.PostForm, bodyErr = decodeJSONParams(r)
	default:
		bodyErr = fmt.Errorf("unsupported body encoding %q", media)
	}
	if r.PostForm == nil {
		r.PostForm = url.Values{}
	}
	if r.Form == nil {
		r.Form = r.PostForm
	}
	id, _, method, _ := clientCredentials(r)
	c.mu.Lock()
	c.lastToken = &TokenRequest{Header: r.Header.Clone(), Form: cloneValues(r.PostForm), ClientAuth: method, ClientID: id}
	status := c.tokenFail.take()
	c.mu.Unlock()
	if r.PostForm.Get("grant_type") == "refresh_token" {
		c.refreshCount.Add(1)
	}

	if !c.wait(r.Context(), &c.tokenLatency) {
		return false
	}
	switch {
	case status != 0:
		retryAfterOn(w, status)
		fail(w, status, "server_error", "failure injected by the simulator")
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		fail(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
	case bodyErr != nil:
		fail(w, http.StatusBadRequest, "invalid_request", "the body must be "+acceptedBodies(accept))
	default:
		return true
	}
	return false
}

func acceptedBodies(accept int) string {
	switch accept {
	case bodyForm:
		return "form-encoded"
	case bodyJSON:
		return "a JSON object"
	}
	return "form-encoded or a JSON object"
}

// decodeJSONParams reads a JSON object whose members are strings.
func decodeJSONParams(r *http.Request) (url.Values, error) {
	var obj map[string]any
	if err := json.NewDecoder(r.Body).Decode(&obj); err != nil {
		return nil, err
	}
	v := url.Values{}
	for k, m := range obj {
		s, ok := m.(string)
		if !ok {
			return nil, fmt.Errorf("%s is not a string", k)
		}
		v.Set(k, s)
	}
	return v, nil
}

// signJWT signs the claims of access token t (HS256, the simulator's key).
func (c *core) signJWT(t issued) string {
	claims := jwt.MapClaims{
		"iss": c.server.URL,
		"sub": cmp.Or(t.subject, t.clientID),
		"jti": t.id,
		"iat": t.created.Unix(),
		"exp": t.expiry.Unix(),
	}
	if t.scope != "" {
		claims["scope"] = t.scope
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.jwtKey)
	if err != nil {
		panic(err) // HS256 with a non-empty key cannot fail
	}
	return s
}

// overLimit counts an API request against SimOptions.RateLimit and
// reports whether it exceeds it.
func (c *core) overLimit() bool {
	if c.opts.RateLimit <= 0 {
		return false
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.window) >= time.Second {
		c.window, c.windowCount = now, 0
	}
	c.windowCount++
	return c.windowCount > c.opts.RateLimit
}

// s256 is the PKCE S256 challenge of verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// equal compares secrets in constant time.
func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// splitScopes splits a scope list on spaces and commas.
func splitScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

// RefreshExpiry returns the expiry of refresh token rt (zero: never), and
// whether the simulator knows rt at all (dead ones included).
func (c *core) RefreshExpiry(rt string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.refreshTokens[rt]
	return g.expiry, ok
}

// randomToken returns 32 random bytes, base64url encoded.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
