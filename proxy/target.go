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
	errDotSegment    = errors.New("path must not contain '.' or '..' segments (also not as '..;', with look-alike dots or escaped)")
	errBadEscape     = errors.New("path contains an invalid percent-escape")
	errControlChar   = errors.New("request target contains a control character")
	errEscapedCtl    = errors.New("path contains an escaped control character (%00-%1F, %7F)")
	errOverlongUTF8  = errors.New("path contains an overlong UTF-8 sequence")
	errFragment      = errors.New("request target must not contain '#' (a fragment)")
)

// parseTarget splits a request's RequestURI into tenant, escaped rest path
// and raw query without decoding or normalising anything, so the upstream
// receives the caller's bytes. It refuses anything that could leave the
// tenant's API base, or that an upstream might read as such: absolute-form
// targets, dot segments (also percent-encoded, written with backslashes,
// followed by a ';' parameter as in "..;", or spelt with dots or slashes
// that Unicode normalisation turns into ASCII ones), invalid escapes,
// overlong UTF-8 and escaped control characters in the path. The query is
// passed as it is: sidekey never reads it.
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

// checkSegments refuses, in an escaped path, what could climb out of the
// API base at an upstream that decodes or normalises paths: dot segments
// in any spelling, escaped control characters and overlong UTF-8. It is
// cheap for the common case: a path with no '.', '%', '\\' or non-ASCII
// byte is accepted at once.
func checkSegments(escaped string) error {
	if !needsDecoding(escaped) {
		return nil
	}
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		return errBadEscape
	}
	for i := 0; i < len(decoded); i++ {
		switch c := decoded[i]; {
		case c < 0x20 || c == 0x7f:
			return errEscapedCtl // raw ones were refused before decoding
		case overlong(decoded[i:]):
			return errOverlongUTF8
		}
	}
	for seg := range strings.FieldsFuncSeq(decoded, isSlash) {
		seg, _, _ = strings.Cut(seg, ";") // "..;x" is ".." to servlet containers
		if seg = dotLookalikes.Replace(seg); seg == "." || seg == ".." {
			return errDotSegment
		}
	}
	return nil
}

// needsDecoding reports whether escaped holds a byte checkSegments must
// look at decoded: '.', '%', '\\' or a non-ASCII byte.
func needsDecoding(escaped string) bool {
	for i := 0; i < len(escaped); i++ {
		switch c := escaped[i]; {
		case c == '.', c == '%', c == '\\', c >= 0x80:
			return true
		}
	}
	return false
}

// overlong reports whether b starts with an overlong UTF-8 sequence: a
// longer than needed spelling of a code point (%C0%AE is '.'), which
// lenient decoders still accept. A lead byte followed by no continuation
// byte is no UTF-8 at all (Latin-1 "%E0b", say) and passes.
func overlong(b string) bool {
	if len(b) < 2 || b[1] < 0x80 || b[1] > 0xbf {
		return false
	}
	switch b[0] {
	case 0xc0, 0xc1:
		return true
	case 0xe0:
		return b[1] < 0xa0
	case 0xf0:
		return b[1] < 0x90
	}
	return false
}

// isSlash reports whether r separates path segments, for sidekey or for an
// upstream that normalises Unicode (NFKC turns U+FF0F and U+FF3C into '/'
// and '\\').
func isSlash(r rune) bool {
	return r == '/' || r == '\\' || r == '\uff0f' || r == '\uff3c'
}

// dotLookalikes spells with ASCII dots what Unicode normalisation (NFKC)
// or IDNA turns into dots: U+2024 ONE DOT LEADER, U+2025 TWO DOT LEADER,
// U+FE52 SMALL FULL STOP, U+FF0E FULLWIDTH FULL STOP, U+3002 IDEOGRAPHIC
// FULL STOP and U+FF61 HALFWIDTH IDEOGRAPHIC FULL STOP, so that
// checkSegments sees a dot segment however it is spelt.
var dotLookalikes = strings.NewReplacer(
	"\u2024", ".", "\u2025", "..", "\ufe52", ".", "\uff0e", ".", "\u3002", ".", "\uff61", ".",
)

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
