// Package tokensource is sidekey's per-tenant token engine: RefreshAhead
// wraps a raw grant (an oauth2.TokenSource whose every Token call is one
// token request) in a Source that answers from memory and refreshes in the
// background.
//
// Why not oauth2.ReuseTokenSource, the usual cache? It is built for one
// client making a few calls, not for a proxy answering thousands:
//
//   - It takes a mutex on every call and holds it during the fetch, so when
//     a token runs out every caller blocks behind the token request, and the
//     request itself cannot be abandoned: there is no context and no
//     deadline for the waiters. A Source serves a valid token lock-free and
//     allocation-free (one atomic load), and waiters share one fetch, each
//     leaving at its own context deadline, the fetch bounded by FetchTimeout.
//   - It refreshes only after the token has (almost) expired, so every
//     refresh is on some caller's critical path. A Source refreshes in the
//     background once half the lifetime has passed (Envoy's choice) while
//     callers keep getting the still-valid token; a slow or failing identity
//     provider has the other half of the lifetime to recover.
//   - Its early expiry is a fixed 10 s (or another fixed value with
//     ReuseTokenSourceWithExpiry), not scaled to the token's life: too much
//     for short-lived tokens. A Source takes off min(5 s, lifetime/10).
//   - It has no backoff: after a failed fetch each queued caller, in turn,
//     asks the failing identity provider again, a stampede. A Source
//     retries once per source with jittered exponential backoff
//     and, meanwhile, answers callers at once with a *FetchError saying
//     when the next attempt runs.
//   - It cannot drop a token the API has rejected. Source.Invalidate drops
//     a token only if it is still the current one, so a late 401 for an old
//     token cannot throw away a fresh one; and it drops each token at most
//     once, without backoff, so that one caller hitting a path the API
//     refuses cannot take the tenant offline for the others.
//
// A token with a zero Expiry (StoreHippo's "permanent" tokens) never expires
// and is never refreshed; only Invalidate drops it.
package tokensource
