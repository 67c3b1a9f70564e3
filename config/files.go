package config

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
)

// fileReader reads the *_file secrets of a configuration.
type fileReader struct {
	readFile func(string) ([]byte, error)
	dir      string          // relative paths are resolved against it
	skip     map[string]bool // keys that already have a problem: not read
	problems *Problems
}

// resolve returns path made relative to the config file's directory.
func (r *fileReader) resolve(path string) string {
	if path == "" || r.dir == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(r.dir, path)
}

// read returns the content of the file at *path (resolving *path in place)
// with one trailing newline removed. key names the *_file setting in
// problems; the content never appears in them.
func (r *fileReader) read(key string, path *string) (string, bool) {
	*path = r.resolve(*path)
	if r.skip[key] {
		return "", false
	}
	data, err := r.readFile(*path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		r.problems.addf(key, "cannot read %s: %v", *path, err)
		return "", false
	}
	s := string(data)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s, _ = strings.CutSuffix(t, "\r")
	}
	if s == "" {
		r.problems.addf(key, "file %s is empty", *path)
		return "", false
	}
	return s, true
}

// certificates checks that the file at *path (resolved in place), when one
// is set, holds at least one PEM certificate. The server reads it again
// when it starts.
func (r *fileReader) certificates(key string, path *string) {
	if *path == "" {
		return
	}
	if pem, ok := r.read(key, path); ok && !x509.NewCertPool().AppendCertsFromPEM([]byte(pem)) {
		r.problems.addf(key, "no PEM certificate in %s", *path)
	}
}

// secret fills *s from the file at *path when one is set. Setting both is a
// problem at prefix ("tenants.a: client_secret and client_secret_file are
// mutually exclusive").
func (r *fileReader) secret(prefix, name string, s *Secret, path *string) {
	if *path == "" {
		return
	}
	if *s != "" {
		r.problems.addf(prefix, "%s and %s_file are mutually exclusive", name, name)
		return
	}
	if v, ok := r.read(joinKey(prefix, name+"_file"), path); ok {
		*s = Secret(v)
	}
}

// readAll reads every *_file secret of c into its field, hashes callers'
// key files, checks that tls.client_ca_file holds certificates, and
// resolves the other file paths (admin_token_file, storage.key_file, tls
// files) against the config file's directory.
func (r *fileReader) readAll(c *Config) {
	c.AdminTokenFile = r.resolve(c.AdminTokenFile)
	c.Storage.KeyFile = r.resolve(c.Storage.KeyFile)
	c.TLS.CertFile = r.resolve(c.TLS.CertFile)
	c.TLS.KeyFile = r.resolve(c.TLS.KeyFile)
	c.TLS.CARootFile = r.resolve(c.TLS.CARootFile)
	r.certificates("tls.client_ca_file", &c.TLS.ClientCAFile)
	r.secret("storage.redis", "password", &c.Storage.Redis.Password, &c.Storage.Redis.PasswordFile)
	r.webhookSecrets(c)

	for section, blocks := range map[string]map[string]*Tenant{"apps": c.Apps, "tenants": c.Tenants} {
		for _, name := range slices.Sorted(maps.Keys(blocks)) {
			t := blocks[name]
			if t == nil {
				continue
			}
			prefix := section + "." + name
			r.secret(prefix, "client_secret", &t.ClientSecret, &t.ClientSecretFile)
			r.secret(prefix, "refresh_token", &t.RefreshToken, &t.RefreshTokenFile)
			r.secret(prefix, "token", &t.Token, &t.TokenFile)
			r.secret(prefix, "shop_secret", &t.ShopSecret, &t.ShopSecretFile)
		}
	}

	for _, name := range slices.Sorted(maps.Keys(c.Callers)) {
		cl := c.Callers[name]
		if cl == nil {
			continue
		}
		prefix := "callers." + name
		cl.KeySHA256 = strings.ToLower(strings.TrimSpace(cl.KeySHA256))
		if cl.KeyFile == "" {
			continue
		}
		if cl.KeySHA256 != "" {
			r.problems.add(prefix, "key_sha256 and key_file are mutually exclusive")
			continue
		}
		if key, ok := r.read(prefix+".key_file", &cl.KeyFile); ok {
			sum := sha256.Sum256([]byte(key))
			cl.KeySHA256 = hex.EncodeToString(sum[:])
		}
	}
}
