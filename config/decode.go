package config

import (
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// visitBudget bounds the work of decoding a document of n nodes: a little
// more than visiting each node a few times, so that a small file full of
// aliases ("billion laughs") cannot make it explode.
func visitBudget(n int) int { return 1<<16 + 8*n }

// decoder fills a Go value from a YAML node tree. Unlike yaml's own decoder it
// names every problem by its full key path, rejects unknown and duplicate
// keys, and goes on after a problem so that all of them are reported.
type decoder struct {
	expanded map[*yaml.Node]bool // scalars filled from the environment: always strings
	problems *Problems
	visits   int                 // nodes visited so far
	budget   int                 // most visits allowed (visitBudget)
	merging  map[*yaml.Node]bool // mappings whose merge keys (<<) are being resolved
}

// entry is one key and value of a mapping, after merge keys are resolved.
type entry struct {
	key string
	val *yaml.Node
}

var durationType = reflect.TypeFor[Duration]()

// spend counts one visit and reports whether the budget allows it.
func (d *decoder) spend(path string) bool {
	d.visits++
	if d.visits == d.budget {
		d.problems.add(path, "document too complex (too many aliases)")
	}
	return d.visits < d.budget
}

// decode fills v from n; path names n in problems.
func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value) {
	if !d.spend(path) {
		return
	}
	n = resolveAlias(n)
	if v.Type() == durationType {
		dur, msg := parseDuration(n)
		if msg != "" {
			d.problems.add(path, msg)
			return
		}
		v.Set(reflect.ValueOf(dur))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(path, n, v.Elem())
	case reflect.Struct:
		d.structure(path, n, v)
	case reflect.Map:
		d.mapping(path, n, v)
	case reflect.Slice:
		d.sequence(path, n, v)
	case reflect.String:
		d.str(path, n, v)
	default:
		d.scalar(path, n, v)
	}
}

// structure fills the struct v from the mapping n, rejecting unknown keys.
func (d *decoder) structure(path string, n *yaml.Node, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.problems.add(path, "must be a mapping")
		return
	}
	fields := yamlFields(v.Type())
	for _, e := range d.entries(path, n) {
		key := joinKey(path, e.key)
		i, ok := fields[e.key]
		if !ok {
			d.problems.add(key, unknownKey(e.key, fields))
			continue
		}
		d.decode(key, e.val, v.Field(i))
	}
}

// mapping fills the map v (string keys) from the mapping n. A key with an
// empty value gets a zero element, so "tenants: {a: }" reports a's missing
// fields instead of vanishing.
func (d *decoder) mapping(path string, n *yaml.Node, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.problems.add(path, "must be a mapping")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	et := v.Type().Elem()
	for _, e := range d.entries(path, n) {
		elem := reflect.New(et).Elem()
		if et.Kind() == reflect.Pointer {
			elem.Set(reflect.New(et.Elem()))
		}
		d.decode(joinKey(path, e.key), e.val, elem)
		v.SetMapIndex(reflect.ValueOf(e.key).Convert(v.Type().Key()), elem)
	}
}

// sequence fills the slice v from the sequence n.
func (d *decoder) sequence(path string, n *yaml.Node, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.problems.add(path, "must be a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, c := range n.Content {
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(path+"["+strconv.Itoa(i)+"]", c, elem)
		s = reflect.Append(s, elem)
	}
	v.Set(s)
}

// str fills a string (or Secret) from a scalar. Any scalar is accepted
// (shop_id: 1001 is the string "1001"); null is empty unless the text came
// from the environment, which is always taken as it is.
func (d *decoder) str(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.problems.add(path, "must be a string")
		return
	}
	if !d.expanded[n] && isNull(n) {
		v.SetString("")
		return
	}
	v.SetString(n.Value)
}

// scalar fills a bool or a number using yaml's own rules.
func (d *decoder) scalar(path string, n *yaml.Node, v reflect.Value) {
	want, wholeNumber := "must be a "+v.Kind().String(), false
	switch v.Kind() {
	case reflect.Bool:
		want = "must be true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want, wholeNumber = "must be a whole number", true
	}
	if n.Kind != yaml.ScalarNode {
		d.problems.add(path, want)
		return
	}
	if isNull(n) {
		v.SetZero()
		return
	}
	// yaml would truncate 1.5 into an int: only integers fill integers.
	if wholeNumber && n.ShortTag() != "!!int" || n.Decode(v.Addr().Interface()) != nil {
		d.problems.add(path, want)
	}
}

// entries lists the keys and values of mapping n. Keys of merged mappings
// (<<: *anchor) come after the mapping's own keys and never override them.
func (d *decoder) entries(path string, n *yaml.Node) []entry {
	var own, merged []entry
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend(path) {
			return nil
		}
		k, val := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(path, val)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.problems.add(path, "keys must be strings")
			continue
		}
		if seen[k.Value] {
			d.problems.add(joinKey(path, k.Value), "duplicate key")
			continue
		}
		seen[k.Value] = true
		own = append(own, entry{key: k.Value, val: val})
	}
	for _, e := range merged {
		if !seen[e.key] {
			seen[e.key] = true
			own = append(own, e)
		}
	}
	return own
}

// merge returns the entries a merge key's value contributes: one mapping or
// a list of mappings, earlier ones winning.
func (d *decoder) merge(path string, val *yaml.Node) []entry {
	val = resolveAlias(val)
	var maps []*yaml.Node
	switch val.Kind {
	case yaml.MappingNode:
		maps = []*yaml.Node{val}
	case yaml.SequenceNode:
		for _, c := range val.Content {
			maps = append(maps, resolveAlias(c))
		}
	}
	var out []entry
	for _, m := range maps {
		if m.Kind != yaml.MappingNode {
			d.problems.add(path, "<< must merge a mapping or a list of mappings")
			return out
		}
		if d.merging[m] {
			d.problems.add(path, "<< merges a mapping into itself")
			return out
		}
		d.merging[m] = true
		out = append(out, d.entries(path, m)...)
		delete(d.merging, m)
	}
	if len(maps) == 0 {
		d.problems.add(path, "<< must merge a mapping or a list of mappings")
	}
	return out
}

// resolveAlias returns the node an alias stands for (n itself otherwise).
func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is an empty value (~, null or nothing).
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// yamlFields maps each yaml key of struct type t to its field index.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

// unknownKey is the message for an unknown key, with a suggestion when a
// known key is spelled almost the same.
func unknownKey(key string, fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	if best := Suggest(key, names); best != "" {
		return "unknown key (did you mean " + best + "?)"
	}
	return "unknown key"
}
