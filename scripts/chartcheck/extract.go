package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// extract writes the rendered sidekey.yaml to dir/sidekey.yaml with every
// *_file path under SecretDir moved to dir/secrets, and writes those files:
// the rendered Secret's value when the manifests hold it, a placeholder
// otherwise (an existingSecret lives outside the chart; a store key's
// placeholder is 64 hex characters, a key's form). Files under TLSDir
// (tls.cert_file and key_file, which check reads as serve does) move to
// dir/tls and hold a placeholder certificate and its key. Files under
// ClientCADir (tls.client_ca_file) move to dir/client-ca and hold a
// placeholder CA certificate.
func extract(docs []obj, dir string, stdout io.Writer) error {
	text, err := sidekeyYAML(docs)
	if err != nil {
		return err
	}
	var cfg any
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		return fmt.Errorf("chartcheck: sidekey.yaml: %w", err)
	}
	values := secretValues(docs)
	secretDir := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secretDir, 0o700); err != nil {
		return fmt.Errorf("chartcheck: %w", err)
	}
	caDir := filepath.Join(dir, "client-ca")
	tlsDir := filepath.Join(dir, "tls")
	files := map[string]bool{}
	collectFiles(cfg, files)
	tlsFiles := map[string]string{}
	for _, key := range []string{"cert_file", "key_file"} {
		if path := str(cfg, "tls", key); strings.HasPrefix(path, TLSDir+"/") {
			tlsFiles[key] = filepath.Join(tlsDir, strings.TrimPrefix(path, TLSDir+"/"))
		}
	}
	if len(tlsFiles) > 0 {
		if err := writePlaceholderKeyPair(tlsFiles["cert_file"], tlsFiles["key_file"]); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "  tls certificate and key (placeholder)")
	}
	localCADir := filepath.Join(dir, "local-ca")
	if str(cfg, "local_ca", "cert_file") != "" {
		// sidekey check reads local_ca as serve does: a CA and its key.
		if err := writePlaceholderLocalCA(localCADir); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "  local CA certificate and key (placeholder)")
	}
	for _, path := range slices.Sorted(maps.Keys(files)) {
		if strings.HasPrefix(path, TLSDir+"/") || isLocalCAFile(path) {
			continue // tls and local_ca: written above
		}
		if name, ok := strings.CutPrefix(path, ClientCADir+"/"); ok {
			if err := writePlaceholderCA(caDir, name); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "  client CA file %s (placeholder)\n", name)
			continue
		}
		key, ok := strings.CutPrefix(path, SecretDir+"/")
		if !ok || key == "" || strings.Contains(key, "/") {
			return fmt.Errorf("chartcheck: %s is not a file of the secret volume %s", path, SecretDir)
		}
		content, ok := values[key]
		switch {
		case ok:
		case path == str(cfg, "storage", "key_file"):
			// sidekey check reads the store key's form, as serve does.
			content = strings.Repeat("c1", 32)
		default:
			content = "ci-placeholder-" + key
		}
		if err := os.WriteFile(filepath.Join(secretDir, key), []byte(content), 0o600); err != nil {
			return fmt.Errorf("chartcheck: %w", err)
		}
		fmt.Fprintf(stdout, "  secret file %s\n", key)
	}
	text = strings.ReplaceAll(text, SecretDir+"/", secretDir+"/")
	text = strings.ReplaceAll(text, ClientCADir+"/", caDir+"/")
	text = strings.ReplaceAll(text, TLSDir+"/", tlsDir+"/")
	text = strings.ReplaceAll(text, LocalCADir+"/", localCADir+"/")
	if err := os.WriteFile(filepath.Join(dir, "sidekey.yaml"), []byte(text), 0o600); err != nil {
		return fmt.Errorf("chartcheck: %w", err)
	}
	return nil
}

// writePlaceholderKeyPair writes a self-signed placeholder certificate to
// certPath and its key to keyPath (either may be empty: not written).
func writePlaceholderKeyPair(certPath, keyPath string) error {
	certPEM, keyPEM, err := placeholderKeyPair()
	if err != nil {
		return err
	}
	for path, content := range map[string][]byte{certPath: certPEM, keyPath: keyPEM} {
		if path == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("chartcheck: %w", err)
		}
		if err := os.WriteFile(path, content, 0o600); err != nil {
			return fmt.Errorf("chartcheck: %w", err)
		}
	}
	return nil
}

// writePlaceholderLocalCA writes a placeholder local CA, tls.crt and
// tls.key, into dir (the layout of the kubernetes.io/tls Secret mounted at
// LocalCADir).
func writePlaceholderLocalCA(dir string) error {
	certPEM, keyPEM, err := placeholderPair(true)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("chartcheck: %w", err)
	}
	for name, content := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			return fmt.Errorf("chartcheck: %w", err)
		}
	}
	return nil
}

// writePlaceholderCA writes a placeholder CA certificate to dir/name.
func writePlaceholderCA(dir, name string) error {
	if name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("chartcheck: %s/%s is not a file of the client CA volume", ClientCADir, name)
	}
	ca, err := placeholderCA()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("chartcheck: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), ca, 0o600); err != nil {
		return fmt.Errorf("chartcheck: %w", err)
	}
	return nil
}

// sidekeyYAML returns the sidekey.yaml of the one ConfigMap that holds it.
func sidekeyYAML(docs []obj) (string, error) {
	var found []string
	for _, cm := range kind(docs, "ConfigMap") {
		if s := str(cm, "data", "sidekey.yaml"); s != "" {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("chartcheck: want one ConfigMap with data.sidekey.yaml, found %d", len(found))
	}
	return found[0], nil
}

// secretValues merges the data (base64) and stringData of every Secret.
func secretValues(docs []obj) map[string]string {
	out := map[string]string{}
	for _, s := range kind(docs, "Secret") {
		if m, ok := s["data"].(obj); ok {
			for k, v := range m {
				if b, err := base64.StdEncoding.DecodeString(fmt.Sprint(v)); err == nil {
					out[k] = string(b)
				}
			}
		}
		if m, ok := s["stringData"].(obj); ok {
			for k, v := range m {
				out[k] = fmt.Sprint(v)
			}
		}
	}
	return out
}

// collectFiles records the value of every key ending in _file.
func collectFiles(v any, files map[string]bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if s, ok := e.(string); ok && strings.HasSuffix(k, "_file") {
				files[s] = true
			}
			collectFiles(e, files)
		}
	case []any:
		for _, e := range t {
			collectFiles(e, files)
		}
	}
}
