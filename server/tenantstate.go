package server

import (
	"errors"
	"time"

	"github.com/sidekey/sidekey/providers"
)

// The states of a tenant: the one model that /_sidekey/status, the admin
// API, `sidekey tenants` and the metrics show (tenantState decides).
const (
	// stateConnected: a token is served, or one can be obtained without a
	// person (a client-credentials tenant before its first request).
	stateConnected = "connected"
	// stateConsentNeededSoon: a token is served, but within consentSoon it
	// runs out with nothing to renew it, or its refresh token expires.
	stateConsentNeededSoon = "consent_needed_soon"
	// stateConsentRequired: a person must connect the tenant: never
	// connected, disconnected, refresh token refused or expired, or a token
	// that cannot be refreshed has expired.
	stateConsentRequired = "consent_required"
	// stateError: no valid token, and the last token request failed.
	stateError = "error"
	// stateSessions: a tenant with sessions serves its customers' tokens
	// (Sidekey-Session) and has none of its own to connect.
	stateSessions = "sessions"
)

// tenantStates are the values of tenantState, for ?state= filters.
var tenantStates = map[string]bool{
	stateConnected: true, stateConsentNeededSoon: true, stateConsentRequired: true, stateError: true, stateSessions: true,
}

// consentSoon is how close to the end of what can be renewed without a
// person (a token without a refresh grant, as Istores', or a refresh token
// whose expiry is known) a tenant shows consent_needed_soon.
const consentSoon = 14 * 24 * time.Hour

// tokenFacts is what a tenant's state is decided from: its engine's view,
// or the store's when no engine has looked yet.
type tokenFacts struct {
	consent       bool      // tokens come through a consent flow
	canRefresh    bool      // the grant can renew a token without a person
	known         bool      // a token is known (in memory or in the store)
	valid         bool      // that token is valid now
	renewable     bool      // that token carries a refresh token
	expiry        time.Time // that token's expiry; zero: none
	refreshExpiry time.Time // its refresh token's expiry; zero: unknown
	lastErr       error     // the last token request's error; nil: none
}

// tenantState is the state (stateConnected, ...) of a tenant with facts f
// at now.
func tenantState(f tokenFacts, now time.Time) string {
	refreshDead := !f.refreshExpiry.IsZero() && !now.Before(f.refreshExpiry)
	renewable := f.canRefresh && f.renewable && !refreshDead
	soon := func(t time.Time) bool { return !t.IsZero() && t.Sub(now) < consentSoon }
	switch {
	case !f.valid && errors.Is(f.lastErr, providers.ErrConsentRequired):
		return stateConsentRequired
	case f.consent && !f.known:
		return stateConsentRequired
	case f.consent && !f.valid && !renewable:
		return stateConsentRequired
	case !f.valid && f.lastErr != nil:
		return stateError
	case f.valid && f.consent && !renewable && soon(f.expiry):
		return stateConsentNeededSoon
	case f.valid && renewable && soon(f.refreshExpiry):
		return stateConsentNeededSoon
	}
	return stateConnected
}
