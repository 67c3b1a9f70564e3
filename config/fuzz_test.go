package config

import (
	"errors"
	"strings"
	"testing"
)

// fuzzFileContent is what every *_file holds during fuzzing; it must never
// appear in a problem.
const fuzzFileContent = "fuzz-file-secret-Q7"

func FuzzParse(f *testing.F) {
	seeds := []string{
		designExample,
		validTenants,
		"",
		"listen: ${LISTEN:-127.0.0.1:1}\npublic_url: $${x}\n",
		"tenants:\n  a: &a {provider: static, token_file: t}\n  b: *a\n  c: {<<: *a, api_url: 'http://x'}\n",
		"tenants: {a: &a {<<: *a}}",
		"callers: {c: {key_file: k, tenants: [a, b]}}\ntenants: {a: {provider: oauth2}}",
		"shutdown_timeout: 1h\nengine: {fetch_timeout: 90, max_active: 5}\nupstream: {max_replay_body: -1}",
		"a: [b: {c: d}]\n---\nx: y",
		"? [a]\n: b",
		"tenants:\n  ${X}:\n    provider: ${P}\n    headers: {X-A: \"\\r\\n\"}\n",
		"listen: 0.0.0.0:1\nstorage: {type: redis, redis: {addr: ':0', password_file: p, password: q}}",
		"!!map {listen: !!int 5, log: !!str {a: b}}",
		"tenants: {a: {scopes: !!binary aGVsbG8=}}",
		"listen: 0.0.0.0:1\ncaller_key_header: X-Sidekey-Key\ntls: {mode: files, cert_file: c, key_file: k, client_ca_file: ca.pem}\n" +
			"callers: {m: {cert_subject: 'CN=billing,O=Acme', tenants: [a]}, n: {cert_subject: 'CN=a\\,b+OU=\\#x'}, k: {key_file: k, tenants: [a]}}\n" +
			"tenants: {a: {provider: static, token: t, api_url: 'http://x'}}",
		"tls: {client_ca_file: missing.pem}\ncaller_key_header: Connection\ncallers: {m: {cert_subject: 'subject=/CN=x, O=y\\', key_sha256: ab}}",
		"tls: {mode: acme, client_ca_file: k}\ncallers: {a: {cert_subject: CN=x}, b: {cert_subject: CN=x}}",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	caPEM := testCAPEM(f) // what every *.pem file holds
	opts := ParseOptions{
		Getenv: env(map[string]string{"X": "acme", "P": "static", "LISTEN": "[::1]:0", "EMPTY": ""}),
		ReadFile: func(path string) ([]byte, error) {
			if strings.Contains(path, "missing") {
				return nil, errors.New("no such file")
			}
			if strings.HasSuffix(path, ".pem") {
				return []byte(caPEM), nil
			}
			return []byte(fuzzFileContent + "\n"), nil
		},
		Dir: "/etc/sidekey",
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// ParseAll (sidekey check and serve) goes on past every problem:
		// it must neither panic nor reveal a file's content either.
		if all, ps, err := ParseAll(data, opts); err == nil {
			if all == nil {
				t.Fatal("ParseAll returned no config and no error")
			}
			if strings.Contains(ps.Error(), fuzzFileContent) {
				t.Fatalf("ParseAll problems reveal file content: %v", ps)
			}
		}
		c, err := Parse(data, opts)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config and an error: %v", err)
			}
			if strings.Contains(err.Error(), fuzzFileContent) {
				t.Fatalf("Parse error reveals file content: %v", err)
			}
			return
		}
		if c == nil || c.Listen == "" || c.Log.AccessLog == nil {
			t.Fatalf("Parse: nil error but config %+v lacks defaults", c)
		}
		if err := c.Validate(); err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Validate: %v is not Problems", err)
			}
			if strings.Contains(err.Error(), fuzzFileContent) {
				t.Fatalf("Validate error reveals file content: %v", err)
			}
		}
	})
}
