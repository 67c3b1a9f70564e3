package providers

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// jwtExpiry reads the exp claim of an access token that is a JWT, without
// verifying its signature: sidekey only uses it to refresh in time, never
// to trust the token. ok is false for a token that is not a JWT or has no
// usable exp.
func jwtExpiry(token string) (exp time.Time, ok bool) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return time.Time{}, false
	}
	date, err := claims.GetExpirationTime()
	if err != nil || date == nil {
		return time.Time{}, false
	}
	return date.Time, true
}

// capExpiry returns the earlier of expiry (zero: unknown) and the access
// token's JWT exp claim. An exp that had already passed when the request
// was sent is ignored with a warning: the platform's clock and ours
// disagree, and trusting it would throw away a token the platform just
// issued.
func capExpiry(token string, expiry, start time.Time, log *zap.Logger) time.Time {
	exp, ok := jwtExpiry(token)
	switch {
	case !ok:
		return expiry
	case !exp.After(start):
		log.Warn("the access token's JWT exp is already past: clocks disagree; using expires_in",
			zap.Time("exp", exp), zap.Time("now", start))
		return expiry
	case expiry.IsZero() || exp.Before(expiry):
		return exp
	}
	return expiry
}
