package server

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/tokensource"
)

// connectionView is what the admin API shows of a tenant: where it comes
// from and its state — never a token or secret.
type connectionView struct {
	Name     string       `json:"name"`
	Source   string       `json:"source"` // config or connection
	App      string       `json:"app,omitempty"`
	Params   *connParams  `json:"params,omitempty"`
	Created  *time.Time   `json:"created,omitempty"`
	Provider string       `json:"provider,omitempty"`
	State    string       `json:"state"` // see tenantState
	Status   tenantStatus `json:"status"`
}

// view describes tenant name. A connection that is not in memory is
// described from the store, without loading it: listing many connections
// must not push the active ones out of the engine LRU.
func (s *Server) view(r *http.Request, name string) (*connectionView, error) {
	if t, ok := s.live.Load().tenants[name]; ok {
		v := &connectionView{Name: name, Source: "config", App: t.conf.App, Provider: t.spec.Provider}
		v.Status = s.tenantStatus(name, t)
		v.State = v.Status.State
		s.sessions.annotateOne(name, t, &v.Status)
		return v, nil
	}
	c, err := s.readConnection(r.Context(), name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errUnknownTenant
		}
		return nil, err
	}
	created := c.Created
	v := &connectionView{Name: name, Source: "connection", App: c.App, Params: &c.Params, Created: &created}
	app := s.live.Load().cfg.Apps[c.App]
	if app != nil {
		v.Provider = app.Provider
	}
	if t, ok := s.conns.loaded.Peek(name); ok {
		v.Status = s.tenantStatus(name, t)
		v.State = v.Status.State
		return v, nil
	}
	v.Status.Provider, v.Status.Token = v.Provider, "not_loaded"
	facts := tokenFacts{consent: app == nil || providers.NeedsConsent(app), canRefresh: true}
	b, err := s.store.Load(r.Context(), tokenKey(name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		info, err := tokensource.ReadStoredInfo(b)
		if err != nil {
			v.State, v.Status.State = stateError, stateError
			return v, nil
		}
		now := s.now()
		facts.known, facts.renewable = true, info.Renewable
		facts.valid = info.Expiry.IsZero() || now.Before(info.Expiry)
		facts.expiry, facts.refreshExpiry = info.Expiry, info.RefreshExpiry
		v.Status.LastRefresh, v.Status.Expiry, v.Status.RefreshExpiry = timePtr(info.Obtained), timePtr(info.Expiry), timePtr(info.RefreshExpiry)
		v.Status.Valid = facts.valid
	}
	v.State = tenantState(facts, s.now())
	v.Status.State = v.State
	return v, nil
}

