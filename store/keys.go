package store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// keyError is the error for a malformed key. It matches ErrInvalidKey.
type keyError struct {
	what   string // "key", "lock name" or "list prefix"
	key    string // the rejected name
	reason string // what is wrong with it
}

// Error names the key and what is wrong with it.
func (e *keyError) Error() string {
	return fmt.Sprintf("store: invalid %s %q: %s", e.what, e.key, e.reason)
}

// Unwrap returns ErrInvalidKey so errors.Is(err, ErrInvalidKey) holds.
func (e *keyError) Unwrap() error { return ErrInvalidKey }

// checkKey validates a key: '/'-separated, non-empty segments other than "."
// and "..", no leading '/', no control characters, valid UTF-8, at most
// MaxKeyLen bytes.
func checkKey(key string) error { return checkName("key", key, false) }

// checkLockName validates a lock name with the rules for keys.
func checkLockName(name string) error { return checkName("lock name", name, false) }

// checkPrefix validates a List prefix: "" lists everything; otherwise the
// rules for keys apply, except that the last segment may be partial or empty
// ("tenants/" and "tenants/ac" are fine).
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkName("list prefix", prefix, true)
}

// checkName implements checkKey and checkPrefix. With partialLast the last
// segment is only checked for its characters.
func checkName(what, name string, partialLast bool) error {
	bad := func(reason string) error { return &keyError{what: what, key: name, reason: reason} }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return bad("contains a control character")
	case name[0] == '/':
		return bad("starts with '/'")
	}
	segments := strings.Split(name, "/")
	if partialLast {
		segments = segments[:len(segments)-1]
	}
	for _, s := range segments {
		switch s {
		case "":
			return bad("has an empty segment")
		case ".", "..":
			return bad(fmt.Sprintf("has a %q segment", s))
		}
	}
	return nil
}
