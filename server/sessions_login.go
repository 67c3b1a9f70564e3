package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/tokensource"
)

// flowSession is the kind of a consent flow that is a customer's login:
// its callback creates a session instead of connecting the tenant.
const flowSession = "session"

// ticketTTL is how long a login's ticket can be redeemed.
const ticketTTL = 60 * time.Second

// ticketParam is the query parameter that carries the ticket to return_to.
const ticketParam = "sidekey_ticket"

// ticketRecord is a completed login waiting for the app to redeem it
// (sealed like every value; the ticket itself is stored only as a hash).
type ticketRecord struct {
	Tenant        string    `json:"tenant"`
	Issued        time.Time `json:"issued"`
	AccessToken   string    `json:"access_token"`
	TokenType     string    `json:"token_type,omitempty"`
	RefreshToken  string    `json:"refresh_token,omitempty"`
	Expiry        time.Time `json:"expiry,omitzero"`
	RefreshExpiry time.Time `json:"refresh_expiry,omitzero"`
}

// token is the customer's token the ticket holds.
func (tr *ticketRecord) token() *oauth2.Token {
	tok := &oauth2.Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, RefreshToken: tr.RefreshToken, Expiry: tr.Expiry}
	if !tr.RefreshExpiry.IsZero() {
		tok = tok.WithExtra(map[string]any{tokensource.RefreshExpiryExtra: tr.RefreshExpiry})
	}
	return tok
}

// login starts a customer's login: GET /_sidekey/login/{tenant}?return_to=URL
// answers 302 to the platform's login page. It is open (customers'
// browsers start here); a return_to outside the tenant's
// sessions.return_to is 400 and never redirected to.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	t, ok := s.tenantNamed(name)
	if !ok {
		proxy.WriteError(w, http.StatusNotFound, proxy.CodeUnknownTenant, name, "no tenant named "+name, 0)
		return
	}
	conf := sessionsConf(t)
	if conf == nil || t.spec.AuthCode == nil {
		proxy.WriteError(w, http.StatusNotFound, proxy.CodeSessionsNotEnabled, name, "tenant "+name+" has no per-customer sessions", 0)
		return
	}
	if s.refuseLoginFlood(w, name) {
		return
	}
	returnTo := r.URL.Query().Get("return_to")
	if !conf.ReturnAllowed(returnTo) {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeReturnToNotAllowed, name,
			"return_to must be an absolute URL under one of tenants."+name+".sessions.return_to", 0)
		return
	}
	f := flow{Kind: flowSession, Tenant: name, Provider: t.spec.Provider, Started: s.now().UTC(), ReturnTo: returnTo}
	loginURL, ok := s.startFlow(w, r, t, &f, "login")
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, loginURL, http.StatusFound)
}

// loginUsable checks, before the code exchange, that login flow f can
// still complete on t: t still has sessions and still allows f's
// return_to.
func loginUsable(t *tenant, f *flow) error {
	conf := sessionsConf(t)
	if conf == nil {
		return errors.New("the login was started for a tenant that no longer has sessions")
	}
	if !conf.ReturnAllowed(f.ReturnTo) {
		return errors.New("the login's return_to is no longer allowed")
	}
	return nil
}

// finishLogin completes login flow f with the customer's token: it stores a
// single-use ticket for it and sends the browser to return_to with the
// ticket. Nothing else is stored until the app redeems the ticket.
func (s *Server) finishLogin(w http.ResponseWriter, r *http.Request, f *flow, tok *oauth2.Token) {
	ticket := randomNonce()
	hash, _ := handleHash(ticket)
	rec := ticketRecord{Tenant: f.Tenant, Issued: s.now().UTC(), AccessToken: tok.AccessToken, TokenType: tok.TokenType,
		RefreshToken: tok.RefreshToken, Expiry: tok.Expiry, RefreshExpiry: tokensource.RefreshExpiry(tok)}
	b, _ := json.Marshal(rec)
	if err := s.store.Store(r.Context(), ticketPrefix+hash, b); err != nil {
		s.log.Error("storing a login ticket failed", zap.String("tenant", f.Tenant), zap.Error(err))
		s.callbackFailed(w, f.Tenant, http.StatusServiceUnavailable, "the token store is unavailable; log in again")
		return
	}
	target := f.ReturnTo
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	target += sep + ticketParam + "=" + url.QueryEscape(ticket)
	s.log.Info("customer logged in", zap.String("tenant", f.Tenant))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target, http.StatusFound)
}

