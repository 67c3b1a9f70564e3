package providertest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
)

// SecretEncodings returns value in every form a careless token endpoint
// may echo a credential in, keyed by the form's name: as is; query-,
// path- and form-encoded; JSON-escaped; base64 in the standard and URL
// alphabets; and HTTP Basic's base64(id:value), raw and with id and value
// form-encoded first (RFC 6749 section 2.3.1).
func SecretEncodings(id, value string) map[string]string {
	jsonEscaped, _ := json.Marshal(value)
	return map[string]string{
		"raw":            value,
		"query-escaped":  url.QueryEscape(value),
		"path-escaped":   url.PathEscape(value),
		"form-encoded":   url.Values{"client_secret": {value}}.Encode(),
		"json-escaped":   string(jsonEscaped),
		"json-slashes":   strings.ReplaceAll(string(jsonEscaped), "/", `\/`),
		"base64":         base64.StdEncoding.EncodeToString([]byte(value)),
		"base64url":      base64.RawURLEncoding.EncodeToString([]byte(value)),
		"basic":          base64.StdEncoding.EncodeToString([]byte(id + ":" + value)),
		"basic-escaped":  base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(value))),
		"basic-header":   "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+value)),
		"lower-hex-form": strings.ToLower(url.QueryEscape(value)),
	}
}

// EchoingTokenEndpoint is a token endpoint that refuses every request with
// 400 invalid_client and echoes, in error_description, every credential
// the request carried (client_secret, code, refresh_token, code_verifier,
// the Basic password) in one encoding of SecretEncodings. The encoding is
// the last path segment of the token URL: {URL}/token/{encoding}; the raw
// Authorization header is echoed for "authorization".
type EchoingTokenEndpoint struct {
	server       *httptest.Server
	mu           sync.Mutex // guards descriptions and echoed
	descriptions []string
	echoed       int
}

// NewEchoingTokenEndpoint starts one on 127.0.0.1. Call Close when done.
func NewEchoingTokenEndpoint(clientID string) *EchoingTokenEndpoint {
	e := &EchoingTokenEndpoint{}
	e.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encoding := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		var echo []string
		if h := r.Header.Get("Authorization"); encoding == "authorization" && h != "" {
			echo = append(echo, h)
		}
		for _, v := range credentialsOf(r) {
			if form, ok := SecretEncodings(clientID, v)[encoding]; ok {
				echo = append(echo, form)
			}
		}
		description := "rejected " + strings.Join(echo, " and ")
		e.mu.Lock()
		e.descriptions = append(e.descriptions, description)
		e.echoed += len(echo)
		e.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client", "error_description": description})
	}))
	return e
}

// TokenURL is the token endpoint echoing in encoding.
func (e *EchoingTokenEndpoint) TokenURL(encoding string) string {
	return e.server.URL + "/token/" + encoding
}

// Echoed counts the credentials echoed so far.
func (e *EchoingTokenEndpoint) Echoed() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.echoed
}

// LastDescription is the error_description of the latest answer; "" before
// the first.
func (e *EchoingTokenEndpoint) LastDescription() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.descriptions) == 0 {
		return ""
	}
	return e.descriptions[len(e.descriptions)-1]
}

// Close stops the server.
func (e *EchoingTokenEndpoint) Close() { e.server.Close() }

// credentialsOf returns the credentials a token request carries.
func credentialsOf(r *http.Request) []string {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRecordedBody))
	params := map[string]string{}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		_ = json.Unmarshal(body, &params)
	} else if form, err := url.ParseQuery(string(body)); err == nil {
		for k := range form {
			params[k] = form.Get(k)
		}
	}
	var out []string
	for _, name := range []string{"client_secret", "code", "refresh_token", "code_verifier"} {
		if v := params[name]; v != "" {
			out = append(out, v)
		}
	}
	if _, password, ok := r.BasicAuth(); ok {
		out = append(out, password)
		if unescaped, err := url.QueryUnescape(password); err == nil && unescaped != password {
			out = append(out, unescaped)
		}
	}
	return out
}
