// Package forwardproxy is sidekey's HTTPS_PROXY mode: an HTTP forward
// proxy that intercepts the hosts tenants name in intercept_hosts and
// refuses every other.
//
// An app configured with HTTPS_PROXY=http://127.0.0.1:3128 that calls
// https://api.simplestore.io/v1/cart/42 sends "CONNECT
// api.simplestore.io:443". When a tenant intercepts that host the proxy
// answers 200, then speaks TLS inside the tunnel itself with a leaf
// certificate from the local CA for exactly that host (a ClientHello for
// any other name fails), and serves the requests that arrive in the tunnel
// as that tenant: whole path, token injected, sent to the tenant's
// api_url. sidekey never resolves or dials the intercepted host. A plain
// "GET http://api.simplestore.io/…" (HTTP_PROXY) is served the same way.
//
// It is not an open proxy. A CONNECT or absolute-form request is refused
// with 403 host_not_intercepted when its host is not intercepted, is an IP
// address, or names a port other than 443 (CONNECT) or 80 (plain http).
// Requests inside a tunnel must name the tunnel's host (else 421).
//
// Callers authenticate on the CONNECT (or plain) request, through
// Options.Admit, with "Proxy-Authorization: Bearer <key>" or, as clients
// send it from a proxy URL such as http://app:<key>@127.0.0.1:3128,
// "Proxy-Authorization: Basic base64(app:<key>)" — the key is the
// password. A refusal of a missing or wrong key is 407 with
// Proxy-Authenticate, so clients know to send credentials.
package forwardproxy
