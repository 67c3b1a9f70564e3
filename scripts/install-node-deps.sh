#!/usr/bin/env bash
# Installs the npm packages the tests run as real, outside clients into
# .cache/npm (never into the repository's tracked files): the SCAYLE
# Storefront SDK, pointed at a tenant's tls: local listener by
# server/legacy_clients_test.go. Idempotent; needs node and npm
# (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=.cache/npm
packages=("@scayle/storefront-api@19.6.0")
[ -f "$prefix/node_modules/@scayle/storefront-api/package.json" ] && exit 0
mkdir -p "$prefix"
echo "installing ${packages[*]} into $prefix"
npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error "${packages[@]}" >/dev/null