// listConnections serves GET /_sidekey/admin/connections?state=&after=&limit=:
// configured tenants and connections in name order, a page at a time.
func (s *Server) listConnections(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state != "" && !tenantStates[state] {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeBadRequest, "", "state must be connected, consent_needed_soon, consent_required or error", 0)
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			proxy.WriteError(w, http.StatusBadRequest, proxy.CodeBadRequest, "", "limit must be 1 to 1000", 0)
			return
		}
		limit = n
	}
	after := q.Get("after")
	keys, err := s.store.List(r.Context(), connectionPrefix)
	if err != nil {
		s.log.Error("listing connections failed", zap.Error(err))
		proxy.WriteError(w, http.StatusServiceUnavailable, proxy.CodeStoreUnavailable, "", "the token store is unavailable", 5*time.Second)
		return
	}
	names := make([]string, 0, len(keys)+len(s.live.Load().tenants))
	for name := range s.live.Load().tenants {
		names = append(names, name)
	}
	for _, k := range keys {
		names = append(names, strings.TrimPrefix(k, connectionPrefix))
	}
	slices.Sort(names)
	out := struct {
		Items []*connectionView `json:"items"`
		Next  string            `json:"next,omitempty"` // pass as ?after= for the next page
	}{Items: []*connectionView{}}
	for _, name := range names {
		if name <= after {
			continue
		}
		if len(out.Items) == limit {
			out.Next = out.Items[len(out.Items)-1].Name
			break
		}
		v, err := s.view(r, name)
		if err != nil {
			continue // deleted meanwhile
		}
		if state == "" || v.State == state {
			out.Items = append(out.Items, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// showConnection serves GET /_sidekey/admin/connections/{tenant}.
func (s *Server) showConnection(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	v, err := s.view(r, name)
	switch {
	case errors.Is(err, errUnknownTenant), errors.Is(err, fs.ErrNotExist):
		proxy.WriteError(w, http.StatusNotFound, proxy.CodeUnknownTenant, name, "no tenant named "+name, 0)
	case err != nil:
		proxy.WriteError(w, http.StatusServiceUnavailable, proxy.CodeStoreUnavailable, name, "the token store is unavailable", 5*time.Second)
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// createConnection serves POST /_sidekey/admin/connections with a JSON body
// {"tenant": NAME, "app": APP, "params": {"store": …}}: a connection under
// an app whose tokens need no consent (client credentials). Consent-flow
// apps create connections through /_sidekey/oauth/connect/{app}.
func (s *Server) createConnection(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Tenant string     `json:"tenant"`
		App    string     `json:"app"`
		Params connParams `json:"params"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeBadRequest, "", "body must be JSON {tenant, app, params}: "+err.Error(), 0)
		return
	}
	if _, ok := s.live.Load().cfg.Apps[req.App]; !ok {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeBadConnection, req.Tenant, "unknown app "+strconv.Quote(req.App), 0)
		return
	}
	t, err := s.pendingConnection(req.Tenant, req.App, req.Params)
	if err != nil {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeBadConnection, req.Tenant, err.Error(), 0)
		return
	}
	t.engine.Close()
	if t.spec.AuthCode != nil {
		proxy.WriteError(w, http.StatusBadRequest, proxy.CodeConsentRequired, req.Tenant,
			"app "+req.App+" connects through a consent: open "+s.connectURL(req.App)+"?"+connectQuery(req.Tenant, req.Params), 0)
		return
	}
	if _, err := s.readConnection(r.Context(), req.Tenant); err == nil {
		proxy.WriteError(w, http.StatusConflict, proxy.CodeExists, req.Tenant, "a connection named "+req.Tenant+" exists", 0)
		return
	}
	c := &connection{Name: req.Tenant, App: req.App, Params: req.Params, Created: s.now().UTC()}
	if err := s.writeConnection(r.Context(), c); err != nil {
		s.log.Error("storing the connection failed", zap.String("tenant", req.Tenant), zap.Error(err))
		proxy.WriteError(w, http.StatusServiceUnavailable, proxy.CodeStoreUnavailable, req.Tenant, "the token store is unavailable", 5*time.Second)
		return
	}
	s.conns.forget(req.Tenant)
	s.log.Info("connection created", zap.String("tenant", req.Tenant), zap.String("app", req.App))
	// Not loaded until its first request: creating many connections costs
	// store space, not engines.
	writeJSON(w, http.StatusCreated, &connectionView{
		Name: req.Tenant, Source: "connection", App: req.App, Params: &c.Params, Created: &c.Created,
		Provider: t.spec.Provider, State: "connected",
	})
}

// connectQuery is the query of /_sidekey/oauth/connect/{app} that starts
// the consent for connection tenant with params: the inverse of
// connParamsFrom, so the URL a createConnection hint prints works as is.
func connectQuery(tenant string, p connParams) string {
	q := url.Values{"tenant": {tenant}}
	for key, value := range map[string]string{"store": p.Store, "tenant_space": p.TenantSpace, "shop_id": p.ShopID, "idp_key": p.IdpKey} {
		if value != "" {
			q.Set(key, value)
		}
	}
	return q.Encode()
}
