package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// ParseOptions tells Parse where variables and secret files come from.
type ParseOptions struct {
	// Getenv looks up ${VAR} references. Nil: os.LookupEnv.
	Getenv func(string) (string, bool)
	// ReadFile reads *_file secrets. Nil: os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// Dir is the config file's directory: every relative path in the file
	// (storage.path, default included, storage.key_file, *_file, tls
	// files) resolves against it. Empty: the working directory.
	Dir string
}

// Load reads the configuration file at path and parses it with Parse, from
// the process environment, resolving every relative path in it
// (storage.path, storage.key_file, *_file, tls files) against the file's
// directory, made absolute: `sidekey connect` run from another directory
// opens the same store as `sidekey serve`. Like Parse it does not call
// Validate.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, ParseOptions{Dir: dir})
}

// Parse reads a YAML configuration. In order it parses the YAML, replaces
// ${VAR}, ${VAR:-default} and $$ in scalar values (never in keys, and after
// parsing, so a variable cannot add structure), decodes the result rejecting
// unknown keys, reads *_file secrets and hashes callers' key files, and fills
// defaults (SetDefaults).
//
// Malformed YAML is an error starting "config: "; everything else wrong is
// reported at once as Problems, sorted by key. Parse does not call Validate:
// a nil error means the file was readable, not that it is valid.
func Parse(data []byte, opts ParseOptions) (*Config, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.LookupEnv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	root, err := parseYAML(data)
	if err != nil {
		return nil, err
	}

	c := new(Config)
	var problems Problems
	if root != nil {
		e := expander{getenv: opts.Getenv, expanded: map[*yaml.Node]bool{}, problems: &problems}
		e.walk("", root)
		d := decoder{
			expanded: e.expanded,
			problems: &problems,
			budget:   visitBudget(e.nodes),
			merging:  map[*yaml.Node]bool{},
		}
		d.decode("", root, reflect.ValueOf(c).Elem())
	}
	skip := make(map[string]bool, len(problems))
	for _, p := range problems {
		skip[p.Key] = true
	}
	r := fileReader{readFile: opts.ReadFile, dir: opts.Dir, skip: skip, problems: &problems}
	r.readAll(c)
	if err := problems.err(); err != nil {
		return nil, err
	}
	c.SetDefaults()
	c.Storage.Path = r.resolve(c.Storage.Path) // after defaults: the default is relative too
	return c, nil
}

// parseYAML parses data into a node tree and returns its top-level mapping,
// or nil for an empty file.
func parseYAML(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// The parser is outside code reading outside input: a bug in it
		// must fail this file, not the process.
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("config: yaml parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, errors.New("config: more than one yaml document")
	}
	n := &doc
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, nil
		}
		n = n.Content[0]
	}
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("config: the top level must be a mapping of settings")
	}
	return n, nil
}
