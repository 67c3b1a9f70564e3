package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// ParseOptions tells Parse where variables and secret files come from.
type ParseOptions struct {
	// Getenv looks up ${VAR} references. Nil: os.LookupEnv.
	Getenv func(string) (string, bool)
	// ReadFile reads *_file secrets. Nil: os.ReadFile, and a secret file
	// that group or others may read becomes a Config.Warnings entry.
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
	c, problems, err := parseFile(data, opts)
	if err != nil {
		return nil, err
	}
	if err := problems.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadAll is ParseAll on the file at path, resolving relative paths as
// Load does.
func LoadAll(path string) (*Config, Problems, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	return ParseAll(data, ParseOptions{Dir: dir})
}

// ParseAll is Parse that goes on past problems, for `sidekey check` and
// `serve`: it returns the config as far as it could be read, with defaults
// filled, and every problem of decoding, reading files, Validate and the
// files serve reads before it listens (admin_token_file, the tls
// certificate and key, storage.key_file), sorted by key, each reported
// once (Merge). The error is only for a file that is not YAML at all; then
// the config is nil. Callers add their own checks with Merge.
func ParseAll(data []byte, opts ParseOptions) (*Config, Problems, error) {
	c, problems, err := parseFile(data, opts)
	if err != nil {
		return nil, nil, err
	}
	var more Problems
	if err := c.Validate(); err != nil && !errors.As(err, &more) {
		return nil, nil, err
	}
	problems = problems.Merge(more)
	var files Problems
	r := fileReader{readFile: opts.ReadFile, skip: problemKeys(problems), problems: &files}
	if r.readFile == nil {
		r.readFile = os.ReadFile
	}
	r.serveFiles(c)
	problems = problems.Merge(files)
	_ = problems.err() // sorts
	return c, problems, nil
}

// parseFile reads data into a config with defaults filled, and returns the
// problems found on the way (not sorted). The error is malformed YAML.
func parseFile(data []byte, opts ParseOptions) (*Config, Problems, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.LookupEnv
	}
	var stat func(string) (fs.FileInfo, error)
	if opts.ReadFile == nil {
		opts.ReadFile, stat = os.ReadFile, os.Stat
	}
	root, err := parseYAML(data)
	if err != nil {
		return nil, nil, err
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
	var warnings []Warning
	r := fileReader{readFile: opts.ReadFile, stat: stat, warnings: &warnings, dir: opts.Dir, skip: problemKeys(problems), problems: &problems}
	r.readAll(c)
	c.Warnings = warnings
	c.SetDefaults()
	c.Storage.Path = r.resolve(c.Storage.Path) // after defaults: the default is relative too
	return c, problems, nil
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

// problemKeys is the set of keys problems names.
func problemKeys(problems Problems) map[string]bool {
	keys := make(map[string]bool, len(problems))
	for _, p := range problems {
		keys[p.Key] = true
	}
	return keys
}