// redeem trades a login's ticket for a session: POST
// /_sidekey/sessions/redeem {"ticket": T} → {"session", "tenant",
// "expiry"}. The caller must be allowed the ticket's tenant, as for
// /{tenant}/…; a refused caller leaves the ticket unused.
func (s *Server) redeem(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Ticket string `json:"ticket"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&body); err != nil {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeBadRequest, "", `the body must be JSON {"ticket": "..."}`, 0)
		return
	}
	hash, ok := handleHash(body.Ticket)
	if !ok {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeTicketInvalid, "", "not a sidekey ticket", 0)
		return
	}
	key := ticketPrefix + hash
	b, err := s.store.Load(r.Context(), key)
	if errors.Is(err, fs.ErrNotExist) {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeTicketInvalid, "", "unknown or already redeemed ticket", 0)
		return
	}
	if err != nil {
		proxy.WriteError(w, http.StatusServiceUnavailable, proxy.CodeStoreUnavailable, "", "the token store is unavailable", 5*time.Second)
		return
	}
	var rec ticketRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeTicketInvalid, "", "unreadable ticket", 0)
		return
	}
	if !s.admitCaller(w, r, rec.Tenant) {
		return
	}
	if b, err = s.store.Take(r.Context(), key); err != nil {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeTicketInvalid, "", "unknown or already redeemed ticket", 0)
		return
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeTicketInvalid, "", "unreadable ticket", 0)
		return
	}
	if s.now().Sub(rec.Issued) > ticketTTL {
		s.revokeOrphan(r.Context(), &rec)
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeTicketInvalid, rec.Tenant, "the ticket expired (tickets last 60 seconds): log in again", 0)
		return
	}
	t, ok := s.tenantNamed(rec.Tenant)
	if !ok || sessionsConf(t) == nil || t.spec.AuthCode == nil {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeTicketInvalid, rec.Tenant, "the ticket's tenant no longer has sessions", 0)
		return
	}
	handle, expiry, err := s.sessions.create(r.Context(), rec.Tenant, t, rec.token())
	if err != nil {
		s.log.Error("creating a session failed", zap.String("tenant", rec.Tenant), zap.Error(err))
		proxy.WriteError(w, http.StatusServiceUnavailable, proxy.CodeStoreUnavailable, rec.Tenant, "the token store is unavailable; log in again", 5*time.Second)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"session": handle, "tenant": rec.Tenant, "expiry": expiry})
}

// endSession is DELETE /_sidekey/sessions/{session}[?return_to=URL]: it
// revokes the customer's tokens at the platform (SCAYLE's logout revokes
// access and refresh token) and forgets the session. The caller must be
// allowed the session's tenant. When the platform cannot be reached the
// session is kept (502), so that the app can try again. On a platform with
// a browser logout (SCAYLE) the answer carries logout_url, which returns
// to return_to (checked like a login's) or the first sessions.return_to.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	unknown := func() {
		proxy.WriteError(w, http.StatusUnauthorized, proxy.CodeSessionUnknown, "", "no such session", 0)
	}
	hash, ok := handleHash(r.PathValue("session"))
	if !ok {
		unknown()
		return
	}
	name, t, err := s.sessions.find(r.Context(), hash)
	if errors.Is(err, fs.ErrNotExist) {
		unknown()
		return
	}
	if err != nil {
		proxy.WriteError(w, http.StatusServiceUnavailable, proxy.CodeStoreUnavailable, "", "the token store is unavailable", 5*time.Second)
		return
	}
	if !s.admitCaller(w, r, name) {
		return
	}
	back := r.URL.Query().Get("return_to")
	if back == "" {
		back = sessionsConf(t).ReturnTo[0]
	} else if !sessionsConf(t).ReturnAllowed(back) {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeReturnToNotAllowed, name,
			"return_to must be an absolute URL under one of tenants."+name+".sessions.return_to", 0)
		return
	}
	revoked, tok, err := s.revokeSession(r.Context(), name, t, hash)
	if err != nil {
		s.log.Warn("logging a customer out at the platform failed", zap.String("tenant", name), zap.Error(err))
		proxy.WriteError(w, http.StatusBadGateway, proxy.CodeRevokeFailed, name, "the platform did not log the customer out; the session is kept, try again: "+err.Error(), 0)
		return
	}
	s.sessions.remove(context.WithoutCancel(r.Context()), name, hash)
	s.log.Info("customer session ended", zap.String("tenant", name), zap.Bool("revoked", revoked))
	out := map[string]any{"tenant": name, "revoked": revoked}
	if lr, ok := t.spec.AuthCode.(providers.LogoutRedirecter); ok && tok != nil {
		if u, err := lr.LogoutURL(tok, back, s.now()); err == nil {
			out["logout_url"] = u
		} else {
			s.log.Warn("building the browser logout URL failed", zap.String("tenant", name), zap.Error(err))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// revokeSession revokes the session's grant at the platform, when the
// platform can (providers.Revoker), and returns the access token it
// revoked. revoked is false when there was no live grant left to revoke or
// the platform offers no revocation.
func (s *Server) revokeSession(ctx context.Context, name string, t *tenant, hash string) (revoked bool, _ *oauth2.Token, err error) {
	rv, ok := t.spec.AuthCode.(providers.Revoker)
	if !ok {
		return false, nil, nil
	}
	e, err := s.sessions.engine(ctx, name, t, hash)
	if err != nil {
		var se *proxy.SessionError
		if errors.As(err, &se) {
			return false, nil, nil // ended already
		}
		return false, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.cfg.Engine.FetchTimeout))
	defer cancel()
	for attempt := 0; ; attempt++ {
		tok, err := e.TokenContext(ctx)
		if err != nil {
			var se *proxy.SessionError
			if errors.As(err, &se) {
				return false, nil, nil // the grant is dead: nothing to revoke
			}
			return false, nil, err
		}
		err = rv.Revoke(ctx, tok)
		var te *providers.TokenError
		if err != nil && attempt == 0 && errors.As(err, &te) && te.Status == http.StatusUnauthorized {
			e.Invalidate(tok) // a dead access token: refresh (stored first) and log out with the new one
			continue
		}
		if err != nil {
			return false, nil, fmt.Errorf("server: %w", err)
		}
		return true, tok, nil
	}
}

// revokeOrphan revokes, best effort, the grant of a login whose ticket
// expired unredeemed: nobody can use it any more, so it should not live on
// at the platform.
func (s *Server) revokeOrphan(ctx context.Context, rec *ticketRecord) {
	t, ok := s.tenantNamed(rec.Tenant)
	if !ok || t.spec.AuthCode == nil {
		return
	}
	rv, ok := t.spec.AuthCode.(providers.Revoker)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(s.cfg.Engine.FetchTimeout))
	defer cancel()
	if err := rv.Revoke(ctx, rec.token()); err != nil {
		s.log.Warn("revoking the grant of an unredeemed login failed", zap.String("tenant", rec.Tenant), zap.Error(err))
	}
}

// admitCaller applies the caller rules of /{tenant}/… to a session
// endpoint for tenant: with callers configured, only a caller allowed the
// tenant gets through; otherwise it answers 401 or 403.
func (s *Server) admitCaller(w http.ResponseWriter, r *http.Request, tenant string) bool {
	cs := s.live.Load().callers
	if cs == nil {
		return true
	}
	return cs.admit(w, r, tenant, s.appOf)
}
