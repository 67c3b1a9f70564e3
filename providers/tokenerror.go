package providers

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// TokenError is what a failed token request returns. Its Error() is
// "<provider>: <op> failed: <status> <code>: <description>" (op is "token
// request" unless Op says otherwise; parts that are unknown are left out;
// without a response it names the transport error instead). It NEVER includes the raw response body, the client
// secret or any token: Code and Description come from the provider's error
// fields, cut to a sane length, stripped of control characters and of any
// credential the request carried.
type TokenError struct {
	// Provider is the platform that failed, e.g. "simplestore".
	Provider string
	// Status is the HTTP status of the token response; 0 when no response
	// arrived (see Err).
	Status int
	// Code is the provider's error code ("invalid_client", ...) or
	// "invalid_response" when a 2xx answer could not be used.
	Code string
	// Description is the provider's explanation (error_description, title,
	// message or detail), or what was wrong with an unusable answer.
	Description string
	// RetryAfter is the wait the provider asked for (Retry-After on a 429
	// or 503); zero when it gave none.
	RetryAfter time.Duration
	// Err is the cause: the transport error when no response arrived, the
	// read error when the body broke off; nil when the provider answered
	// with an error.
	Err error
	// ConsentRequired is set when only a person can fix this: the refresh
	// token was refused (invalid_grant, or a 400/401 on a refresh that does
	// not blame the client), or the platform has no refresh grant. Such an
	// error matches ErrConsentRequired with errors.Is and is not retryable.
	ConsentRequired bool
	// Op names what failed when it was not a token request, e.g. "revoke".
	Op string
}

// Error describes the failure without any secret or raw response body.
func (e *TokenError) Error() string {
	var b strings.Builder
	if e.Provider != "" {
		b.WriteString(e.Provider)
	} else {
		b.WriteString("providers")
	}
	op := e.Op
	if op == "" {
		op = "token request"
	}
	b.WriteString(": " + op + " failed: ")
	switch {
	case e.Status != 0:
		b.WriteString(strconv.Itoa(e.Status))
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
	case e.Code != "":
		b.WriteString(e.Code)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("unknown error")
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	return b.String()
}

// Unwrap returns the cause (nil when the provider answered with an error).
func (e *TokenError) Unwrap() error { return e.Err }

// Is reports whether target is ErrConsentRequired and e says a person must
// connect the tenant again (see ConsentRequired).
func (e *TokenError) Is(target error) bool {
	return target == ErrConsentRequired && e.ConsentRequired
}

// Retryable reports whether trying again later may succeed: no response, a
// broken response, a 408, 429 or 5xx. A rejected client or grant (4xx) will
// keep failing until the configuration or the consent changes, and so does
// an error that requires consent.
func (e *TokenError) Retryable() bool {
	switch {
	case e.ConsentRequired:
		return false
	case e.Status == 0, e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests,
		e.Status >= 500:
		return true
	case e.Status >= 200 && e.Status < 300:
		// invalid_response on a 2xx: a misbehaving server may recover.
		return true
	}
	return false
}

// Limits on text taken from a provider's error response.
const (
	maxCodeLen        = 64
	maxDescriptionLen = 256
	minSecretLen      = 4 // shorter credentials are not scrubbed (they would mangle words)
)

// clean makes provider-supplied text fit for an error message: control
// characters become spaces, invalid UTF-8 is dropped, every secret is
// replaced by "[redacted]" in every encoding (see redact) and the result is
// cut to max bytes.
func clean(s string, max int, secrets []string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = redact(s, secrets)
	s = strings.TrimSpace(s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// scrub cleans the provider-supplied parts of e.
func (e *TokenError) scrub(secrets []string) {
	e.Code = clean(e.Code, maxCodeLen, secrets)
	e.Description = clean(e.Description, maxDescriptionLen, secrets)
}

// retryAfter reads a Retry-After header given in seconds or as an HTTP date.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(timeNow()); d > 0 {
			return min(d, 24*time.Hour)
		}
	}
	return 0
}

// fromOAuth2Error turns an error from golang.org/x/oauth2 into a
// *TokenError. A *oauth2.RetrieveError's own Error() contains the response
// body, so only its status and error fields are kept; the body is read
// here for a description in shapes x/oauth2 does not know ({error, title},
// {error, message}, RFC 7807).
func fromOAuth2Error(provider string, err error, secrets []string) *TokenError {
	var large *bodyTooLargeError
	if errors.As(err, &large) {
		return &TokenError{Provider: provider, Status: large.status, Code: codeInvalidResponse,
			Description: "response body exceeds 1 MiB"}
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		te := &TokenError{Provider: provider, Code: re.ErrorCode, Description: re.ErrorDescription}
		contentType := ""
		if re.Response != nil {
			te.Status = re.Response.StatusCode
			te.RetryAfter = retryAfter(re.Response.Header)
			contentType = re.Response.Header.Get("Content-Type")
		}
		if te.Code == "" || te.Description == "" {
			code, desc := parseErrorFields(contentType, re.Body)
			if te.Code == "" {
				te.Code = code
			}
			if te.Description == "" {
				te.Description = desc
			}
		}
		te.scrub(secrets)
		return te
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &TokenError{Provider: provider, Err: err}
	}
	// x/oauth2 could not use a 2xx answer ("cannot parse json: ...",
	// "server response missing access_token"); its messages name the
	// problem, never the body's content.
	te := &TokenError{
		Provider:    provider,
		Code:        codeInvalidResponse,
		Description: strings.TrimPrefix(err.Error(), "oauth2: "),
	}
	te.scrub(secrets)
	return te
}
