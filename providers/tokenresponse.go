package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

const (
	// maxTokenResponse bounds the token response body read into memory.
	maxTokenResponse = 1 << 20
	// maxExpiresIn caps a lifetime in seconds (about 68 years), as
	// golang.org/x/oauth2 does; larger values are taken as this.
	maxExpiresIn = math.MaxInt32
	// codeInvalidResponse is TokenError.Code for a 2xx answer that is not a
	// usable token.
	codeInvalidResponse = "invalid_response"
)

// tokenResponse is a successful token response, read leniently.
type tokenResponse struct {
	AccessToken  string
	TokenType    string // raw, e.g. "bearer"; not used for injection
	RefreshToken string // "" when none was issued
	Scope        string // granted scopes, space separated; "" when not stated
	ExpiresIn    int64  // lifetime in seconds; 0 when the provider did not say
	// RefreshExpiresIn is the refresh token's lifetime in seconds, from
	// refresh_expires_in (Keycloak) or refresh_token_expires_in (GitHub,
	// Microsoft); 0 when not stated (Keycloak's 0 means no expiry).
	RefreshExpiresIn int64
}

// parseTokenResponse reads a token endpoint's answer: a JSON object or, when
// the Content-Type says so and the body does not look like JSON, a form.
// The lifetime may be expires_in or SimpleStore's documented misspelling
// expiries_in, as a number or a numeric string; fractions are dropped,
// values beyond maxExpiresIn are capped, a negative value is an error. Any
// non-2xx status, or an "error" field, yields a *TokenError carrying the
// status and the provider's error fields; a 2xx that is not a usable token
// yields a *TokenError with Code "invalid_response" and a description that
// never quotes the body. TokenError.Provider is left for the caller to set.
func parseTokenResponse(status int, contentType string, body []byte) (tokenResponse, error) {
	fields, isJSON, err := decodeFields(contentType, body)
	ok := status >= 200 && status < 300
	if !ok || fields.str("error") != "" {
		code, desc := errorFields(fields)
		return tokenResponse{}, &TokenError{Status: status, Code: code, Description: desc}
	}
	invalid := func(desc string) (tokenResponse, error) {
		return tokenResponse{}, &TokenError{Status: status, Code: codeInvalidResponse, Description: desc}
	}
	if err != nil {
		return invalid(err.Error())
	}
	var tr tokenResponse
	var typeErr error
	if tr.AccessToken, typeErr = fields.mustStr("access_token"); typeErr != nil {
		return invalid(typeErr.Error())
	}
	switch {
	case tr.AccessToken == "" && !isJSON && len(fields.form) == 0:
		return invalid("response is neither JSON nor a form")
	case tr.AccessToken == "":
		return invalid("missing access_token")
	case !validHeaderValue(tr.AccessToken):
		return invalid("access_token contains control characters")
	}
	if tr.RefreshToken, typeErr = fields.mustStr("refresh_token"); typeErr != nil {
		return invalid(typeErr.Error())
	}
	tr.TokenType = fields.str("token_type")
	tr.Scope = fields.scope()
	for _, name := range []string{"expires_in", "expiries_in"} {
		secs, given, err := fields.lifetime(name)
		if err != nil {
			return invalid(err.Error())
		}
		if given {
			tr.ExpiresIn = secs
			break
		}
	}
	if tr.RefreshToken != "" {
		for _, name := range []string{"refresh_expires_in", "refresh_token_expires_in"} {
			secs, given, err := fields.lifetime(name)
			if err != nil {
				return invalid(err.Error())
			}
			if given {
				tr.RefreshExpiresIn = secs
				break
			}
		}
	}
	return tr, nil
}

// parseErrorFields reads the error code and description from an error
// response body in any shape parseTokenResponse knows; both are "" when the
// body has none.
func parseErrorFields(contentType string, body []byte) (code, description string) {
	fields, _, _ := decodeFields(contentType, body)
	return errorFields(fields)
}

// errorFields picks the error code and the best description: RFC 6749
// error_description, SimpleStore/RFC 7807 title, SCAYLE message, RFC 7807
// detail, SCAYLE hint, StoreHippo messages[0].message. An "error" object
// ({code, message}) is read too.
func errorFields(f responseFields) (code, description string) {
	code = f.str("error")
	if obj, ok := f.json["error"]; ok && code == "" {
		var inner struct {
			Code    any `json:"code"`
			Message any `json:"message"`
		}
		if json.Unmarshal(obj, &inner) == nil {
			code, _ = inner.Code.(string)
			description, _ = inner.Message.(string)
		}
	}
	for _, name := range []string{"error_description", "title", "message", "detail", "hint"} {
		if description != "" {
			break
		}
		description = f.str(name)
	}
	if raw, ok := f.json["messages"]; ok && description == "" {
		var messages []struct {
			Message any `json:"message"`
		}
		if json.Unmarshal(raw, &messages) == nil && len(messages) > 0 {
			description, _ = messages[0].Message.(string)
		}
	}
	return code, description
}

