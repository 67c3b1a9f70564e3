package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The file names must be the ones kubeconform asks for
// ({{ .ResourceKind }}{{ .KindSuffix }}.json).
func TestFileName(t *testing.T) {
	for _, tc := range []struct {
		g    gvk
		want string
	}{
		{gvk{"", "v1", "Service"}, "service-v1.json"},
		{gvk{"apps", "v1", "Deployment"}, "deployment-apps-v1.json"},
		{gvk{"networking.k8s.io", "v1", "NetworkPolicy"}, "networkpolicy-networking-v1.json"},
		{gvk{"autoscaling", "v2", "HorizontalPodAutoscaler"}, "horizontalpodautoscaler-autoscaling-v2.json"},
	} {
		if got := tc.g.fileName(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.g, got, tc.want)
		}
	}
}

func TestConvert(t *testing.T) {
	def := map[string]any{
		"type":     "object",
		"required": []any{"name"},
		"properties": map[string]any{
			"name":  map[string]any{"type": "string"},
			"port":  map[string]any{"type": "string", "format": "int-or-string"},
			"spec":  map[string]any{"$ref": "#/definitions/x.Spec"},
			"count": map[string]any{"type": "integer", "x-kubernetes-list-type": "atomic"},
		},
	}
	got := convert("x.Thing", def).(map[string]any)
	if got["additionalProperties"] != false {
		t.Errorf("additionalProperties = %v, want false", got["additionalProperties"])
	}
	props := got["properties"].(map[string]any)
	if !reflect.DeepEqual(props["name"], map[string]any{"type": "string"}) {
		t.Errorf("required name = %v, want a plain string", props["name"])
	}
	if !reflect.DeepEqual(props["count"], map[string]any{"type": []any{"integer", "null"}}) {
		t.Errorf("optional count = %v, want integer or null without extensions", props["count"])
	}
	if _, ok := props["port"].(map[string]any)["oneOf"]; !ok {
		t.Errorf("int-or-string port = %v, want a oneOf", props["port"])
	}
	if !reflect.DeepEqual(props["spec"], map[string]any{"$ref": "#/definitions/x.Spec"}) {
		t.Errorf("spec = %v, want the bare $ref", props["spec"])
	}
}

// A kind's file holds the definitions it reaches, and only those.
func TestRunWritesStandaloneSchemas(t *testing.T) {
	swagger := `{"definitions": {
	  "io.k8s.api.apps.v1.Deployment": {
	    "type": "object",
	    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
	      "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"}},
	    "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}]},
	  "io.k8s.api.apps.v1.DeploymentSpec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
	  "io.k8s.api.core.v1.Unrelated": {"type": "object", "properties": {"x": {"type": "string"}}}
	}}`
	dir := t.TempDir()
	in := filepath.Join(dir, "swagger.json")
	if err := os.WriteFile(in, []byte(swagger), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout strings.Builder
	if err := run([]string{"-swagger", in, "-out", out}, &stdout); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, "deployment-apps-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties  map[string]map[string]any `json:"properties"`
		Definitions map[string]any            `json:"definitions"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(schema.Properties["apiVersion"]["enum"], []any{"apps/v1"}) {
		t.Errorf("apiVersion = %v, want enum [apps/v1]", schema.Properties["apiVersion"])
	}
	if _, ok := schema.Definitions["io.k8s.api.apps.v1.DeploymentSpec"]; !ok || len(schema.Definitions) != 1 {
		t.Errorf("definitions = %v, want only DeploymentSpec", schema.Definitions)
	}
	if !strings.Contains(stdout.String(), "wrote 1 schemas") {
		t.Errorf("stdout = %q", stdout.String())
	}
}
