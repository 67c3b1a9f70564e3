#!/usr/bin/env bash
# check-docker-build.sh proves what it can of the Dockerfile without a Docker
# engine:
#   1. the Dockerfile has the promised shape (builder, distroless nonroot base,
#      USER 65532, EXPOSE 8080, ENTRYPOINT/CMD), and a linter passes if one
#      is installed;
#   2. the Dockerfile's own build command (read from it, not copied here) run
#      on the files .dockerignore lets through, with --build-arg VERSION,
#      makes a static, stripped, -trimpath binary whose `sidekey version`
#      prints that VERSION;
#   3. that binary, with the image's ENTRYPOINT and CMD and an empty
#      environment, serves /_sidekey/healthz and /_sidekey/readyz and exits 0
#      on SIGTERM. As root it runs in a chroot holding nothing but the binary
#      and its config, as user 65532 (no libc, no shell, no CA files around
#      it: like distroless/static); otherwise it runs under env -i.
# It exits 1 and lists every failed check.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

GO=${GO:-go}
failed=()
fail() { failed+=("$*"); echo "FAIL: $*" >&2; }
started=$SECONDS
step() { echo "== [$((SECONDS - started))s] $*"; }

tmp=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

step "Dockerfile"
# Continuation lines joined, comments dropped.
instructions=$(sed -e '/^[[:space:]]*#/d' -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta' Dockerfile)
want_line() {
	grep -qxF -- "$1" <<<"$instructions" || fail "Dockerfile lacks the line: $1"
}
want_line 'FROM golang:1.26 AS build'
want_line 'FROM gcr.io/distroless/static-debian12:nonroot'
want_line 'ARG VERSION=devel'
want_line 'COPY --from=build /out/sidekey /sidekey'
want_line 'USER 65532:65532'
want_line 'EXPOSE 8080'
want_line 'ENTRYPOINT ["/sidekey", "serve"]'
want_line 'CMD ["--config", "/etc/sidekey/sidekey.yaml"]'
[[ $(grep -c '^FROM ' <<<"$instructions") == 2 ]] || fail "Dockerfile: want exactly two stages"
build_line=$(grep -E '^RUN .*go build ' <<<"$instructions")
[[ $(grep -c . <<<"$build_line") == 1 ]] || fail "Dockerfile: want exactly one RUN … go build"
build_cmd="CGO_ENABLED=0${build_line#*CGO_ENABLED=0}"
[[ $build_cmd == 'CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sidekey .' ]] ||
	fail "Dockerfile build command changed: $build_cmd"
if command -v hadolint >/dev/null; then
	hadolint Dockerfile || fail "hadolint Dockerfile"
else
	echo "no Dockerfile linter: hadolint is not installed (and not in Debian's packages); checked the instructions above instead"
fi

step "build context: the files .dockerignore lets through"
# .dockerignore: everything out, then go.mod, go.sum (any folder), *.go and
# the console's embedded files back in, *_test.go out again.
ctx=$tmp/context
mkdir -p "$ctx"
find . \( -name .git -o -name .cache \) -prune -o -type f \
	\( -name '*.go' -o -name go.mod -o -name go.sum -o -path './server/console/*' \) ! -name '*_test.go' -print0 |
	tar --null -T - -cf - | tar -xf - -C "$ctx" || fail "copying the build context"
for rule in '*' '!go.mod' '!go.sum' '!**/*.go' '!server/console/*' '!**/go.mod' '!**/go.sum' '**/*_test.go'; do
	grep -qxF -- "$rule" .dockerignore || fail ".dockerignore lacks '$rule': update this copy to match it"
done
echo "$(find "$ctx" -type f | wc -l) files"

step "build: $build_cmd"
out=$tmp/out
mkdir -p "$out"
bin=$out/sidekey
# The builder image has no GOFLAGS and no go.work; only -o moves, to $out.
# VERSION is what `docker build --build-arg VERSION=…` passes to the ARG.
stamp=v0.0.0-check-docker-build
(cd "$ctx" && env -u GOFLAGS GOWORK=off VERSION="$stamp" bash -c "${build_cmd//\/out\/sidekey/$bin}") || fail "the Dockerfile's build command failed"
[[ -x $bin ]] || { fail "no binary built"; bin=; }
if [[ -n $bin ]]; then
	got=$("$bin" version 2>&1)
	if [[ $got == "sidekey $stamp" ]]; then echo "ok sidekey version: $got"; else fail "sidekey version printed '$got'; want 'sidekey $stamp'"; fi
fi

if [[ -n $bin ]]; then
	step "the binary is static, stripped and -trimpath"
	if ! command -v file >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		apt-get install -y -qq --no-install-recommends file >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends file >/dev/null 2>&1; }
	fi
	if command -v file >/dev/null; then
		desc=$(file -b "$bin")
		echo "file: $desc"
		[[ $desc == *"statically linked"* ]] || fail "file does not say statically linked: $desc"
		[[ $desc == *", stripped"* ]] || fail "file does not say stripped: $desc"
	else
		fail "file(1) is not installed and could not be installed"
	fi
	if command -v ldd >/dev/null; then
		ldd_out=$(ldd "$bin" 2>&1)
		echo "ldd: $ldd_out"
		[[ $ldd_out == *"not a dynamic executable"* || $ldd_out == *"statically linked"* ]] ||
			fail "ldd finds shared libraries: $ldd_out"
	fi
	settings=$("$GO" version -m "$bin")
	# (-trimpath keeps -ldflags out of the build info; "stripped" above shows -s.)
	for want in $'\tbuild\t-trimpath=true' $'\tbuild\tCGO_ENABLED=0'; do
		grep -qF -- "$want" <<<"$settings" || fail "go version -m lacks${want//$'\t'/ }"
	done
