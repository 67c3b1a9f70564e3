package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeSidekeyConfig writes sidekey's configuration: one static tenant
// "bench" (a cached token, no token endpoint) in front of the upstream,
// memory storage, warnings only, no access log.
func writeSidekeyConfig(dir, name, addr, upstream string) (string, error) {
	conf := fmt.Sprintf(`listen: %s
storage: {type: memory}
log: {level: warn, access_log: false}
tenants:
  bench:
    provider: static
    token: %s
    api_url: %s
`, addr, token, upstream)
	file := filepath.Join(dir, name+".yaml")
	return file, os.WriteFile(file, []byte(conf), 0o600)
}

// writeCaddyfile writes Caddy's configuration: loopback only, no admin
// endpoint, no saved state, /bench/* stripped and proxied with the token
// set, warnings only.
func writeCaddyfile(dir, addr, upstream string) (string, error) {
	conf := fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	storage file_system %s
	log {
		level WARN
	}
}

http://%s {
	bind 127.0.0.1
	handle_path /bench/* {
		reverse_proxy %s {
			header_up Authorization "Bearer %s"
		}
	}
}
`, filepath.Join(dir, "caddy-data"), addr, strings.TrimPrefix(upstream, "http://"), token)
	file := filepath.Join(dir, "Caddyfile")
	return file, os.WriteFile(file, []byte(conf), 0o600)
}

// writeNginxConf writes nginx's configuration in its own prefix directory:
// foreground, workers = cores, no access log, /bench/ stripped and proxied
// over HTTP/1.1 keep-alive connections with the token set; keep-alive
// request limits lifted on both sides, as Go's servers have none.
func writeNginxConf(dir, addr, upstream string) (string, error) {
	prefix := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return "", err
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	keepalive_requests 1000000;
	keepalive_timeout 120s;
	upstream api {
		server %[3]s;
		keepalive 64;
		keepalive_requests 1000000;
	}
	server {
		listen %[2]s;
		location /bench/ {
			proxy_pass http://api/;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Authorization "Bearer %[4]s";
		}
	}
}
`, prefix, addr, strings.TrimPrefix(upstream, "http://"), token)
	file := filepath.Join(prefix, "nginx.conf")
	return file, os.WriteFile(file, []byte(conf), 0o644)
}
