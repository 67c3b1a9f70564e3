package main

import (
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sidekey/sidekey/config"
)

// checkSidecar: the example's sidekey listens on loopback only, beside an
// app that calls it there, and is probed from inside its container.
func checkSidecar(c *checker, r *rendered) {
	listen := str(r.cfg, "listen")
	c.check(config.IsLoopback(listen), "sidecar listen %q is not loopback", listen)
	c.check(len(list(r.sidekey, "ports")) == 0, "the sidecar declares ports; it listens on loopback only")
	c.check(str(r.sidekey, "restartPolicy") == "Always", "sidekey is not a native sidecar (initContainers, restartPolicy: Always)")
	checkSidecarProbes(c, r, listen)
	apps := list(r.pod, "containers")
	c.check(len(apps) > 0, "no app container")
	text, _ := yaml.Marshal(apps)
	c.check(strings.Contains(string(text), "http://"+listen+"/"), "no app container calls sidekey at http://%s/", listen)
}

// checkSidecarProbes: the kubelet's httpGet and tcpSocket probes go to the
// pod IP, where a loopback-only sidekey does not listen, so every probe must
// be an exec of `sidekey healthcheck` at the listen address; a startup and
// a liveness probe must exist.
func checkSidecarProbes(c *checker, r *rendered, listen string) {
	for _, probe := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
		p, ok := r.sidekey[probe].(obj)
		if !ok {
			c.check(probe == "readinessProbe", "the sidecar has no %s", probe)
			continue
		}
		c.check(p["httpGet"] == nil && p["tcpSocket"] == nil && p["grpc"] == nil,
			"sidecar %s probes the pod IP, where a loopback-only sidekey does not listen: use exec sidekey healthcheck", probe)
		cmd := list(p, "exec", "command")
		c.check(len(cmd) >= 2 && strings.HasSuffix(str(cmd, 0), "sidekey") && cmd[1] == "healthcheck",
			"sidecar %s is not an exec of `sidekey healthcheck`: %v", probe, cmd)
		if i := slices.Index(cmd, any("--url")); i >= 0 {
			u, err := url.Parse(str(cmd, i+1))
			c.check(err == nil && u.Host == listen && strings.HasPrefix(u.Path, "/_sidekey/"),
				"sidecar %s checks %q, not a /_sidekey/ endpoint at %s", probe, str(cmd, i+1), listen)
		} else {
			// healthcheck's default URL is http://127.0.0.1:8080/_sidekey/readyz.
			c.check(listen == "127.0.0.1:8080", "sidecar %s uses healthcheck's default 127.0.0.1:8080, but sidekey listens on %s", probe, listen)
		}
	}
}
