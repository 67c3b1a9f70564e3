package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/proxy"
)

// callerSet authenticates callers on a non-loopback listener by the SHA-256
// of the key they present in Proxy-Authorization. Looking up the hash of a
// presented key reveals nothing about stored keys, so no comparison runs on
// secret bytes.
type callerSet struct {
	byHash map[[sha256.Size]byte]*callerEntry
}

type callerEntry struct {
	name    string
	tenants map[string]bool
	apps    map[string]bool // every tenant of these apps, connections included
}

// newCallerSet indexes the configured callers; nil when there are none.
func newCallerSet(callers map[string]*config.Caller) (*callerSet, error) {
	if len(callers) == 0 {
		return nil, nil
	}
	cs := &callerSet{byHash: make(map[[sha256.Size]byte]*callerEntry, len(callers))}
	for name, c := range callers {
		raw, err := hex.DecodeString(c.KeySHA256)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("server: callers.%s.key_sha256: not a hex sha256", name)
		}
		e := &callerEntry{name: name, tenants: make(map[string]bool, len(c.Tenants)), apps: make(map[string]bool, len(c.Apps))}
		for _, t := range c.Tenants {
			e.tenants[t] = true
		}
		for _, a := range c.Apps {
			e.apps[a] = true
		}
		cs.byHash[[sha256.Size]byte(raw)] = e
	}
	return cs, nil
}

// admit lets a request to /{tenant}/… through only for a caller allowed
// that tenant, and otherwise answers 401 caller_unauthorized (no known key)
// or 403 caller_forbidden (another caller's tenant). The proxy removes the
// key header before forwarding.
//
// appOf names a tenant's app ("" when it has none, ok false when there is
// no such tenant: the request then goes on to answer unknown_tenant).
func (cs *callerSet) admit(w http.ResponseWriter, r *http.Request, appOf func(tenant string) (app string, ok bool)) bool {
	key, ok := strings.CutPrefix(r.Header.Get("Proxy-Authorization"), "Bearer ")
	if !ok || key == "" {
		proxy.WriteError(w, http.StatusUnauthorized, proxy.CodeCallerUnauthorized, "", "present your caller key as Proxy-Authorization: Bearer <key>", 0)
		return false
	}
	e, found := cs.byHash[sha256.Sum256([]byte(key))]
	if !found {
		proxy.WriteError(w, http.StatusUnauthorized, proxy.CodeCallerUnauthorized, "", "unknown caller key", 0)
		return false
	}
	tenant, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if e.tenants[tenant] {
		return true
	}
	if len(e.apps) > 0 {
		app, ok := appOf(tenant)
		if !ok || e.apps[app] {
			return true
		}
	}
	proxy.WriteError(w, http.StatusForbidden, proxy.CodeCallerForbidden, tenant, "caller "+e.name+" may not use tenant "+tenant, 0)
	return false
}
