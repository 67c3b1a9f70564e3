package config

import (
	"strings"
	"testing"
)

// TestParseAllChecksWhatServeReads: ParseAll reports, with the file's own
// problems, the files serve reads before it listens — each once, naming
// the key and the file, never the content.
func TestParseAllChecksWhatServeReads(t *testing.T) {
	ca := testCAPEM(t)
	src := `
admin_token_file: missing-admin
tls: {mode: files, cert_file: tls.crt, key_file: tls.key, ca_root_file: roots.pem}
storage: {type: memory, key_file: missing-key}
listne: x
`
	_, ps, err := ParseAll([]byte(src), ParseOptions{
		Getenv:   env(nil),
		ReadFile: files(map[string]string{"/etc/sk/tls.crt": ca, "/etc/sk/tls.key": "secret-not-a-key-Q9", "/etc/sk/roots.pem": "no pem here"}),
		Dir:      "/etc/sk",
	})
	if err != nil {
		t.Fatal(err)
	}
	checkProblems(t, ps,
		want{"admin_token_file", "cannot read /etc/sk/missing-admin"},
		want{"listne", "unknown key (did you mean listen?)"},
		want{"storage.key_file", "cannot read /etc/sk/missing-key"},
		want{"tls.ca_root_file", "no PEM certificate in /etc/sk/roots.pem"},
		want{"tls.key_file", "/etc/sk/tls.crt and /etc/sk/tls.key are not a PEM certificate chain and its private key"},
	)
	if strings.Contains(ps.Error(), "secret-not-a-key-Q9") {
		t.Errorf("a file's content reached the problems:\n%v", ps)
	}
}
