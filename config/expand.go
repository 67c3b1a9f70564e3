package config

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// expander replaces ${VAR} references in the scalar values of a parsed YAML
// tree. It runs on the node tree, after parsing, so whatever a variable holds
// stays one scalar: it can never add keys, lists or documents.
type expander struct {
	getenv   func(string) (string, bool)
	expanded map[*yaml.Node]bool // scalars whose value came (partly) from the environment
	nodes    int                 // nodes walked
	problems *Problems
}

// walk expands every scalar value under n. Mapping keys are left alone, and
// aliases are not followed (their anchor is expanded where it is defined, so
// each node is expanded exactly once).
func (e *expander) walk(path string, n *yaml.Node) {
	e.nodes++
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			e.walk(path, c)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			e.walk(joinKey(path, n.Content[i].Value), n.Content[i+1])
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			e.walk(path+"["+strconv.Itoa(i)+"]", c)
		}
	case yaml.ScalarNode:
		e.scalar(path, n)
	}
}

// scalar expands one scalar value in place.
func (e *expander) scalar(path string, n *yaml.Node) {
	if !strings.Contains(n.Value, "$") {
		return
	}
	v, msgs := expandString(n.Value, e.getenv)
	for _, m := range msgs {
		e.problems.add(path, m)
	}
	if v == n.Value {
		return
	}
	n.Value = v
	e.expanded[n] = true
	if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		// A plain scalar's type is resolved from its text: let the new text
		// decide it, as if it had been written in the file (port: ${PORT}).
		n.Tag = ""
	}
}

// expandString replaces ${VAR} and ${VAR:-default} in s and turns $$ into $.
// A default applies when the variable is unset or empty. A $ followed by
// anything else is kept as it is. The returned messages describe unset
// variables and malformed references; they never quote s.
func expandString(s string, getenv func(string) (string, bool)) (string, []string) {
	var b strings.Builder
	var msgs []string
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), msgs
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
			continue
		case '{':
		default:
			b.WriteByte('$')
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			msgs = append(msgs, "unterminated ${ (write $$ for a literal $)")
			b.WriteString(s[i:])
			return b.String(), msgs
		}
		ref := s[i+2 : i+2+end]
		s = s[i+2+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			msgs = append(msgs, "invalid ${...} reference: want ${NAME} or ${NAME:-default} (write $$ for a literal $)")
			continue
		}
		v, ok := getenv(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			msgs = append(msgs, "environment variable "+name+" is not set")
		}
		b.WriteString(v)
	}
}

// validEnvName reports whether name is a shell-style variable name.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// joinKey appends key to a dotted key path.
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
