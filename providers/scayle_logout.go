package providers

import (
	"errors"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
)

// scayleLogoutRedirectPath is SCAYLE's browser logout, below the
// Authentication API's scheme and host.
const scayleLogoutRedirectPath = "/v1/auth/logout/redirect"

// LogoutRedirecter is implemented by platforms with a browser logout page
// that ends the person's login at the identity provider (SCAYLE).
type LogoutRedirecter interface {
	// LogoutURL returns the page to send the browser of tok's person to;
	// the platform sends it on to callbackURL afterwards. now dates the
	// URL's signature, if it has one.
	LogoutURL(tok *oauth2.Token, callbackURL string, now time.Time) (string, error)
}

// LogoutURL returns SCAYLE's {scheme://host of auth_url}/v1/auth/logout/redirect
// ?shopId&jwt, the JWT HS256-signed with the shop secret over
// {callbackUrl, tokenId = the access token's jti, iat, exp = iat + 15 min}.
// The access token is read, not verified: sidekey got it from the platform.
func (p *scayle) LogoutURL(tok *oauth2.Token, callbackURL string, now time.Time) (string, error) {
	if tok == nil || tok.AccessToken == "" {
		return "", errors.New("providers: scayle: logout needs an access token")
	}
	var claims jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok.AccessToken, &claims); err != nil {
		return "", errors.New("providers: scayle: the access token is not a JWT, so it names no token id")
	}
	jti, _ := claims["jti"].(string)
	if jti == "" {
		return "", errors.New("providers: scayle: the access token carries no jti")
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"callbackUrl": callbackURL,
		"tokenId":     jti,
		"iat":         now.Unix(),
		"exp":         now.Add(scayleConsentLifetime).Unix(),
	}).SignedString(p.shopSecret)
	if err != nil {
		return "", errors.New("providers: scayle: cannot sign the logout JWT")
	}
	base := url.URL{Scheme: p.authURL.Scheme, Host: p.authURL.Host, Path: scayleLogoutRedirectPath}
	return withQuery(&base, url.Values{"shopId": {p.shopID}, "jwt": {signed}}), nil
}
