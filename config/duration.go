package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// String formats the duration like time.Duration ("1h30m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML encodes the duration as a string such as "1m30s", which
// UnmarshalYAML reads back.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a Go duration string ("90s", "15m", "1h30m") or a
// whole number of seconds (90). Negative durations are rejected.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, msg := parseDuration(n)
	if msg != "" {
		return errors.New("config: " + msg)
	}
	*d = v
	return nil
}

// parseDuration reads a duration node. It returns a message (and no value)
// when the node is not a valid, non-negative duration. The message never
// quotes the value: a secret put in the wrong field must not be echoed.
func parseDuration(n *yaml.Node) (Duration, string) {
	const want = "must be a duration such as 90s, 15m or 1h30m, or a whole number of seconds"
	if n.Kind != yaml.ScalarNode {
		return 0, want
	}
	s := strings.TrimSpace(n.Value)
	if n.ShortTag() == "!!null" || s == "" {
		return 0, ""
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		if secs < 0 {
			return 0, "must not be negative"
		}
		if secs > math.MaxInt64/int64(time.Second) {
			return 0, "is too long"
		}
		return Duration(time.Duration(secs) * time.Second), ""
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, want
	}
	if v < 0 {
		return 0, "must not be negative"
	}
	return Duration(v), ""
}
