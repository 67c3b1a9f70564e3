package providers

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces a secret in text taken from a platform.
const redacted = "[redacted]"

// minBase64Core is the shortest base64 fragment taken as evidence of a
// secret: shorter ones would match ordinary words.
const minBase64Core = 8

// redact replaces in s every form in which a platform may echo one of
// secrets: as is; query-, form- and path-escaped (upper- or lower-case
// hex); JSON-escaped; and base64-encoded in the standard or URL alphabet,
// alone or inside a longer encoded value such as HTTP Basic's
// base64(id:secret), in which case the whole encoded value goes. Secrets
// shorter than minSecretLen are left alone (they would mangle words).
func redact(s string, secrets []string) string {
	for _, secret := range secrets {
		if len(secret) < minSecretLen {
			continue
		}
		forms := textForms(secret)
		for _, form := range []string{secret, url.QueryEscape(secret)} {
			for _, core := range base64Cores(form) {
				s = redactBase64Runs(s, core)
			}
		}
		for _, form := range forms {
			s = strings.ReplaceAll(s, form, redacted)
		}
	}
	return s
}

// textForms returns secret as is and in every escaping a platform may
// quote it in, longest first so that no form leaves part of another.
func textForms(secret string) []string {
	forms := []string{secret}
	add := func(f string) {
		for _, have := range forms {
			if have == f {
				return
			}
		}
		forms = append(forms, f)
	}
	for _, escaped := range []string{url.QueryEscape(secret), url.PathEscape(secret)} {
		add(escaped)
		add(percentHex.ReplaceAllStringFunc(escaped, strings.ToLower))
		add(strings.ReplaceAll(escaped, "+", "%20"))
	}
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		_ = enc.Encode(secret) // a string always encodes
		quoted := strings.TrimSuffix(b.String(), "\n")
		inner := quoted[1 : len(quoted)-1]
		add(inner)
		add(strings.ReplaceAll(inner, "/", `\/`))
	}
	// Longest first: a form that contains another must go before it.
	for i := 1; i < len(forms); i++ {
		for j := i; j > 0 && len(forms[j]) > len(forms[j-1]); j-- {
			forms[j], forms[j-1] = forms[j-1], forms[j]
		}
	}
	return forms
}

// percentHex matches one percent-encoded byte.
var percentHex = regexp.MustCompile(`%[0-9A-F]{2}`)

// base64Cores returns, for the standard and URL alphabets and each of the
// three alignments secret can have inside a longer value, the encoded
// characters that depend on secret's bytes alone: whatever surrounds the
// secret, its encoding contains one of them.
func base64Cores(secret string) []string {
	var cores []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for offset := range 3 {
			encoded := enc.EncodeToString(append(make([]byte, offset), secret...))
			start := 0
			if offset > 0 {
				start = 4 // the first group mixes in the bytes before the secret
			}
			end := (offset + len(secret)) / 3 * 4 // a last partial group mixes in the bytes after it
			if end-start >= minBase64Core {
				cores = append(cores, encoded[start:end])
			}
		}
	}
	return cores
}

// redactBase64Runs replaces every run of base64 characters in s that
// contains core with redacted.
func redactBase64Runs(s, core string) string {
	for {
		i := strings.Index(s, core)
		if i < 0 {
			return s
		}
		start, end := i, i+len(core)
		for start > 0 && isBase64Char(s[start-1]) {
			start--
		}
		for end < len(s) && isBase64Char(s[end]) {
			end++
		}
		s = s[:start] + redacted + s[end:]
	}
}

// isBase64Char reports whether c belongs to the standard or URL base64
// alphabet, or is padding.
func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}
