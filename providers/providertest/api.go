package providertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// flavor is what differs between the simulated APIs.
type flavor struct {
	// base is the API's path prefix ("" or e.g. "/api/1.1"); paths outside
	// it are 404. Routes, /v1/echo and /v1/stream are below it.
	base string
	// routes serves the platform's own resources; path is the request's
	// path below base. It reports false when the path is not one of them.
	routes func(w http.ResponseWriter, r *http.Request, path string, body []byte, tok issued) bool
	// fail writes the platform's error body for status.
	fail func(w http.ResponseWriter, r *http.Request, status int, code, detail string)
	// precheck, if set, runs before the token is checked; it answers the
	// request itself and returns false to stop it.
	precheck func(w http.ResponseWriter, r *http.Request) bool
	// tokenHeader, if set, is a header that may carry the bare token
	// instead of "Authorization: Bearer" (Istores' x-token).
	tokenHeader string
}

// serveAPI is the API side shared by the simulators: it counts and records
// the request, applies latency, injected failures and the rate limit,
// demands a valid bearer token, then serves {base}/v1/echo/…,
// {base}/v1/stream and the platform routes.
func (c *core) serveAPI(w http.ResponseWriter, r *http.Request, f flavor) {
	c.apiCount.Add(1)
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRecordedBody))
	rec := &APIRequest{
		Method:     r.Method,
		RequestURI: r.RequestURI,
		Path:       r.URL.EscapedPath(),
		RawQuery:   r.URL.RawQuery,
		Header:     r.Header.Clone(),
		Host:       r.Host,
		Body:       body,
	}
	c.mu.Lock()
	c.lastAPI = rec
	c.noteUsedLocked(r, f)
	status := c.apiFail.take()
	c.mu.Unlock()

	if !c.wait(r.Context(), &c.apiLatency) {
		return
	}
	if status != 0 {
		retryAfterOn(w, status)
		f.fail(w, r, status, "injected_failure", "failure injected by the simulator")
		return
	}
	if c.overLimit() {
		retryAfterOn(w, http.StatusTooManyRequests)
		f.fail(w, r, http.StatusTooManyRequests, "rate_limited", "too many requests")
		return
	}
	path, inBase := strings.CutPrefix(r.URL.Path, f.base)
	if !inBase || (path != "" && path[0] != '/') {
		f.fail(w, r, http.StatusNotFound, "not_found", "no such resource")
		return
	}
	if f.precheck != nil && !f.precheck(w, r) {
		return
	}
	tok, ok := c.authorize(w, r, f)
	if !ok {
		return
	}
	switch {
	case path == "/v1/echo" || strings.HasPrefix(path, "/v1/echo/"):
		writeJSON(w, http.StatusOK, map[string]any{
			"method": r.Method,
			"path":   r.URL.EscapedPath(),
			"query":  r.URL.RawQuery,
			"body":   string(body),
		})
	case path == "/v1/stream":
		c.serveStream(w, r)
	case f.routes(w, r, path, body, tok):
	default:
		f.fail(w, r, http.StatusNotFound, "not_found", "no such resource")
	}
}

// authorize checks "Authorization: Bearer <token>" against the issued
// tokens and answers 401 itself when it is missing, unknown or expired.
func (c *core) authorize(w http.ResponseWriter, r *http.Request, f flavor) (issued, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		token = ""
	}
	if token == "" && f.tokenHeader != "" {
		token = r.Header.Get(f.tokenHeader)
	}
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sim"`)
		f.fail(w, r, http.StatusUnauthorized, "invalid_request", "missing bearer token")
		return issued{}, false
	}
	tok, ok, expired := c.lookup(token)
	if !ok {
		detail := "invalid token"
		if expired {
			detail = "token expired"
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="sim", error="invalid_token", error_description=%q`, detail))
		f.fail(w, r, http.StatusUnauthorized, "invalid_token", detail)
		return issued{}, false
	}
	return tok, true
}

// serveStream writes n chunks (default 5, at most 1000), flushing after
// each: newline-delimited JSON, or server-sent events with format=sse.
// interval (a Go duration) spaces them; with step=1 each chunk after the
// first waits for StreamStep.
func (c *core) serveStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, err := strconv.Atoi(q.Get("n"))
	if err != nil || n <= 0 {
		n = 5
	}
	n = min(n, 1000)
	interval, _ := time.ParseDuration(q.Get("interval"))
	step := q.Get("step") == "1"
	sse := q.Get("format") == "sse"
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for i := range n {
		if i > 0 {
			if !c.pause(r, interval, step) {
				return
			}
		}
		if sse {
			fmt.Fprintf(w, "data: {\"chunk\":%d}\n\n", i)
		} else {
			fmt.Fprintf(w, "{\"chunk\":%d}\n", i)
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// pause waits between two stream chunks: for interval and, with step, for
// a StreamStep. It reports false when the request or the simulator ended.
func (c *core) pause(r *http.Request, interval time.Duration, step bool) bool {
	if interval > 0 {
		t := time.NewTimer(interval)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		case <-c.done:
			return false
		}
	}
	if step {
		select {
		case <-c.stream:
		case <-r.Context().Done():
			return false
		case <-c.done:
			return false
		}
	}
	return true
}

// clientCredentials reads the client's credentials from HTTP Basic (the
// RFC 6749 form-encoding is undone) and from the form. method is "header",
// "body", or "" when neither carried any; both at once is an error.
func clientCredentials(r *http.Request) (id, secret, method string, err error) {
	user, pass, basic := r.BasicAuth()
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	switch {
	case basic && formSecret != "":
		return "", "", "", fmt.Errorf("client authenticated in more than one way")
	case basic:
		if u, err := url.QueryUnescape(user); err == nil {
			user = u
		}
		if p, err := url.QueryUnescape(pass); err == nil {
			pass = p
		}
		return user, pass, "header", nil
	case formID != "" || formSecret != "":
		return formID, formSecret, "body", nil
	}
	return "", "", "", nil
}

// readTokenForm is readTokenBody for a form-encoded body with RFC 6749
// errors.
func (c *core) readTokenForm(w http.ResponseWriter, r *http.Request) bool {
	return c.readTokenBody(w, r, bodyForm, tokenError)
}

// tokenBody is a successful token response with the lifetime spelled and
// typed as the options say.
func (c *core) tokenBody(access string, lifetime time.Duration, extra map[string]any) []byte {
	m := map[string]any{"access_token": access, "token_type": c.opts.TokenType}
	if c.opts.ExpiresField != "none" && lifetime > 0 {
		secs := int64(lifetime / time.Second)
		if c.opts.ExpiresAsString {
			m[c.opts.ExpiresField] = strconv.FormatInt(secs, 10)
		} else {
			m[c.opts.ExpiresField] = secs
		}
	}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func writeTokenResponse(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func retryAfterOn(w http.ResponseWriter, status int) {
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONType(w, status, "application/json; charset=utf-8", v)
}

func writeJSONType(w http.ResponseWriter, status int, contentType string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
