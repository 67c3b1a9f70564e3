package main

import "strings"

// LocalCADir is where the chart (legacy.localCA.existingSecret) and the
// sidecar example mount the local CA's kubernetes.io/tls Secret.
const LocalCADir = "/run/secrets/sidekey-local-ca"

// checkLocalCA: local_ca, when set, is the tls.crt and tls.key of a
// Secret mounted read-only at LocalCADir into sidekey; no other container
// mounts that Secret except projecting tls.crt alone (the app trusts the
// certificate and never holds the key). Without local_ca nothing is
// mounted there.
func checkLocalCA(c *checker, r *rendered) {
	cert, key := str(r.cfg, "local_ca", "cert_file"), str(r.cfg, "local_ca", "key_file")
	volume := r.volumeAt(LocalCADir)
	if cert == "" && key == "" {
		c.check(volume == nil, "no local_ca, but a volume is mounted at %s", LocalCADir)
		return
	}
	c.check(cert == LocalCADir+"/tls.crt" && key == LocalCADir+"/tls.key",
		"local_ca = %s, %s; want %s/tls.crt and tls.key", cert, key, LocalCADir)
	secret := str(volume, "secret", "secretName")
	c.check(secret != "", "local_ca is set but no Secret is mounted at %s", LocalCADir)
	for _, m := range list(r.sidekey, "volumeMounts") {
		if str(m, "mountPath") == LocalCADir {
			c.check(get(m, "readOnly") == true, "the local CA is not mounted read-only")
		}
	}
	for _, ct := range list(r.pod, "containers") {
		if str(ct, "name") == str(r.sidekey, "name") {
			continue
		}
		for _, m := range list(ct, "volumeMounts") {
			v := named(list(r.pod, "volumes"), str(m, "name"))
			if str(v, "secret", "secretName") != secret {
				continue
			}
			items := list(v, "secret", "items")
			c.check(len(items) == 1 && str(items[0], "key") == "tls.crt",
				"container %s mounts the local CA Secret %s with more than tls.crt: the CA key stays in sidekey", str(ct, "name"), secret)
		}
	}
}

// isLocalCAFile reports whether path is a local_ca file: in its own
// Secret (extract writes a placeholder CA there for sidekey check).
func isLocalCAFile(path string) bool { return strings.HasPrefix(path, LocalCADir+"/") }