// responseFields is a decoded token response: a JSON object's members or a
// form's values.
type responseFields struct {
	json map[string]json.RawMessage
	form url.Values
}

// decodeFields decodes body as a JSON object, or as a form when the media
// type is a form or text/plain and the body does not start like JSON.
func decodeFields(contentType string, body []byte) (f responseFields, isJSON bool, err error) {
	trimmed := bytes.TrimSpace(body)
	media, _, _ := mime.ParseMediaType(contentType)
	looksJSON := len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[' || trimmed[0] == '"')
	if (media == "application/x-www-form-urlencoded" || media == "text/plain") && !looksJSON {
		form, err := url.ParseQuery(string(trimmed))
		if err != nil {
			return f, false, errors.New("response is not a valid form")
		}
		f.form = form
		return f, false, nil
	}
	if err := json.Unmarshal(trimmed, &f.json); err != nil {
		return responseFields{}, false, errors.New("response is not a JSON object")
	}
	return f, true, nil
}

// str returns the string member name; "" when absent or not a string.
func (f responseFields) str(name string) string {
	s, _ := f.mustStr(name)
	return s
}

// mustStr returns the string member name; "" when absent or null, an error
// when it has another type.
func (f responseFields) mustStr(name string) (string, error) {
	if f.form != nil {
		return f.form.Get(name), nil
	}
	raw, ok := f.json[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errors.New(name + " is not a string")
	}
	return s, nil
}

// scope returns the granted scopes, accepting a string or a list of strings.
func (f responseFields) scope() string {
	if s := f.str("scope"); s != "" || f.form != nil {
		return s
	}
	var list []string
	if raw, ok := f.json["scope"]; ok && json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, " ")
	}
	return ""
}

// lifetime reads a lifetime in seconds from member name: a JSON number or
// a string holding one. given is false when the member is absent, null or
// an empty string.
func (f responseFields) lifetime(name string) (secs int64, given bool, err error) {
	var text string
	if f.form != nil {
		text = f.form.Get(name)
	} else {
		raw, ok := f.json[name]
		switch {
		case !ok || string(raw) == "null":
			return 0, false, nil
		case raw[0] == '"':
			if json.Unmarshal(raw, &text) != nil {
				return 0, false, errors.New(name + " is not a valid string")
			}
		default:
			text = string(raw)
		}
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return 0, false, nil
	}
	// Only JSON number syntax: ParseFloat alone would take "NaN", "Inf"
	// or hexadecimal.
	if c := text[0]; (c != '-' && (c < '0' || c > '9')) || !json.Valid([]byte(text)) {
		return 0, false, errors.New(name + " is not a number")
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false, errors.New(name + " is not a number")
	}
	switch {
	case v < 0:
		return 0, false, errors.New(name + " is negative")
	case v > maxExpiresIn:
		return maxExpiresIn, true, nil
	}
	return int64(v), true, nil
}

// finishIssued is the one post-processing of every issued token, requested
// at start: its expiry capped by the access token's JWT exp (see
// capExpiry), and one debug line, never a token. fields add to that line.
func finishIssued(log *zap.Logger, tok *oauth2.Token, start time.Time, fields ...zap.Field) *oauth2.Token {
	tok.Expiry = capExpiry(tok.AccessToken, tok.Expiry, start, log)
	var lifetime time.Duration
	if !tok.Expiry.IsZero() {
		lifetime = tok.Expiry.Sub(start)
	}
	log.Debug("token issued", append([]zap.Field{zap.Duration("duration", timeNow().Sub(start)),
		zap.Duration("lifetime", lifetime), zap.Bool("refresh_token", tok.RefreshToken != "")}, fields...)...)
	return tok
}

// issuedByOAuth2 completes the outcome of one golang.org/x/oauth2 token
// request sent at start: a failure, or a token sidekey cannot use, becomes
// a *TokenError scrubbed of secrets (and of the token's own credentials)
// and is logged; a token gets its refresh token's stated expiry and
// finishIssued.
func issuedByOAuth2(provider string, log *zap.Logger, tok *oauth2.Token, err error, start time.Time, secrets []string) (*oauth2.Token, error) {
	if err == nil {
		err = checkIssued(tok, start)
	}
	if err != nil {
		te := fromOAuth2Error(provider, err, append(secrets, tokenSecrets(tok)...))
		describe(te)
		logFailure(log, te, start)
		return nil, te
	}
	tok = withStatedRefreshExpiry(tok, start)
	return finishIssued(log, tok, start, zap.Bool("stated_lifetime", !tok.Expiry.IsZero())), nil
}
