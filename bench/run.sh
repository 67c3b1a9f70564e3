#!/usr/bin/env bash
# bench/run.sh — sidekey's performance harness, one command (see BENCHMARKS.md).
#
#   bench/run.sh              full run: proxy overhead (6 contenders × 3 rounds) and the
#                             token-engine scenarios; about 6 minutes plus builds
#   QUICK=1 bench/run.sh      smoke run, under a minute plus builds
#   PROFILE=1 bench/run.sh    only profile sidekey and the bare proxy under load (pprof)
#
# Knobs (environment): ROUNDS (3), CONCURRENCY (32), RATE (2000), SAT (6s), RATE_D (8s),
# WARMUP (1s), CONTENDERS (direct,bare,bare-tuned,caddy,nginx,sidekey), TOKENS=0 (skip the token
# scenarios), CONNECTIONS=1 (also run bench/connections: 100,000 stored connections, 10,000 active),
# OUT (directory for the reports; default a new temp directory).
#
# It installs what is missing (wrk and nginx-light with apt-get when run as root), builds
# sidekey, the bench programs and Caddy (pinned in bench/tools/go.mod, cached by version),
# binds only 127.0.0.1 and stops every process it started by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

CADDY_VERSION=v2.11.9 # keep in step with bench/tools/go.mod
log() { printf '== %s\n' "$*" >&2; }

# --- tools ---------------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
			{ apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
	else
		log "missing ${need[*]} and not root: saturation falls back to the Go load generator, nginx is skipped"
	fi
fi

# --- builds --------------------------------------------------------------------------
OUT=${OUT:-$(mktemp -d -t sidekey-bench-out-XXXXXX)}
mkdir -p "$OUT"
BIN=$(mktemp -d -t sidekey-bench-bin-XXXXXX)
trap 'rm -rf "$BIN"' EXIT
log "building sidekey and the bench programs"
go build -o "$BIN/sidekey" .
go build -o "$BIN/" ./bench/upstream ./bench/bareproxy ./bench/compare ./bench/tokens ./bench/profile ./bench/connections

CADDY_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/sidekey-bench/caddy-$CADDY_VERSION
caddy_note=""
if [ ! -x "$CADDY_CACHE" ]; then
	log "building caddy $CADDY_VERSION (bench/tools/go.mod; about 2 minutes the first time)"
	mkdir -p "$(dirname "$CADDY_CACHE")"
	if ! (cd bench/tools && go build -o "$CADDY_CACHE" github.com/caddyserver/caddy/v2/cmd/caddy) 2>"$OUT/caddy-build.log"; then
		caddy_note="go build of caddy $CADDY_VERSION failed: $(tail -3 "$OUT/caddy-build.log" | tr '\n' ' ')"
		log "$caddy_note"
	fi
fi
[ -x "$CADDY_CACHE" ] && cp "$CADDY_CACHE" "$BIN/caddy"

# --- runs ----------------------------------------------------------------------------
# Each program runs in the background so that an interrupt stops it (it then stops
# everything it started, by PID) rather than orphaning it.
child=""
# shellcheck disable=SC2317 # called from the trap
stop_child() { [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null || true; exit 130; }
trap stop_child INT TERM
runbg() {
	"$@" &
	child=$!
	local rc=0
	wait "$child" || rc=$?
	child=""
	return $rc
}
# addr_from FILE: wait up to 30 s for "… 127.0.0.1:PORT" in FILE and print that address.
addr_from() {
	for _ in $(seq 300); do
		a=$(grep -o '127\.0\.0\.1:[0-9]*' "$1" 2>/dev/null | head -1) && [ -n "$a" ] && { echo "$a"; return 0; }
		sleep 0.1
	done
	echo "no address in $1" >&2
	return 1
}

if [ "${PROFILE:-0}" = 1 ]; then
	"$BIN/upstream" -addr 127.0.0.1:0 >"$OUT/upstream.log" 2>&1 &
	uppid=$!
	trap 'kill "$uppid" 2>/dev/null || true; rm -rf "$BIN"' EXIT
	up=$(addr_from "$OUT/upstream.log")
	for mode in sidekey bare-tuned bare; do
		"$BIN/profile" -mode "$mode" -upstream "http://$up" -d 12s \
			-cpuprofile "$OUT/$mode.cpu.pprof" -memprofile "$OUT/$mode.allocs.pprof" >"$OUT/$mode.profile.txt" 2>&1 &
		ppid=$!
		addr=$(addr_from "$OUT/$mode.profile.txt")
		wrk -t1 -c"${CONCURRENCY:-32}" -d14s "http://$addr/bench/v1/cart/42" >"$OUT/$mode.wrk.txt"
		wait "$ppid"
		grep -m1 " requests in " "$OUT/$mode.profile.txt" || cat "$OUT/$mode.profile.txt"
		go tool pprof -top -nodecount=30 "$OUT/$mode.cpu.pprof" >"$OUT/$mode.cpu.top.txt" 2>/dev/null || true
		go tool pprof -top -nodecount=30 -sample_index=alloc_objects "$OUT/$mode.allocs.pprof" >"$OUT/$mode.allocs.top.txt" 2>/dev/null || true
	done
	kill "$uppid" 2>/dev/null || true
	wait "$uppid" 2>/dev/null || true
	log "profiles and pprof -top summaries in $OUT"
	exit 0
fi

if [ "${QUICK:-0}" = 1 ]; then
	args=(-rounds "${ROUNDS:-2}" -sat "${SAT:-1s}" -rate-d "${RATE_D:-1500ms}" -warmup "${WARMUP:-300ms}")
	tokargs=(-quick -scenario "herd,refresh")
else
	args=(-rounds "${ROUNDS:-3}" -sat "${SAT:-6s}" -rate-d "${RATE_D:-8s}" -warmup "${WARMUP:-1s}")
	tokargs=(-scenario "herd,refresh,many")
fi
args+=(-c "${CONCURRENCY:-32}" -rate "${RATE:-2000}" -contenders "${CONTENDERS:-direct,bare,bare-tuned,caddy,nginx,sidekey}")
[ -n "$caddy_note" ] && args+=(-caddy-note "$caddy_note")

status=0
log "proxy overhead: ${args[*]}"
runbg "$BIN/compare" -bin "$BIN" -out "$OUT/proxy.md" "${args[@]}" || status=1
if [ "${TOKENS:-1}" = 1 ]; then
	log "token engine: ${tokargs[*]}"
	# It exits 1 when an invariant fails (token request count, a tenant without a
	# valid token while refreshing, a failed request); the report says which.
	runbg "$BIN/tokens" -out "$OUT/tokens.md" "${tokargs[@]}" || status=1
fi
if [ "${CONNECTIONS:-0}" = 1 ]; then
	log "many tenants: bench/connections"
	runbg "$BIN/connections" >"$OUT/connections.md" || status=1
	cat "$OUT/connections.md"
fi
log "reports in $OUT"
exit $status
