package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/tokensource"
)

// consentTTL is how long a started consent flow may take.
const consentTTL = 10 * time.Minute

// consentPrefix is the store folder of consent flows in progress, keyed by
// their state nonce. Keeping them in the store lets the callback land on any
// replica.
const consentPrefix = "consent/"

// flow is one consent flow in progress, as stored.
type flow struct {
	Tenant   string      `json:"tenant"`
	Provider string      `json:"provider"`
	Verifier string      `json:"verifier,omitempty"` // PKCE, for platforms that use it
	Started  time.Time   `json:"started"`
	App      string      `json:"app,omitempty"`    // a new connection under this app…
	Params   *connParams `json:"params,omitempty"` // …with these parameters
	// Binding is the SHA-256 (hex) of the consent-binding cookie set on the
	// browser that started the flow, for platforms whose callback may lack
	// state; the cookie's value itself is never stored.
	Binding string `json:"binding,omitempty"`
	// Kind is flowSession for a customer's login (sessions_login.go), ""
	// for a tenant's consent; ReturnTo is where a login sends the browser.
	Kind     string `json:"kind,omitempty"`
	ReturnTo string `json:"return_to,omitempty"`
}

func (f *flow) expired(now time.Time) bool { return now.Sub(f.Started) > consentTTL }

// connect starts a consent flow: GET /_sidekey/oauth/connect/{tenant}
// answers 302 to the platform's consent page (or, with ?format=json, the
// URL as JSON for `sidekey connect`).
//
// GET /_sidekey/oauth/connect/{app}?tenant=NAME&store=… starts the consent
// for a new connection under app instead; the connection is created only
// when the consent succeeds.
func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	f := flow{Tenant: name, Started: s.now().UTC()}
	var t *tenant
	if _, isApp := s.live.Load().cfg.Apps[name]; isApp {
		params := connParamsFrom(r.URL.Query())
		f.App, f.Tenant, f.Params = name, r.URL.Query().Get("tenant"), &params
		var err error
		if t, err = s.pendingConnection(f.Tenant, f.App, params); err != nil {
			proxy.WriteError(w, http.StatusBadRequest, proxy.CodeBadConnection, f.Tenant, err.Error(), 0)
			return
		}
		defer t.engine.Close()
	} else {
		var ok bool
		if t, ok = s.tenantNamed(name); !ok {
			proxy.WriteError(w, http.StatusNotFound, proxy.CodeUnknownTenant, name, "no tenant or app named "+name, 0)
			return
		}
	}
	if t.spec.AuthCode == nil {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeNoConsentFlow, f.Tenant,
			f.Tenant+" ("+t.spec.Provider+") needs no consent: its token comes from client credentials or a fixed key", 0)
		return
	}
	name = f.Tenant
	f.Provider = t.spec.Provider
	consentURL, ok := s.startFlow(w, r, t, &f, "consent")
	if !ok {
		return
	}
	s.log.Info("consent flow started", zap.String("tenant", name), zap.String("provider", f.Provider))
	if r.URL.Query().Get("format") == "json" {
		writeJSON(w, http.StatusOK, map[string]any{"tenant": name, "url": consentURL, "expires": f.Started.Add(consentTTL)})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, consentURL, http.StatusFound)
}

// startFlow starts flow f (a consent or a customer's login, named by what)
// of tenant t: a fresh nonce and PKCE verifier, the platform URL, the flow
// stored under the nonce and, for a platform whose callback may omit
// state, the browser-binding cookie. It answers the request itself and
// returns false when the flow cannot start.
func (s *Server) startFlow(w http.ResponseWriter, r *http.Request, t *tenant, f *flow, what string) (string, bool) {
	nonce := randomNonce()
	f.Verifier = providers.NewPKCEVerifier() // used by the platforms that do PKCE, ignored by the rest
	var binding string
	if providers.CallbackMayOmitState(t.spec.AuthCode) {
		binding = randomNonce()
		f.Binding = bindingHash(binding)
	}
	platformURL, err := t.spec.AuthCode.ConsentURL(s.consent(nonce, f))
	if err != nil {
		s.log.Error("building the "+what+" URL failed", zap.String("tenant", f.Tenant), zap.Error(err))
		proxy.WriteError(w, http.StatusInternalServerError, proxy.CodeConsentURLFailed, f.Tenant, "could not build the "+what+" URL; see the log", 0)
		return "", false
	}
	b, _ := json.Marshal(f)
	if err := s.store.Store(r.Context(), consentPrefix+nonce, b); err != nil {
		s.log.Error("storing the "+what+" flow failed", zap.String("tenant", f.Tenant), zap.Error(err))
		proxy.WriteError(w, http.StatusServiceUnavailable, proxy.CodeStoreUnavailable, f.Tenant, "the token store is unavailable", 5*time.Second)
		return "", false
	}
	if binding != "" {
		s.setBindingCookie(w, binding, int(consentTTL/time.Second))
	}
	return platformURL, true
}

