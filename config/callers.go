package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// subjectHint says how to write a cert_subject.
const subjectHint = "write it as `openssl x509 -noout -subject -nameopt RFC2253` prints it, without \"subject=\", such as CN=billing,O=Acme"

// validateCallers checks each caller's credential (one key or one
// certificate subject, none shared with another caller) and the tenants
// and apps it names.
func (c *Config) validateCallers(ps *Problems) {
	byHash := make(map[string]string, len(c.Callers))
	bySubject := make(map[string]string)
	for _, name := range slices.Sorted(maps.Keys(c.Callers)) {
		key := "callers." + name
		cl := c.Callers[name]
		switch {
		case name == "":
			ps.add("callers", "caller names must not be empty")
		case hasControl(name):
			ps.add(key, "caller names must not contain control characters")
		}
		if cl == nil {
			ps.add(key, "must not be empty")
			continue
		}
		hash := strings.ToLower(cl.KeySHA256)
		switch {
		case hash == "" && cl.CertSubject == "":
			ps.add(key, "key_sha256, key_file or cert_subject is required")
		case hash != "" && cl.CertSubject != "":
			keyName := "key_sha256"
			if cl.KeyFile != "" {
				keyName = "key_file"
			}
			ps.add(key, keyName+" and cert_subject are mutually exclusive: a caller presents either a key or a certificate")
		case hash != "":
			switch {
			case !isSHA256Hex(hash):
				ps.add(key+".key_sha256", "must be 64 hex characters (the sha256 of the key)")
			case byHash[hash] != "":
				ps.add(key+".key_sha256", "same key as callers."+byHash[hash])
			default:
				byHash[hash] = name
			}
		default:
			c.validateCertSubject(ps, key+".cert_subject", name, cl.CertSubject, bySubject)
		}
		for i, t := range cl.Tenants {
			if _, ok := c.Tenants[t]; !ok {
				ps.addf(key+".tenants["+strconv.Itoa(i)+"]", "unknown tenant %q", t)
			}
		}
		for i, a := range cl.Apps {
			if _, ok := c.Apps[a]; !ok {
				ps.addf(key+".apps["+strconv.Itoa(i)+"]", "unknown app %q", a)
			}
		}
	}
}

// validateCertSubject checks caller name's cert_subject (at key): its form,
// that no other caller has it (bySubject maps subjects seen to callers),
// and that client certificates are asked for at all.
func (c *Config) validateCertSubject(ps *Problems, key, name, subject string, bySubject map[string]string) {
	switch msg := checkSubject(subject); {
	case msg != "":
		ps.add(key, msg)
	case bySubject[subject] != "":
		ps.add(key, "same subject as callers."+bySubject[subject])
	default:
		bySubject[subject] = name
	}
	if c.TLS.ClientCAFile == "" {
		ps.add(key, "needs tls.client_ca_file, the CA that issues caller certificates")
	}
}

// checkSubject returns what is wrong with s as a distinguished name in
// RFC 2253 form (TYPE=value pairs joined by ',' or, within one RDN, '+';
// special characters escaped with '\'), or "".
func checkSubject(s string) string {
	if hasControl(s) {
		return "must not contain control characters"
	}
	if len(s) >= len("subject=") && strings.EqualFold(s[:len("subject=")], "subject=") {
		return "drop the \"subject=\" that openssl prints before the name"
	}
	start, escapedEnd := 0, false // escapedEnd: the last character seen was escaped
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return "ends in a lone backslash; " + subjectHint
			}
			i++
			escapedEnd = true
			continue
		case ',', '+':
			if msg := checkAttribute(s[start:i], escapedEnd); msg != "" {
				return msg
			}
			start = i + 1
		}
		escapedEnd = false
	}
	return checkAttribute(s[start:], escapedEnd)
}

// checkAttribute checks one TYPE=value of a subject; escapedEnd tells
// whether its last character was escaped.
func checkAttribute(a string, escapedEnd bool) string {
	typ, val, ok := strings.Cut(a, "=")
	switch {
	case !ok:
		return fmt.Sprintf("%q is not TYPE=value; %s", a, subjectHint)
	case strings.HasPrefix(typ, " ") || strings.HasSuffix(typ, " ") || strings.HasPrefix(val, " ") ||
		strings.HasSuffix(val, " ") && !escapedEnd:
		return "no spaces around ',', '+' or '=' (openssl escapes a value's leading or trailing space as '\\ '); " + subjectHint
	case !isAttributeType(typ):
		return fmt.Sprintf("%q is not an attribute type such as CN, O or 2.5.4.3; %s", typ, subjectHint)
	}
	return ""
}

// isAttributeType reports whether s is an attribute name (a letter, then
// letters, digits or '-') or a dotted OID.
func isAttributeType(s string) bool {
	if s == "" {
		return false
	}
	if s[0] >= '0' && s[0] <= '9' {
		for part := range strings.SplitSeq(s, ".") {
			if part == "" || strings.Trim(part, "0123456789") != "" {
				return false
			}
		}
		return true
	}
	for i, c := range []byte(s) {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// validateCallerKeyHeader checks caller_key_header: a header name that
// reaches sidekey from the caller and can be removed before forwarding.
func (c *Config) validateCallerKeyHeader(ps *Problems) {
	const key = "caller_key_header"
	h := c.CallerKeyHeader
	if strings.EqualFold(h, DefaultCallerKeyHeader) {
		return
	}
	switch {
	case h == "":
		ps.add(key, "must not be empty")
	case strings.ContainsFunc(h, func(r rune) bool { return r >= 0x80 || !isTokenChar(byte(r)) }):
		ps.add(key, "not a valid header name")
	case slices.Contains(hopByHop, strings.ToLower(h)):
		ps.addf(key, "%s cannot carry the caller key: it is hop-by-hop or frames the request", h)
	}
}

// hopByHop are headers a caller key cannot be sent in: they belong to one
// connection, or the proxy itself sets them. (A tenant's token_header and
// headers are package providers' to check.)
var hopByHop = []string{
	"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
	"proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
	"host", "content-length",
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
