// Command chartcheck checks Kubernetes manifests rendered from the sidekey
// chart (or the sidecar example) for what kubeconform cannot see: probes,
// the security context, secrets kept out of ConfigMaps, the file store's
// volume, and each ci/*-values.yaml scenario's own promises. It also
// extracts the rendered sidekey.yaml so that `sidekey check` can validate it.
//
// Usage:
//
//	chartcheck assert  -scenario NAME FILE...   # exit 1 and one line per failed check
//	chartcheck extract -out DIR FILE...         # DIR/sidekey.yaml + the secret files it names
//	chartcheck values-doc values.yaml           # every value has a "# --" comment
//
// FILEs are read as one set of objects (helm template output, or the
// example's manifests).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SecretDir is where the chart and the example mount sidekey's secrets.
const SecretDir = "/run/secrets/sidekey"

func main() {
	err := run(os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("chartcheck: usage: chartcheck assert|extract|values-doc [flags] FILE")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	scenario := fs.String("scenario", "", "ci scenario name (default, ha, sentinel, cluster, existing-secret, callers, apps, tls-files, tls-acme, mtls) or sidecar")
	out := fs.String("out", "", "extract: output folder")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("chartcheck: %w", err)
	}
	if fs.NArg() == 0 {
		return errors.New("chartcheck: no files given")
	}
	if args[0] == "values-doc" {
		return valuesDoc(fs.Args(), stdout)
	}
	var docs []obj
	for _, path := range fs.Args() {
		d, err := readDocs(path)
		if err != nil {
			return err
		}
		docs = append(docs, d...)
	}
	files := strings.Join(fs.Args(), " ")
	switch args[0] {
	case "assert":
		failures := assertScenario(*scenario, docs)
		for _, f := range failures {
			fmt.Fprintf(stdout, "FAIL %s: %s\n", *scenario, f)
		}
		if len(failures) > 0 {
			return fmt.Errorf("chartcheck: %s: %d check(s) failed", files, len(failures))
		}
		fmt.Fprintf(stdout, "ok %s: %d objects\n", *scenario, len(docs))
		return nil
	case "extract":
		if *out == "" {
			return errors.New("chartcheck: extract: -out is required")
		}
		return extract(docs, *out, stdout)
	}
	return fmt.Errorf("chartcheck: unknown command %q", args[0])
}

// valuesDoc reports values without a "# --" comment.
func valuesDoc(paths []string, stdout io.Writer) error {
	for _, p := range paths {
		missing, err := undocumented(p)
		if err != nil {
			return err
		}
		for _, m := range missing {
			fmt.Fprintf(stdout, "FAIL %s: %s has no \"# --\" comment\n", p, m)
		}
		if len(missing) > 0 {
			return fmt.Errorf("chartcheck: %s: %d undocumented value(s)", p, len(missing))
		}
		fmt.Fprintf(stdout, "ok %s: every value documented\n", p)
	}
	return nil
}

// obj is one decoded manifest.
type obj = map[string]any

// readDocs decodes every non-empty YAML document of a file.
func readDocs(path string) ([]obj, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chartcheck: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []obj
	for {
		var d obj
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("chartcheck: %s: %w", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// kind returns the objects of one kind.
func kind(docs []obj, k string) []obj {
	var out []obj
	for _, d := range docs {
		if d["kind"] == k {
			out = append(out, d)
		}
	}
	return out
}

// first returns the first object of one kind, or nil.
func first(docs []obj, k string) obj {
	if l := kind(docs, k); len(l) > 0 {
		return l[0]
	}
	return nil
}

// get walks a path of map keys and list indexes; nil when any step is
// missing.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// str is get as a string ("" when missing or not a string).
func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

// list is get as a list.
func list(v any, path ...any) []any {
	l, _ := get(v, path...).([]any)
	return l
}

// named finds the element of a list of objects whose "name" is name.
func named(l []any, name string) obj {
	for _, e := range l {
		if m, ok := e.(obj); ok && m["name"] == name {
			return m
		}
	}
	return nil
}
