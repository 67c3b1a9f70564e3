package server

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sidekey/sidekey/notify"
	"github.com/sidekey/sidekey/providers"
	"github.com/sidekey/sidekey/proxy"
)

// The operator console: GET /_sidekey/ renders every tenant and
// connection, a page at a time, from the admin API's listing; its assets
// are embedded and served from /_sidekey/console/. The page holds names,
// states, times, counts and error text — never a token, secret or session
// handle — and its only script disconnects through the admin API from the
// same origin.

//go:embed console
var consoleFiles embed.FS

var consoleTemplate = template.Must(template.New("console.html").ParseFS(consoleFiles, "console/console.html"))

// consoleCSP allows the page its own script, style and fetches and
// nothing else: no inline code, no frames, no other origin.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// consolePageSize is how many tenants one console page lists.
const consolePageSize = 50

// consoleAttentionMax bounds the "Needs attention" list.
const consoleAttentionMax = 100

// consoleRoutes registers the console and its assets on mux.
func (s *Server) consoleRoutes(mux *http.ServeMux) {
	mux.Handle("GET /_sidekey/{$}", s.adminOnly(http.HandlerFunc(s.console)))
	mux.Handle("GET /_sidekey", http.RedirectHandler("/_sidekey/", http.StatusMovedPermanently))
	assets, _ := fs.Sub(consoleFiles, "console") // cannot fail: the directory is embedded
	files := http.StripPrefix("/_sidekey/console/", http.FileServerFS(assets))
	mux.HandleFunc("GET /_sidekey/console/{file}", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.PathValue("file"), ".html") {
			proxy.WriteError(w, http.StatusNotFound, proxy.CodeNotFound, "", "no such sidekey endpoint", 0)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// consolePage is what the template renders.
type consolePage struct {
	Version       string
	Now           string
	Attention     []consoleRow
	AttentionMore bool
	Webhooks      *notify.Status
	Query         string
	States        []consoleOption
	Rows          []consoleRow
	Error         string
	First, Next   string // links to the first and the next page
}

// consoleOption is one choice of the state filter.
type consoleOption struct {
	Value, Label string
	Selected     bool
}

// console serves GET /_sidekey/?q=PREFIX&state=STATE&after=NAME.
func (s *Server) console(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix := strings.ToLower(strings.TrimSpace(q.Get("q")))
	state := q.Get("state")
	if !tenantStates[state] {
		state = ""
	}
	now := s.now()
	page := consolePage{Version: s.version, Now: now.UTC().Format("2006-01-02 15:04 UTC"), Query: prefix, Webhooks: s.webhookStatus()}
	page.Attention, page.AttentionMore = s.attentionRows(now)
	page.States = []consoleOption{{"", "any", state == ""}}
	for _, v := range []string{stateConnected, stateConsentNeededSoon, stateConsentRequired, stateError} {
		page.States = append(page.States, consoleOption{v, v, state == v})
	}

	after := q.Get("after")
	if after == "" && prefix != "" {
		after = justBefore(prefix)
	}
	views, next, err := s.listPage(r, state, after)
	if err != nil {
		page.Error = err.Error()
	}
	for _, v := range views {
		if !strings.HasPrefix(v.Name, prefix) {
			next = "" // past the names with this prefix
			break
		}
		page.Rows = append(page.Rows, s.consoleRow(v, now))
	}
	sortAttentionFirst(page.Rows)
	link := func(after string) string {
		v := url.Values{}
		if prefix != "" {
			v.Set("q", prefix)
		}
		if state != "" {
			v.Set("state", state)
		}
		if after != "" {
			v.Set("after", after)
		}
		if len(v) == 0 {
			return "/_sidekey/"
		}
		return "/_sidekey/?" + v.Encode()
	}
	if next != "" {
		page.Next = link(next)
	}
	if q.Get("after") != "" {
		page.First = link("")
	}

	var buf bytes.Buffer
	if err := consoleTemplate.Execute(&buf, page); err != nil {
		s.log.Error("console: rendering failed", zap.Error(err))
		http.Error(w, "console: rendering failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}

// listPage asks the admin API (GET /_sidekey/admin/connections) for one
// page of tenants, in name order after after.
func (s *Server) listPage(r *http.Request, state, after string) ([]*connectionView, string, error) {
	v := url.Values{"limit": {strconv.Itoa(consolePageSize)}}
	if state != "" {
		v.Set("state", state)
	}
	if after != "" {
		v.Set("after", after)
	}
	req := r.Clone(r.Context())
	req.URL = &url.URL{Path: "/_sidekey/admin/connections", RawQuery: v.Encode()}
	rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	s.listConnections(rec, req)
	if rec.status != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &e)
		return nil, "", errors.New("listing tenants failed: " + e.Message)
	}
	var out struct {
		Items []*connectionView `json:"items"`
		Next  string            `json:"next"`
	}
	if err := json.Unmarshal(rec.body.Bytes(), &out); err != nil {
		return nil, "", errors.New("listing tenants failed: unreadable answer")
	}
	return out.Items, out.Next, nil
}

// bufferedResponse is an http.ResponseWriter that keeps the answer.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(code int)        { b.status = code }

// justBefore returns a name that sorts just before every name starting
// with prefix and after every name that sorts before them, for ?after=:
// tenant names use bytes below 0x7f only.
func justBefore(prefix string) string {
	last := prefix[len(prefix)-1]
	if last == 0 {
		return prefix[:len(prefix)-1]
	}
	return prefix[:len(prefix)-1] + string(rune(last-1)) + "\x7f"
}

// attentionRows lists the loaded tenants a person must act on: consent
// needed soon or now, or failing. At most consoleAttentionMax; more
// reports that there were more.
func (s *Server) attentionRows(now time.Time) ([]consoleRow, bool) {
	var rows []consoleRow
	for name, st := range s.statusMap() {
		if !needsAttention(st) {
			continue
		}
		v := &connectionView{Name: name, Source: "config", Provider: st.Provider, State: st.State, Status: st}
		t, ok := s.live.Load().tenants[name]
		if !ok {
			v.Source = "connection"
			t, ok = s.conns.loaded.Peek(name) // Peek: showing a tenant does not make it recent
		}
		if ok && t.conf != nil {
			v.App = t.conf.App
		}
		rows = append(rows, s.consoleRow(v, now))
	}
	sortAttentionFirst(rows)
	if len(rows) > consoleAttentionMax {
		return rows[:consoleAttentionMax], true
	}
	return rows, false
}

// needsAttention reports whether a tenant's status asks a person to act.
func needsAttention(st tenantStatus) bool {
	switch eventFor(st) {
	case notify.ConsentRequired, notify.ConsentNeededSoon, notify.RefreshFailing:
		return true
	}
	return false
}

// consoleRow is one tenant as the console shows it.
type consoleRow struct {
	Name, App, Provider, State string
	Timeline                   timeline
	ExpiryIn, ExpiryAt         string
	RefreshIn, RefreshAt       string
	LastError                  string
	Requests, Fetches          uint64
	ConnectHref                string // the consent flow, for consent tenants
	CanDisconnect              bool
}

// consoleRow describes v for the console.
func (s *Server) consoleRow(v *connectionView, now time.Time) consoleRow {
	st := v.Status
	row := consoleRow{
		Name: v.Name, App: v.App, Provider: v.Provider, State: v.State,
		Timeline:  newTimeline(now, st.Expiry, st.RefreshExpiry),
		LastError: st.LastError, Requests: st.Requests, Fetches: st.Fetches,
	}
	if row.Provider == "" {
		row.Provider = st.Provider
	}
	if st.State == "consent_needed_soon" {
		row.State = st.State
	}
	row.ExpiryIn, row.ExpiryAt = relativeTime(st.Expiry, now)
	row.RefreshIn, row.RefreshAt = relativeTime(st.RefreshExpiry, now)
	row.ConnectHref = s.connectHref(v)
	row.CanDisconnect = row.Provider != "static" && (v.Source == "connection" || row.State != "consent_required")
	return row
}

// connectHref is where the console's Connect button goes for v: the
// consent flow on this same origin, or "" for a tenant without one.
func (s *Server) connectHref(v *connectionView) string {
	if v.Source == "connection" && v.App != "" {
		app := s.live.Load().cfg.Apps[v.App]
		if app == nil || !providers.NeedsConsent(app) {
			return ""
		}
		q := url.Values{"tenant": {v.Name}}
		if p := v.Params; p != nil {
			for k, val := range map[string]string{"store": p.Store, "tenant_space": p.TenantSpace, "shop_id": p.ShopID, "idp_key": p.IdpKey} {
				if val != "" {
					q.Set(k, val)
				}
			}
		}
		return "/_sidekey/oauth/connect/" + url.PathEscape(v.App) + "?" + q.Encode()
	}
	if v.Status.ConnectURL == "" {
		return ""
	}
	return "/_sidekey/oauth/connect/" + url.PathEscape(v.Name)
}

// attentionRank orders states: consent_needed_soon and consent_required
// first, then errors, then the rest.
func attentionRank(state string) int {
	switch state {
	case "consent_needed_soon", "consent_required":
		return 0
	case "error":
		return 1
	}
	return 2
}

// sortAttentionFirst sorts rows by attention, then name.
func sortAttentionFirst(rows []consoleRow) {
	slices.SortStableFunc(rows, func(a, b consoleRow) int {
		if d := attentionRank(a.State) - attentionRank(b.State); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
}