// consent is the providers.Consent for flow f with state nonce.
func (s *Server) consent(nonce string, f *flow) providers.Consent {
	return providers.Consent{State: nonce, RedirectURL: s.cfg.RedirectURL(), PKCEVerifier: f.Verifier, Now: f.Started}
}

// callback completes a consent flow: GET /_sidekey/oauth/callback?code&state.
// It is open to anyone and guarded by the state: random, single use, bound
// to one tenant, valid for 10 minutes. Any failure changes nothing stored.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		s.callbackFailed(w, "", http.StatusBadRequest, "the platform did not grant access: "+clip(e, 64))
		return
	}
	code := q.Get("code")
	if code == "" {
		s.callbackFailed(w, "", http.StatusBadRequest, "the callback has no code")
		return
	}
	nonce, f, err := s.takeFlow(r.Context(), q, r)
	if err != nil {
		s.callbackFailed(w, "", http.StatusBadRequest, err.Error())
		return
	}
	var t *tenant
	if f.App != "" && f.Params != nil {
		if t, err = s.pendingConnection(f.Tenant, f.App, *f.Params); err != nil {
			s.callbackFailed(w, f.Tenant, http.StatusBadRequest, "the consent was started for an app that changed: "+err.Error())
			return
		}
		defer t.engine.Close()
	} else if tt, ok := s.tenantNamed(f.Tenant); ok {
		t = tt
	}
	if t == nil || t.spec.AuthCode == nil {
		s.callbackFailed(w, f.Tenant, http.StatusBadRequest, "the consent was started for a tenant that is no longer configured")
		return
	}
	if got, err := t.spec.AuthCode.CallbackState(q); err != nil || (got != "" && got != nonce) {
		s.callbackFailed(w, f.Tenant, http.StatusBadRequest, "the callback's state does not belong to this tenant's consent")
		return
	}
	if q.Get("state") == "" && !providers.CallbackMayOmitState(t.spec.AuthCode) {
		s.callbackFailed(w, f.Tenant, http.StatusBadRequest, "the callback has no state")
		return
	}
	if f.Kind == flowSession {
		if err := loginUsable(t, f); err != nil {
			s.callbackFailed(w, f.Tenant, http.StatusBadRequest, err.Error())
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(s.cfg.Engine.FetchTimeout))
	defer cancel()
	tok, err := t.spec.AuthCode.Exchange(ctx, code, s.consent(nonce, f))
	if err != nil {
		s.log.Warn("code exchange failed", zap.String("tenant", f.Tenant), zap.Error(err))
		s.callbackFailed(w, f.Tenant, http.StatusBadGateway, "the platform refused the code: "+err.Error())
		return
	}
	if life := t.spec.RefreshTokenLifetime; life > 0 && tok.RefreshToken != "" && tokensource.RefreshExpiry(tok).IsZero() {
		tok = tok.WithExtra(map[string]any{tokensource.RefreshExpiryExtra: s.now().Add(life)})
	}
	if f.Kind == flowSession {
		s.finishLogin(w, r, f, tok)
		return
	}
	if err := t.stored.Save(r.Context(), tok); err != nil {
		s.log.Error("storing the new token failed", zap.String("tenant", f.Tenant), zap.Error(err))
		s.callbackFailed(w, f.Tenant, http.StatusServiceUnavailable, "the token store is unavailable; start the consent again")
		return
	}
	if f.App != "" {
		// The connection exists from now on, with its token already stored.
		c := &connection{Name: f.Tenant, App: f.App, Params: *f.Params, Created: s.now().UTC()}
		if err := s.writeConnection(r.Context(), c); err != nil {
			s.log.Error("storing the connection failed", zap.String("tenant", f.Tenant), zap.Error(err))
			s.callbackFailed(w, f.Tenant, http.StatusServiceUnavailable, "the token store is unavailable; start the consent again")
			return
		}
		s.conns.forget(f.Tenant)
		if loaded, ok := s.conns.get(f.Tenant); ok {
			t = loaded
		}
	}
	t.engine.Reset()
	now := s.now().UTC()
	t.connectedAt.Store(&now)
	if f.Binding != "" {
		s.setBindingCookie(w, "", -1) // used up
	}
	s.log.Info("tenant connected", zap.String("tenant", f.Tenant), zap.String("provider", f.Provider))
	s.callbackPage(w, r, http.StatusOK, f.Tenant, "connected", "sidekey now holds a token for "+f.Tenant+". You can close this page.")
}