fi

# http_status PORT PATH: the status code of GET PATH on 127.0.0.1:PORT, or
# nothing. Plain bash: the image has no curl, and neither need the host.
http_status() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
		IFS=' ' read -r -t 2 _ code _ <&3 && echo "$code"
	) 2>/dev/null
}

if [[ -n $bin ]]; then
	step "run it as the image would: serve --config /etc/sidekey/sidekey.yaml, empty environment"
	root=$tmp/root
	mkdir -p "$root/etc/sidekey" "$root/run/secrets/sidekey"
	cp "$bin" "$root/sidekey"
	printf 'ci-static-api-key\n' >"$root/run/secrets/sidekey/token"
	cat >"$root/etc/sidekey/sidekey.yaml" <<-'EOF'
		listen: 127.0.0.1:0          # the kernel picks a free port; read back from the log
		storage: {type: memory}
		shutdown_timeout: 5s
		tenants:
		  ci-static:
		    provider: static
		    token_file: /run/secrets/sidekey/token
		    api_url: http://127.0.0.1:9
	EOF
	log=$tmp/sidekey.log
	chroot_bin=$(command -v chroot)
	if [[ $(id -u) == 0 && -n $chroot_bin ]]; then
		chown -R 65532:65532 "$root/run/secrets/sidekey" && chmod 0400 "$root/run/secrets/sidekey/token"
		chmod -R a+rX "$root/etc" "$root/sidekey"
		echo "chroot $root (only /sidekey and its config), user 65532:65532, env -i"
		env -i "$chroot_bin" --userspec=65532:65532 "$root" /sidekey serve --config /etc/sidekey/sidekey.yaml 2>"$log" &
	else
		echo "not root: env -i on the host (no chroot)"
		sed -i "s#/run/secrets/sidekey/token#$root/run/secrets/sidekey/token#" "$root/etc/sidekey/sidekey.yaml"
		env -i "$root/sidekey" serve --config "$root/etc/sidekey/sidekey.yaml" 2>"$log" &
	fi
	pid=$!

	port=
	deadline=$((SECONDS + 20))
	while [[ -z $port ]] && ((SECONDS < deadline)) && kill -0 "$pid" 2>/dev/null; do
		port=$(sed -n 's/.*"sidekey listening".*"addr":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$log" | head -1)
		[[ -n $port ]] || sleep 0.1
	done
	if [[ -z $port ]]; then
		cat "$log" >&2
		fail "sidekey did not log its listening address within 20s"
	else
		echo "listening on 127.0.0.1:$port"
		for path in /_sidekey/healthz /_sidekey/readyz; do
			code=
			deadline=$((SECONDS + 10))
			while [[ $code != 200 ]] && ((SECONDS < deadline)); do
				code=$(http_status "$port" "$path")
				[[ $code == 200 ]] || sleep 0.1
			done
			if [[ $code == 200 ]]; then echo "ok GET $path: 200"; else fail "GET $path: ${code:-no answer}, want 200"; fi
		done
	fi

	step "SIGTERM: a clean exit"
	kill -TERM "$pid" 2>/dev/null
	deadline=$((SECONDS + 10))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		fail "sidekey still running 10s after SIGTERM"
		kill -KILL "$pid"
	else
		wait "$pid"
		rc=$?
		if ((rc == 0)); then echo "ok exit 0"; else cat "$log" >&2; fail "sidekey exited $rc after SIGTERM"; fi
	fi
	pid=
fi

step "done"
if ((${#failed[@]})); then
	echo "check-docker-build: ${#failed[@]} failure(s):" >&2
	printf '  - %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "check-docker-build: ok ($((SECONDS - started))s)"
