#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing:
# redis-server (the Redis store tests start their own on a free loopback
# port), file (the Docker build check), chromium (the console is tested in
# headless Chromium) and the outside clients the legacy listener tests run
# (curl, nodejs and npm; then the npm packages, through
# scripts/install-node-deps.sh). Without root it says what is
# missing and fails, so no test is ever skipped for want of a tool.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v file >/dev/null || need+=(file)
command -v curl >/dev/null || need+=(curl)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v python3 >/dev/null || need+=(python3)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  exec "$(dirname "$0")/install-node-deps.sh"
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing: ${need[*]} — install them (apt-get install ${need[*]}) or run make test as root" >&2
  exit 1
fi
echo "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
exec "$(dirname "$0")/install-node-deps.sh"
