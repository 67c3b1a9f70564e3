package main

import (
	"fmt"
	"strings"
)

// TLSDir is where the chart mounts tls.existingSecret for tls.mode files.
const TLSDir = "/run/secrets/sidekey-tls"

// acmeHTTPPort is the container port the chart gives ACME HTTP-01.
const acmeHTTPPort = "8081"

// tlsMode is the rendered tls.mode: off (also when unset), files or acme.
func (r *rendered) tlsMode() string {
	if m := str(r.cfg, "tls", "mode"); m != "" {
		return m
	}
	return "off"
}

// scheme is the listener's scheme, which also names its ports.
func (r *rendered) scheme() string {
	if r.tlsMode() == "off" {
		return "http"
	}
	return "https"
}

// checkTLS: what each tls.mode needs of the chart. files: the certificate
// from a mounted kubernetes.io/tls Secret; acme: one replica, a writable
// /data for certmagic, and the HTTP-01 port from the Service's port 80 to the
// port sidekey answers on; off: neither. Then the client CA (checkClientCA).
func checkTLS(c *checker, r *rendered) {
	mode := r.tlsMode()
	tlsVolume := r.volumeAt(TLSDir)
	acmePort := named(list(r.sidekey, "ports"), "acme-http")
	if mode != "off" {
		c.check(strings.HasPrefix(str(r.cfg, "public_url"), "https://"), "tls %s but public_url = %q", mode, str(r.cfg, "public_url"))
	}
	switch mode {
	case "off":
		c.check(tlsVolume == nil, "tls off but a volume is mounted at %s", TLSDir)
		c.check(acmePort == nil, "tls off but an acme-http port is declared")
	case "files":
		c.check(str(r.cfg, "tls", "cert_file") == TLSDir+"/tls.crt", "tls.cert_file = %q, want %s/tls.crt", str(r.cfg, "tls", "cert_file"), TLSDir)
		c.check(str(r.cfg, "tls", "key_file") == TLSDir+"/tls.key", "tls.key_file = %q, want %s/tls.key", str(r.cfg, "tls", "key_file"), TLSDir)
		c.check(str(tlsVolume, "secret", "secretName") != "", "tls files but no Secret is mounted at %s", TLSDir)
		c.check(acmePort == nil, "tls files but an acme-http port is declared")
	case "acme":
		c.check(tlsVolume == nil, "tls acme but a volume is mounted at %s", TLSDir)
		c.check(str(r.cfg, "tls", "email") != "" && len(list(r.cfg, "tls", "domains")) > 0, "tls acme without email or domains")
		c.check(fmt.Sprint(get(r.cfg, "tls", "http_challenge_port")) == acmeHTTPPort, "tls.http_challenge_port = %v, want %s", get(r.cfg, "tls", "http_challenge_port"), acmeHTTPPort)
		c.check(fmt.Sprint(get(acmePort, "containerPort")) == acmeHTTPPort, "no container port %s named acme-http", acmeHTTPPort)
		for _, s := range kind(r.docs, "Service") {
			p := named(list(s, "spec", "ports"), "acme-http")
			c.check(fmt.Sprint(get(p, "port")) == "80" && fmt.Sprint(get(p, "targetPort")) == "acme-http", "Service has no port 80 named acme-http to targetPort acme-http")
		}
		single := fmt.Sprint(get(r.dep, "spec", "replicas")) == "1" && len(kind(r.docs, "HorizontalPodAutoscaler")) == 0
		c.check(single || str(r.cfg, "storage", "type") == "redis", "tls acme over several replicas without the redis store that shares the ACME state")
		for _, np := range kind(r.docs, "NetworkPolicy") {
			c.check(len(list(np, "spec", "ingress", 0, "from")) > 1, "tls acme but the NetworkPolicy admits only labelled pods: the CA cannot reach sidekey")
		}
	default:
		c.check(false, "unknown tls.mode %q", mode)
	}
	checkClientCA(c, r)
}
