package main

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// undocumented returns the dotted path of every value in a values.yaml that
// has no "# --" comment (helm-docs style) on itself or on an enclosing key.
// A value is a scalar or an empty list or map.
func undocumented(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chartcheck: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("chartcheck: %s: %w", path, err)
	}
	if len(root.Content) == 0 {
		return nil, nil
	}
	var missing []string
	walkValues(root.Content[0], "", false, &missing)
	return missing, nil
}

func walkValues(n *yaml.Node, prefix string, documented bool, missing *[]string) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		path := strings.TrimPrefix(prefix+"."+key.Value, ".")
		doc := documented || strings.Contains(key.HeadComment, "# --")
		if value.Kind == yaml.MappingNode && len(value.Content) > 0 {
			walkValues(value, path, doc, missing)
			continue
		}
		if !doc {
			*missing = append(*missing, path)
		}
	}
}
