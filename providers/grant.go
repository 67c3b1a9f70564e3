package providers

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/sidekey/sidekey/tokensource"
)

// refresher is implemented by a grant (an AuthCode or a Source) that says
// whether it can renew a token without a person. A grant that does not
// implement it can.
type refresher interface{ CanRefresh() bool }

// storedGrant is implemented by a Source whose token request uses the
// tenant's stored token (the refresh_token grant).
type storedGrant interface {
	fetchWith(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error)
}

// CanRefresh reports whether the tenant's token can be renewed without a
// person. It is false for a consent flow whose platform has no refresh
// grant (Istores): such a token is used until it expires and never
// "refreshed". Fixed keys (static) never expire, so the answer does not
// matter for them.
func (t *Tenant) CanRefresh() bool {
	var grant any = t.Source
	if t.AuthCode != nil {
		grant = t.AuthCode
	}
	r, ok := grant.(refresher)
	return !ok || r.CanRefresh()
}

// NeedsPerson reports, without a token request, why no token can be
// obtained from prev (the stored token; nil: none) at now without a person:
// a consent tenant never connected or disconnected, a token that ran out
// with no refresh token (or whose platform has none), a refresh token past
// its known expiry. The error matches ErrConsentRequired. Nil: Fetch may
// try.
func (t *Tenant) NeedsPerson(prev *oauth2.Token, now time.Time) error {
	if t.AuthCode == nil {
		return nil
	}
	switch {
	case prev == nil:
		return fmt.Errorf("%w: tenant %s is not connected", ErrConsentRequired, t.Name)
	case !t.CanRefresh():
		return fmt.Errorf("%w: tenant %s's token ran out and %s has no refresh grant", ErrConsentRequired, t.Name, t.Provider)
	case prev.RefreshToken == "":
		return fmt.Errorf("%w: tenant %s's token ran out and there is no refresh token", ErrConsentRequired, t.Name)
	}
	if exp := tokensource.RefreshExpiry(prev); !exp.IsZero() && !now.Before(exp) {
		return fmt.Errorf("%w: tenant %s's refresh token expired at %s", ErrConsentRequired, t.Name, exp.UTC().Format(time.RFC3339))
	}
	return nil
}

// Fetch performs one token request for the tenant given its stored token
// prev (nil: the store holds none); it is how a tokensource.StoredSource
// obtains every tenant's tokens, whatever the grant:
//   - a consent flow refreshes with prev's refresh token (ask NeedsPerson
//     first, with the caller's clock: without a usable refresh token the
//     platform's Refresh fails with ErrConsentRequired);
//   - the refresh_token grant uses prev's refresh token — the last one
//     issued, stored before use — and the configured refresh_token only
//     when prev has none;
//   - other grants ignore prev.
//
// A rotated refresh token comes back in the token; the caller stores it
// before the access token is used (DESIGN invariant 3).
func (t *Tenant) Fetch(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error) {
	if t.AuthCode != nil {
		if prev == nil {
			return nil, t.NeedsPerson(prev, timeNow())
		}
		return t.AuthCode.Refresh(ctx, prev.RefreshToken)
	}
	if g, ok := t.Source.(storedGrant); ok {
		return g.fetchWith(ctx, prev)
	}
	return t.Source.(ContextTokenSource).TokenContext(ctx)
}

// FixedKey reports whether the tenant's token is a fixed key (static):
// nothing is ever requested, so nothing needs storing.
func (t *Tenant) FixedKey() bool { return t.AuthCode == nil && t.TokenURL == nil }