// takeFlow finds and consumes the stored flow the callback answers. The
// state is our nonce, or for SCAYLE the base64 JSON of the consent JWT's
// payload carrying it. A callback without state (Istores documents none) is
// matched by the consent-binding cookie of r instead: only the browser that
// started the consent can complete it.
func (s *Server) takeFlow(ctx context.Context, q url.Values, r *http.Request) (string, *flow, error) {
	state := q.Get("state")
	var candidates []string
	if state != "" {
		candidates = providers.StateNonces(state)
	} else {
		n, err := s.boundFlow(ctx, r)
		if err != nil {
			return "", nil, err
		}
		candidates = append(candidates, n)
	}
	for _, nonce := range candidates {
		if !validNonce(nonce) {
			continue
		}
		b, err := s.store.Take(ctx, consentPrefix+nonce)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, errors.New("the token store is unavailable")
		}
		var f flow
		if err := json.Unmarshal(b, &f); err != nil {
			return "", nil, errors.New("the consent record is unreadable")
		}
		if f.expired(s.now()) {
			return "", nil, errors.New("this consent expired (they last 10 minutes): start it again")
		}
		return nonce, &f, nil
	}
	return "", nil, errors.New("unknown or already used state: start the consent again")
}

// consentCookie is the consent-binding cookie: a random value set by
// oauth/connect on the browser that starts a consent whose callback may
// lack state, and presented by that browser's callback.
const consentCookie = "sidekey_consent"

// setBindingCookie sets the consent-binding cookie to value for maxAge
// seconds (negative: deletes it). HttpOnly, SameSite=Lax (the platform's
// redirect back is a top-level navigation), only below /_sidekey/oauth/,
// and Secure when public_url is https.
func (s *Server) setBindingCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     consentCookie,
		Value:    value,
		Path:     "/_sidekey/oauth/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   strings.HasPrefix(strings.ToLower(s.cfg.PublicURL), "https://"),
		SameSite: http.SameSiteLaxMode,
	})
}

// bindingHash is what a flow stores of its consent-binding cookie.
func bindingHash(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

// boundFlow returns the nonce of the one unexpired flow bound to r's
// consent-binding cookie.
func (s *Server) boundFlow(ctx context.Context, r *http.Request) (string, error) {
	c, err := r.Cookie(consentCookie)
	if err != nil || !validNonce(c.Value) {
		return "", errors.New("the callback has no state, and this browser started no consent here: start it again from /_sidekey/oauth/connect in this browser")
	}
	want := bindingHash(c.Value)
	keys, err := s.store.List(ctx, consentPrefix)
	if err != nil {
		return "", errors.New("the token store is unavailable")
	}
	var found []string
	for _, k := range keys {
		b, err := s.store.Load(ctx, k)
		if err != nil {
			continue
		}
		var f flow
		if json.Unmarshal(b, &f) == nil && f.Binding != "" && !f.expired(s.now()) &&
			subtle.ConstantTimeCompare([]byte(f.Binding), []byte(want)) == 1 {
			found = append(found, strings.TrimPrefix(k, consentPrefix))
		}
	}
	if len(found) != 1 {
		return "", errors.New("the callback has no state, and it matches no consent this browser started in the last 10 minutes")
	}
	return found[0], nil
}

// randomNonce returns 32 random bytes, base64url.
func randomNonce() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validNonce reports whether n has the shape randomNonce produces, so no
// caller-chosen string becomes a store key.
func validNonce(n string) bool {
	if len(n) != 43 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Server) callbackFailed(w http.ResponseWriter, tenant string, status int, msg string) {
	s.log.Warn("consent callback rejected", zap.String("tenant", tenant), zap.String("reason", msg))
	s.callbackPage(w, nil, status, tenant, "failed", msg)
}

// callbackPage answers the browser with a short page, or JSON when asked.
func (s *Server) callbackPage(w http.ResponseWriter, r *http.Request, status int, tenant, result, msg string) {
	if status >= 400 {
		w.Header().Set(proxy.ErrorHeader, proxy.CodeConsentFailed)
	}
	if r != nil && strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, status, map[string]string{"tenant": tenant, "result": result, "message": msg})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = callbackTemplate.Execute(w, map[string]string{"Tenant": tenant, "Result": result, "Message": msg})
}

var callbackTemplate = template.Must(template.New("callback").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>sidekey: {{.Result}}</title>
<style>body{font:16px system-ui,sans-serif;margin:4em auto;max-width:36em}</style></head>
<body><h1>{{if .Tenant}}{{.Tenant}}: {{end}}{{.Result}}</h1><p>{{.Message}}</p></body></html>
`))

// clip shortens s to n bytes for echoing platform-chosen text.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// connectURL is where a person starts tenant's consent.
func (s *Server) connectURL(tenant string) string {
	return strings.TrimRight(s.cfg.PublicURL, "/") + "/_sidekey/oauth/connect/" + tenant
}
