package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/sidekey/sidekey/config"
	"github.com/sidekey/sidekey/proxy"
	"github.com/sidekey/sidekey/tlsserve"
)

// callerSet authenticates callers on any listener (configured callers are
// enforced on loopback too; off loopback they are required): by the
// subject of a verified TLS client certificate, or by the SHA-256 of the
// key they present in the caller key header. Looking up the hash of a
// presented key reveals nothing about stored keys, so no comparison runs on
// secret bytes. It is read-only once built, so safe for concurrent use.
type callerSet struct {
	byHash    map[[sha256.Size]byte]*callerEntry
	bySubject map[string]*callerEntry // by tlsserve.CertSubject of the client certificate
	header    string                  // the caller key header
	bearer    bool                    // the key must follow "Bearer " (Proxy-Authorization)
	askKey    string                  // the 401 message for a request with no credential
}

type callerEntry struct {
	name    string
	tenants map[string]bool
	apps    map[string]bool // every tenant of these apps, connections included
}

// newCallerSet indexes the configured callers; nil when there are none.
func newCallerSet(cfg *config.Config) (*callerSet, error) {
	if len(cfg.Callers) == 0 {
		return nil, nil
	}
	header := cfg.CallerKeyHeader
	if header == "" {
		header = config.DefaultCallerKeyHeader
	}
	cs := &callerSet{
		byHash:    make(map[[sha256.Size]byte]*callerEntry, len(cfg.Callers)),
		bySubject: make(map[string]*callerEntry),
		header:    http.CanonicalHeaderKey(header),
		bearer:    strings.EqualFold(header, config.DefaultCallerKeyHeader),
	}
	for name, c := range cfg.Callers {
		e := &callerEntry{name: name, tenants: make(map[string]bool, len(c.Tenants)), apps: make(map[string]bool, len(c.Apps))}
		for _, t := range c.Tenants {
			e.tenants[t] = true
		}
		for _, a := range c.Apps {
			e.apps[a] = true
		}
		if c.CertSubject != "" && c.KeySHA256 == "" {
			cs.bySubject[c.CertSubject] = e
			continue
		}
		raw, err := hex.DecodeString(c.KeySHA256)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("server: callers.%s.key_sha256: not a hex sha256", name)
		}
		cs.byHash[[sha256.Size]byte(raw)] = e
	}
	cs.askKey = "present your caller key as " + cs.header + ": Bearer <key>"
	if !cs.bearer {
		cs.askKey = "present your caller key in the " + cs.header + " header"
	}
	if len(cs.bySubject) > 0 {
		cs.askKey += ", or a client certificate of a configured caller"
	}
	return cs, nil
}

// admit lets a request for tenant (as the proxy parsed it from the target,
// or a session endpoint names it) through only for a caller allowed that
// tenant, and otherwise answers 401 caller_unauthorized (no known
// certificate subject or key) or 403 caller_forbidden (another caller's
// tenant). The proxy removes the key header before forwarding.
//
// appOf names a tenant's app ("" when it has none, ok false when there is
// no such tenant: the request then goes on to answer unknown_tenant).
func (cs *callerSet) admit(w http.ResponseWriter, r *http.Request, tenant string, appOf func(tenant string) (app string, ok bool)) bool {
	e, ok := cs.identify(w, r)
	if !ok {
		return false
	}
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

// identify finds the caller of r, or answers 401. A verified client
// certificate whose subject is a caller's decides; otherwise the key does.
func (cs *callerSet) identify(w http.ResponseWriter, r *http.Request) (*callerEntry, bool) {
	var subject string
	certified := r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0
	if certified {
		subject = tlsserve.CertSubject(r.TLS.VerifiedChains[0][0])
		if e := cs.bySubject[subject]; e != nil {
			return e, true
		}
	}
	key, ok := cs.key(r)
	switch {
	case !ok && certified:
		// The subject is not secret, and naming it as cert_subject takes it
		// lets an operator copy it (tlsserve.CertSubject escapes every control and
		// non-ASCII character).
		proxy.WriteError(w, http.StatusUnauthorized, proxy.CodeCallerUnauthorized, "",
			`the client certificate subject "`+subject+`" is not a configured caller (cert_subject)`, 0)
		return nil, false
	case !ok:
		proxy.WriteError(w, http.StatusUnauthorized, proxy.CodeCallerUnauthorized, "", cs.askKey, 0)
		return nil, false
	}
	e, found := cs.byHash[sha256.Sum256([]byte(key))]
	if !found {
		proxy.WriteError(w, http.StatusUnauthorized, proxy.CodeCallerUnauthorized, "", "unknown caller key", 0)
		return nil, false
	}
	return e, true
}

// key is the caller key r presents: in Proxy-Authorization after "Bearer ";
// in another header its whole value, or what follows "Bearer ".
func (cs *callerSet) key(r *http.Request) (string, bool) {
	v := r.Header.Get(cs.header)
	if k, ok := strings.CutPrefix(v, "Bearer "); ok {
		v = k
	} else if cs.bearer {
		return "", false
	}
	return v, v != ""
}

// hasSubjects reports whether some caller authenticates by certificate.
func (cs *callerSet) hasSubjects() bool { return cs != nil && len(cs.bySubject) > 0 }
