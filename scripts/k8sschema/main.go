// Command k8sschema turns the Kubernetes OpenAPI v2 document (swagger.json,
// shipped in the k8s.io/kubernetes module under api/openapi-spec) into a
// folder of standalone, strict JSON schemas in kubeconform's layout:
// one {kind}-{group}-{version}.json per API kind ({kind}-{version}.json for
// the core group), every object closed with additionalProperties: false.
//
// kubeconform cannot download schemas on a machine without internet; this
// builds them offline. Use the folder with
//
//	kubeconform -strict -schema-location 'DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json'
//
// Usage:
//
//	go run ./scripts/k8sschema -swagger swagger.json -out DIR
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

const refPrefix = "#/definitions/"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("k8sschema", flag.ContinueOnError)
	swagger := fs.String("swagger", "", "Kubernetes swagger.json (OpenAPI v2)")
	out := fs.String("out", "", "output folder")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("k8sschema: %w", err)
	}
	if *swagger == "" || *out == "" {
		return errors.New("k8sschema: -swagger and -out are required")
	}
	data, err := os.ReadFile(*swagger)
	if err != nil {
		return fmt.Errorf("k8sschema: %w", err)
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("k8sschema: %s: %w", *swagger, err)
	}
	if len(doc.Definitions) == 0 {
		return fmt.Errorf("k8sschema: %s has no definitions", *swagger)
	}
	defs := make(map[string]any, len(doc.Definitions))
	for name, d := range doc.Definitions {
		defs[name] = convert(name, d)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("k8sschema: %w", err)
	}
	n := 0
	for _, name := range slices.Sorted(maps.Keys(doc.Definitions)) {
		for _, gvk := range groupVersionKinds(doc.Definitions[name]) {
			if err := writeKind(*out, name, gvk, defs); err != nil {
				return err
			}
			n++
		}
	}
	fmt.Fprintf(stdout, "k8sschema: wrote %d schemas to %s\n", n, *out)
	return nil
}

// gvk is one x-kubernetes-group-version-kind entry.
type gvk struct{ Group, Version, Kind string }

// apiVersion is the value of a manifest's apiVersion field.
func (g gvk) apiVersion() string {
	if g.Group == "" {
		return g.Version
	}
	return g.Group + "/" + g.Version
}

// fileName is kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json: the
// lower-case kind, the group's first DNS label, the version.
func (g gvk) fileName() string {
	name := strings.ToLower(g.Kind)
	if g.Group != "" {
		name += "-" + strings.ToLower(strings.Split(g.Group, ".")[0])
	}
	return name + "-" + strings.ToLower(g.Version) + ".json"
}

// groupVersionKinds reads a definition's x-kubernetes-group-version-kind.
// Definitions without one (field types, lists of options) are not kinds.
func groupVersionKinds(d map[string]any) []gvk {
	list, _ := d["x-kubernetes-group-version-kind"].([]any)
	var out []gvk
	for _, item := range list {
		m, _ := item.(map[string]any)
		g, _ := m["group"].(string)
		v, _ := m["version"].(string)
		k, _ := m["kind"].(string)
		if v != "" && k != "" {
			out = append(out, gvk{g, v, k})
		}
	}
	return out
}

// writeKind writes one kind's schema: the kind's definition at the root,
// with apiVersion and kind pinned, and every definition it reaches copied
// under "definitions" so the file stands alone.
func writeKind(dir, name string, g gvk, defs map[string]any) error {
	root, _ := deepCopy(defs[name]).(map[string]any)
	props, _ := root["properties"].(map[string]any)
	if props == nil {
		return fmt.Errorf("k8sschema: %s has no properties", name)
	}
	props["apiVersion"] = map[string]any{"type": "string", "enum": []any{g.apiVersion()}}
	props["kind"] = map[string]any{"type": "string", "enum": []any{g.Kind}}

	reached := map[string]bool{}
	collectRefs(root, defs, reached)
	sub := make(map[string]any, len(reached))
	for ref := range reached {
		sub[ref] = defs[ref]
	}
	root["$schema"] = "http://json-schema.org/draft-04/schema#"
	root["definitions"] = sub

	data, err := json.Marshal(root)
	if err != nil {
		return fmt.Errorf("k8sschema: %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, g.fileName()), data, 0o644); err != nil {
		return fmt.Errorf("k8sschema: %w", err)
	}
	return nil
}

// collectRefs records every definition v refers to, transitively.
func collectRefs(v any, defs map[string]any, seen map[string]bool) {
	switch t := v.(type) {
	case map[string]any:
		if ref, ok := t["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, refPrefix)
			if !seen[name] {
				if _, ok := defs[name]; ok {
					seen[name] = true
					collectRefs(defs[name], defs, seen)
				}
			}
		}
		for _, k := range slices.Sorted(maps.Keys(t)) {
			collectRefs(t[k], defs, seen)
		}
	case []any:
		for _, e := range t {
			collectRefs(e, defs, seen)
		}
	}
}

// convert makes one OpenAPI v2 definition a strict JSON schema (draft 4,
// as kubeconform compiles it):
//   - objects with properties get additionalProperties: false;
//   - optional typed fields also accept null, as the API server does;
//   - int-or-string and Quantity accept both of their YAML spellings;
//   - x-kubernetes-* extensions are dropped.
func convert(name string, d map[string]any) any {
	switch name {
	case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	case "io.k8s.apimachinery.pkg.api.resource.Quantity":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	}
	return convertNode(d)
}

func convertNode(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			if strings.HasPrefix(k, "x-kubernetes-") {
				continue
			}
			if k == "properties" {
				out[k] = convertProperties(t)
				continue
			}
			out[k] = convertNode(e)
		}
		if t["format"] == "int-or-string" {
			delete(out, "format")
			delete(out, "type")
			out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
		}
		if _, ok := t["properties"]; ok {
			if _, set := t["additionalProperties"]; !set {
				out["additionalProperties"] = false
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = convertNode(e)
		}
		return out
	}
	return v
}

// convertProperties converts an object's properties; those not listed in
// its "required" also accept null.
func convertProperties(obj map[string]any) map[string]any {
	props, _ := obj["properties"].(map[string]any)
	required := map[string]bool{}
	if list, ok := obj["required"].([]any); ok {
		for _, r := range list {
			if s, ok := r.(string); ok {
				required[s] = true
			}
		}
	}
	out := make(map[string]any, len(props))
	for k, p := range props {
		c := convertNode(p)
		if !required[k] {
			c = nullable(c)
		}
		out[k] = c
	}
	return out
}

// nullable lets a typed property schema also accept null. A $ref stays as
// it is (draft 4 ignores its siblings, and wrapping it in anyOf would bury
// the real error in kubeconform's messages): an object field set to null
// is reported, which in a chart is nearly always a template mistake.
func nullable(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	if typ, ok := m["type"].(string); ok {
		m["type"] = []any{typ, "null"}
	}
	return m
}

// deepCopy copies a decoded JSON value.
func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
