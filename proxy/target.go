package proxy

import (
	"errors"
	"net/url"
	"strings"

	"github.com/sidekey/sidekey/config"
)

// target is a parsed inbound request target: /{tenant}{rest}?{query}.
type target struct {
	tenant   string // first path segment, validated as a tenant name
	rest     string // escaped remainder of the path, "" or starting with "/"
	rawQuery string // byte-exact query, without "?"
}

// Errors parseTarget returns; their text is safe to show a caller.
var (
	errNotOriginForm = errors.New("request target must be a path (origin-form), not an absolute URL")
	errNoTenant      = errors.New("request path must start with /{tenant}/")
	errBadTenant     = errors.New("tenant name must match [a-z0-9][a-z0-9._-]*")
	errDotSegment    = errors.New("path must not contain '.' or '..' segments")
	errBadEscape     = errors.New("path contains an invalid percent-escape")
	errControlChar   = errors.New("request target contains a control character")
	errFragment      = errors.New("request target must not contain '#' (a fragment)")
)

// parseTarget splits a request's RequestURI into tenant, escaped rest path
// and raw query without decoding or normalising anything, so the upstream
// receives the caller's bytes. It refuses anything that could leave the
// tenant's API base: absolute-form targets, dot segments (also when
// percent-encoded or written with backslashes) and invalid escapes.
func parseTarget(requestURI string) (target, error) {
	if !strings.HasPrefix(requestURI, "/") {
		return target{}, errNotOriginForm
	}
	for i := 0; i < len(requestURI); i++ {
		switch c := requestURI[i]; {
		case c < 0x20 || c == 0x7f:
			// net/http refuses these already; never forward one.
			return target{}, errControlChar
		case c == '#':
			// A request target has no fragment (RFC 9112 3.2); net/http
			// would pass one on inside the query.
			return target{}, errFragment
		}
	}
	path, query, _ := strings.Cut(requestURI, "?")
	name, rest, _ := strings.Cut(path[1:], "/")
	if name == "" {
		return target{}, errNoTenant
	}
	if !config.ValidTenantName(name) {
		return target{}, errBadTenant
	}
	if rest != "" || strings.HasSuffix(path, "/") {
		rest = path[1+len(name):]
	}
	if err := checkSegments(rest); err != nil {
		return target{}, err
	}
	return target{tenant: name, rest: rest, rawQuery: query}, nil
}

// checkSegments rejects dot segments in an escaped path. It is cheap for
// the common case: a path with no '.', '%' or '\' is accepted at once.
func checkSegments(escaped string) error {
	if !strings.ContainsAny(escaped, ".%\\") {
		return nil
	}
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		return errBadEscape
	}
	for seg := range strings.FieldsFuncSeq(decoded, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return errDotSegment
		}
	}
	return nil
}

// basePath is base's escaped path without a trailing slash: the prefix
// every proxied path is appended to. Routes compute it once.
func basePath(base *url.URL) string {
	return strings.TrimSuffix(base.EscapedPath(), "/")
}

// joinURL returns the upstream URL for rest (escaped) and rawQuery under
// base, whose escaped path is prefix (basePath). The result's RawPath
// carries the caller's escaping byte for byte. It returns a value, so the
// hot path can copy it into the outbound request's URL without allocating
// another.
func joinURL(base *url.URL, prefix, rest, rawQuery string) (url.URL, error) {
	escaped := prefix + rest
	if escaped == "" {
		escaped = "/"
	}
	path, err := url.PathUnescape(escaped)
	if err != nil {
		return url.URL{}, errBadEscape
	}
	u := url.URL{
		Scheme:   base.Scheme,
		Host:     base.Host,
		Path:     path,
		RawQuery: rawQuery,
	}
	if path != escaped {
		u.RawPath = escaped
	}
	return u, nil
}
