package config

import (
	"crypto/sha256"
	"crypto/tls"
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
	// stat reads a secret file's mode; nil: modes are not checked (the
	// files do not come from the file system).
	stat     func(string) (fs.FileInfo, error)
	warnings *[]Warning
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

// serveFiles checks the files serve reads before it listens, besides the
// secrets readAll read: admin_token_file is readable and not empty, the
// tls files hold a certificate chain and its key, tls.ca_root_file holds
// certificates, storage.key_file is readable (a file store may lack it: it
// generates one). Paths are already resolved (readAll).
func (r *fileReader) serveFiles(c *Config) {
	if c.AdminTokenFile != "" {
		r.read("admin_token_file", &c.AdminTokenFile) // the server reads it again
	}
	r.storeKey(&c.Storage)
	if c.TLS.Mode == "files" {
		r.keyPair(&c.TLS)
	}
	r.certificates("tls.ca_root_file", &c.TLS.CARootFile)
	r.localCA(&c.LocalCA)
}

// localCA checks that local_ca's files, when set, hold a CA certificate and
// its private key (the server reads them again at start).
func (r *fileReader) localCA(ca *LocalCA) {
	if ca.CertFile == "" || ca.KeyFile == "" {
		return
	}
	r.checkMode("local_ca.key_file", ca.KeyFile)
	certPEM, certOK := r.read("local_ca.cert_file", &ca.CertFile)
	keyPEM, keyOK := r.read("local_ca.key_file", &ca.KeyFile)
	if !certOK || !keyOK {
		return
	}
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		// The error names no content; the files are named instead.
		r.problems.addf("local_ca.key_file", "%s and %s are not a PEM certificate and its private key", ca.CertFile, ca.KeyFile)
		return
	}
	if cert, err := x509.ParseCertificate(pair.Certificate[0]); err != nil || !cert.IsCA {
		r.problems.addf("local_ca.cert_file", "%s is not a CA certificate (basic constraints CA:TRUE): it cannot issue the listeners' certificates", ca.CertFile)
	}
}

// storeKey checks that storage.key_file, when set, can be read; only the
// file store may lack it (it generates one). Its form is package store's
// to judge (sidekey check asks it).
func (r *fileReader) storeKey(s *Storage) {
	const key = "storage.key_file"
	if s.KeyFile == "" || r.skip[key] {
		return
	}
	if _, err := r.readFile(s.KeyFile); err != nil {
		if errors.Is(err, fs.ErrNotExist) && (s.Type == "" || s.Type == "file") {
			return
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		r.problems.addf(key, "cannot read %s: %v", s.KeyFile, err)
	}
}

// keyPair checks that tls.cert_file and tls.key_file, when both are set,
// hold a certificate chain and its private key. The server reads them
// again (and again when they change).
func (r *fileReader) keyPair(t *TLS) {
	if t.CertFile == "" || t.KeyFile == "" {
		return
	}
	cert, certOK := r.read("tls.cert_file", &t.CertFile)
	key, keyOK := r.read("tls.key_file", &t.KeyFile)
	if !certOK || !keyOK {
		return
	}
	if _, err := tls.X509KeyPair([]byte(cert), []byte(key)); err != nil {
		// The error names no content; the files are named instead.
		r.problems.addf("tls.key_file", "%s and %s are not a PEM certificate chain and its private key", t.CertFile, t.KeyFile)
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
		r.checkMode(joinKey(prefix, name+"_file"), *path)
	}
}

// Warning is something Parse found suspicious but not wrong.
type Warning struct {
	Key  string      // the setting, e.g. "tenants.acme.client_secret_file"
	Path string      // the file it names
	Mode fs.FileMode // the file's permission bits
}

// String says what is wrong and how to fix it.
func (w Warning) String() string {
	return w.Key + ": secret file " + w.Path + " (mode " + w.Mode.String() +
		") is readable by others or by a group this process is not in; restrict it to the owner (chmod 600)"
}

// checkMode records a Warning when the secret file at path (already
// resolved) may be read by group or others.
func (r *fileReader) checkMode(key, path string) {
	if r.stat == nil || path == "" {
		return
	}
	info, err := r.stat(path)
	if err != nil {
		return // reading it reports the problem, or the server will
	}
	if SecretFileExposed(info) {
		*r.warnings = append(*r.warnings, Warning{Key: key, Path: path, Mode: info.Mode().Perm()})
	}
}

// readAll reads every *_file secret of c into its field, hashes callers'
// key files, checks that tls.client_ca_file holds certificates, and
// resolves the other file paths (admin_token_file, storage.key_file, tls
// files) against the config file's directory. storage.path is resolved by
// Parse after defaults are filled.
func (r *fileReader) readAll(c *Config) {
	c.AdminTokenFile = r.resolve(c.AdminTokenFile)
	r.checkMode("admin_token_file", c.AdminTokenFile)
	c.Storage.KeyFile = r.resolve(c.Storage.KeyFile)
	c.TLS.CertFile = r.resolve(c.TLS.CertFile)
	c.TLS.KeyFile = r.resolve(c.TLS.KeyFile)
	r.checkMode("tls.key_file", c.TLS.KeyFile)
	c.TLS.CARootFile = r.resolve(c.TLS.CARootFile)
	c.LocalCA.CertFile = r.resolve(c.LocalCA.CertFile)
	c.LocalCA.KeyFile = r.resolve(c.LocalCA.KeyFile)
	r.certificates("tls.client_ca_file", &c.TLS.ClientCAFile)
	r.secret("storage.redis", "password", &c.Storage.Redis.Password, &c.Storage.Redis.PasswordFile)
	if sn := c.Storage.Redis.Sentinel; sn != nil {
		r.secret("storage.redis.sentinel", "password", &sn.Password, &sn.PasswordFile)
	}
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
			r.checkMode(prefix+".key_file", cl.KeyFile)
			sum := sha256.Sum256([]byte(key))
			cl.KeySHA256 = hex.EncodeToString(sum[:])
		}
	}
}

// SecretFiles lists, sorted and without repeats, the files whose content a
// reload reads anew: admin_token_file, callers' key_file and every tenant's
// and app's *_file secret (resolved paths). serve watches them with the
// config file, so a secret changed in place is reloaded like the file.
// Files bound at start (storage and tls settings) are not listed; tls
// certificates and client CAs are watched by the listener itself.
func (c *Config) SecretFiles() []string {
	var files []string
	add := func(path string) {
		if path != "" {
			files = append(files, path)
		}
	}
	add(c.AdminTokenFile)
	for _, cl := range c.Callers {
		if cl != nil {
			add(cl.KeyFile)
		}
	}
	for _, blocks := range []map[string]*Tenant{c.Apps, c.Tenants} {
		for _, t := range blocks {
			if t != nil {
				add(t.ClientSecretFile)
				add(t.RefreshTokenFile)
				add(t.TokenFile)
				add(t.ShopSecretFile)
			}
		}
	}
	slices.Sort(files)
	return slices.Compact(files)
}
