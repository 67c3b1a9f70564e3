package config

import (
	"encoding/json"
	"fmt"
)

// redacted is what every printed form of a non-empty Secret shows.
const redacted = "[redacted]"

// shown is what a Secret prints as: "" when empty, "[redacted]" otherwise.
func (s Secret) shown() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Value returns the secret itself. Call it only where the value is really
// sent (a token request, an injected header), never to log or report it.
func (s Secret) Value() string { return string(s) }

// String returns "[redacted]" ("" for an empty secret). zap.Stringer and
// zap.Any use it.
func (s Secret) String() string { return s.shown() }

// GoString returns "[redacted]" ("" for an empty secret), so %#v hides the
// value too.
func (s Secret) GoString() string { return s.shown() }

// Format prints "[redacted]" ("" for an empty secret) for every verb; %q
// quotes it. Width, precision and flags apply to the redacted text.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb != 'q' {
		verb = 's'
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), s.shown())
}

// MarshalJSON encodes the secret as the JSON string "[redacted]" ("" when
// empty). encoding/json does not call it for map keys: never key a map by a
// Secret.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.shown()) }

// MarshalText returns "[redacted]" ("" when empty).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.shown()), nil }

// MarshalYAML encodes the secret as "[redacted]" ("" when empty).
func (s Secret) MarshalYAML() (any, error) { return s.shown(), nil }
