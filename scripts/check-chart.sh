#!/usr/bin/env bash
# check-chart.sh validates charts/sidekey and examples/kubernetes offline:
#   1. helm lint --strict, with the default values and every ci/*-values.yaml
#      (default, ha, sentinel, cluster, existing-secret, callers, apps, tls-files,
#      tls-acme, mtls, legacy);
#   2. helm template for every scenario, then kubeconform -strict against
#      schemas built from Kubernetes' own swagger.json (ServiceMonitor skipped:
#      a CRD), the rendered output's promises (scripts/chartcheck), and
#      `sidekey check` on each rendered sidekey.yaml;
#   3. the same for the sidecar example;
#   4. renders that must fail, with the message a user needs;
#   5. that the checks themselves can fail (a broken manifest, a weakened
#      securityContext, HTTP probes of HTTPS, a client CA volume without ca.crt).
# helm and kubeconform build from tools/go.mod (pinned). It exits 1 and lists
# every failed check.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

GO=${GO:-go}
KUBE_VERSION=1.36.3 # schemas and helm's capabilities; k8s.io/kubernetes module version
NS=sidekey
CHART=charts/sidekey
TOOLS=("$GO" tool -modfile=tools/go.mod)

failed=()
fail() { failed+=("$*"); echo "FAIL: $*" >&2; }
started=$SECONDS
step() { echo "== [$((SECONDS - started))s] $*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step "build helm, kubeconform (tools/go.mod) and sidekey"
# Built (and cached) by `go tool`; then run from the cache directly, which
# saves go tool's second-long staleness check on each of the ~25 calls.
"${TOOLS[@]}" helm version --short >/dev/null || { echo "FAIL: cannot build helm" >&2; exit 1; }
"${TOOLS[@]}" kubeconform -v >/dev/null || { echo "FAIL: cannot build kubeconform" >&2; exit 1; }
helm_bin=$("${TOOLS[@]}" -n helm) || { echo "FAIL: cannot locate helm" >&2; exit 1; }
kubeconform_bin=$("${TOOLS[@]}" -n kubeconform) || { echo "FAIL: cannot locate kubeconform" >&2; exit 1; }
helm() { "$helm_bin" "$@"; }
kubeconform() { "$kubeconform_bin" "$@"; }
"$GO" build -o "$tmp/sidekey" . || { echo "FAIL: cannot build sidekey" >&2; exit 1; }
"$GO" build -o "$tmp/chartcheck" ./scripts/chartcheck || { echo "FAIL: cannot build chartcheck" >&2; exit 1; }

step "Kubernetes $KUBE_VERSION schemas"
gen_hash=$(sha256sum scripts/k8sschema/main.go | cut -c1-12)
schemas=.cache/k8s-schemas/v$KUBE_VERSION-$gen_hash
if [[ ! -f $schemas/.complete ]]; then
	mod_dir=$(cd "$tmp" && GOFLAGS='' "$GO" mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	swagger=$mod_dir/api/openapi-spec/swagger.json
	[[ -f $swagger ]] || { echo "FAIL: no swagger.json in k8s.io/kubernetes@v$KUBE_VERSION ($mod_dir)" >&2; exit 1; }
	rm -rf "$schemas.tmp" && mkdir -p "$(dirname "$schemas")"
	"$GO" run ./scripts/k8sschema -swagger "$swagger" -out "$schemas.tmp" || { echo "FAIL: schema generation" >&2; exit 1; }
	touch "$schemas.tmp/.complete" && rm -rf "$schemas" && mv "$schemas.tmp" "$schemas"
fi
schema_location="$PWD/$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json"
validate() { kubeconform -strict -summary -skip ServiceMonitor -schema-location "$schema_location" "$@"; }

step "values.yaml: every value has a # -- comment"
"$tmp/chartcheck" values-doc "$CHART/values.yaml" || fail "values.yaml: undocumented values"

step "helm lint --strict"
lint_args=("")
for f in "$CHART"/ci/*-values.yaml; do lint_args+=("$f"); done
for f in "${lint_args[@]}"; do
	out=$(helm lint --strict --kube-version "$KUBE_VERSION" "$CHART" ${f:+-f "$f"} 2>&1) ||
		{ echo "$out"; fail "helm lint --strict ${f:-(default values)}"; }
done

# render NAME [helm args...]: helm template into $tmp/NAME.yaml.
render() {
	local name=$1
	shift
	helm template sidekey "$CHART" --namespace "$NS" --kube-version "$KUBE_VERSION" "$@" >"$tmp/$name.yaml" 2>"$tmp/$name.err"
}

# check_config NAME FILE...: sidekey check on the sidekey.yaml in FILEs.
check_config() {
	local name=$1
	shift
	if ! "$tmp/chartcheck" extract -out "$tmp/cfg-$name" "$@" >/dev/null; then
		fail "$name: cannot extract sidekey.yaml"
	elif ! "$tmp/sidekey" check --config "$tmp/cfg-$name/sidekey.yaml"; then
		fail "$name: the rendered sidekey.yaml does not pass sidekey check"
	fi
}

step "helm template, chartcheck and sidekey check per scenario"
rendered=()
for f in "$CHART"/ci/*-values.yaml; do
	name=$(basename "$f" -values.yaml)
	if ! render "$name" -f "$f"; then
		cat "$tmp/$name.err" >&2
		fail "helm template $f"
		continue
	fi
	rendered+=("$tmp/$name.yaml")
	"$tmp/chartcheck" assert -scenario "$name" "$tmp/$name.yaml" || fail "$name: rendered output (chartcheck)"
	check_config "$name" "$tmp/$name.yaml"
done

step "acme with several replicas over redis (the ha scenario with tls-acme)"
# sidekey keeps the ACME state in Redis then, so the chart renders it; the
# common checks and sidekey check apply.
if render acme-ha -f "$CHART/ci/ha-values.yaml" -f "$CHART/ci/tls-acme-values.yaml" --set config.storage.type=redis; then
	"$tmp/chartcheck" assert -scenario acme-ha "$tmp/acme-ha.yaml" || fail "acme-ha: rendered output (chartcheck)"
	check_config acme-ha "$tmp/acme-ha.yaml"
	grep -q 'kind: HorizontalPodAutoscaler' "$tmp/acme-ha.yaml" || fail "acme-ha: no HorizontalPodAutoscaler: the scenario does not scale"
else
	cat "$tmp/acme-ha.err" >&2
	fail "helm template acme-ha"
fi

step "NOTES.txt: the next command to run, and how callers authenticate"
# helm template does not print NOTES.txt: render it from a copy of the chart
# where it is a named template shown through a one-line manifest.
notes_chart=$tmp/notes/sidekey
mkdir -p "$tmp/notes" && cp -r "$CHART" "$notes_chart"
{
	echo '{{- define "sidekey.notesCheck" -}}'
	cat "$CHART/templates/NOTES.txt"
	echo '{{- end }}'
} >"$notes_chart/templates/_notes_check.tpl"
rm "$notes_chart/templates/NOTES.txt"
echo 'notes: {{ include "sidekey.notesCheck" . | toJson }}' >"$notes_chart/templates/notes-check.yaml"
# notes_have NAME WANT... [-- helm args...]: the rendered NOTES contain every WANT
# (JSON-escaped: a WANT with <, > or & never matches).
notes_have() {
	local name=$1 wants=() text
	shift
	while (($#)) && [[ $1 != -- ]]; do wants+=("$1"); shift; done
	shift
	if ! text=$(helm template sidekey "$notes_chart" --namespace "$NS" --show-only templates/notes-check.yaml "$@" 2>&1); then
		echo "$text" >&2
		fail "$name: NOTES.txt does not render"
		return
	fi
	for want in "${wants[@]}"; do
		grep -qF -- "$want" <<<"$text" || fail "$name: NOTES.txt lacks: $want"
	done
	echo "ok $name: NOTES.txt has ${#wants[@]} expected lines"
}
status_cmds=("port-forward service/sidekey 8080:8080" "curl -s http://127.0.0.1:8080/_sidekey/status")
notes_have default "${status_cmds[@]}" "Proxy-Authorization: Bearer" "sidekey-client=true in namespace $NS" -- -f "$CHART/ci/default-values.yaml"
notes_have ha "${status_cmds[@]}" "Proxy-Authorization: Bearer" "(3-10 replicas, redis token store)" "{.data.admin-token}" -- -f "$CHART/ci/ha-values.yaml"
notes_have existing-secret "${status_cmds[@]}" "get secret sidekey-credentials" -- -f "$CHART/ci/existing-secret-values.yaml"
notes_have callers "${status_cmds[@]}" "Callers: billing-app, cron, reports." "https://sidekey.example.com/_sidekey/oauth/callback" -- -f "$CHART/ci/callers-values.yaml"
notes_have open "${status_cmds[@]}" "WARNING: config.allow_unauthenticated is true" -- --set config.allow_unauthenticated=true
notes_have apps "${status_cmds[@]}" "Callers: integrator, reports." "every tenant of the" "under an app (hippo, simple)" "http://sidekey.sidekey.svc:8080/_sidekey/oauth/connect/" -- -f "$CHART/ci/apps-values.yaml"
tls_status_cmds=("port-forward service/sidekey 8080:8443" "curl -sk https://127.0.0.1:8080/_sidekey/status")
notes_have tls-files "${tls_status_cmds[@]}" "HTTPS (files)" "https://sidekey.sidekey.svc:8443/" "https://sidekey.example.com/_sidekey/oauth/callback" -- -f "$CHART/ci/tls-files-values.yaml"
notes_have mtls "${tls_status_cmds[@]}" 'X-Sidekey-Key: $CALLER_KEY' "Callers with a key send it" "Callers with a cert_subject (billing) present a TLS client certificate" "issued by the CA in Secret sidekey-client-ca" "curl --cert caller.crt --key caller.key https://sidekey.sidekey.svc:8443/" "Callers: billing, nightly." -- -f "$CHART/ci/mtls-values.yaml"
notes_have tls-acme "HTTPS (acme)" "first ACME certificate for sidekey.example.com" "https://sidekey.example.com/_sidekey/oauth/callback" -- -f "$CHART/ci/tls-acme-values.yaml"

step "allow_unauthenticated: true renders only when set"
if render open --set config.allow_unauthenticated=true; then
	grep -q 'allow_unauthenticated: true' "$tmp/open.yaml" || fail "open: allow_unauthenticated not rendered"
	"$tmp/chartcheck" assert -scenario open "$tmp/open.yaml" || fail "open: rendered output (chartcheck)"
	check_config open "$tmp/open.yaml"
	rendered+=("$tmp/open.yaml")
else
	cat "$tmp/open.err" >&2
	fail "helm template --set config.allow_unauthenticated=true"
fi

step "config.tls.mode: off unquoted (YAML reads it as false) renders as \"off\""
if render tls-off-bool -f "$CHART/ci/default-values.yaml" --set config.tls.mode=false; then
	grep -q 'mode: "off"' "$tmp/tls-off-bool.yaml" || fail "tls-off-bool: tls.mode false not rendered as \"off\""
	"$tmp/chartcheck" assert -scenario default "$tmp/tls-off-bool.yaml" || fail "tls-off-bool: rendered output (chartcheck)"
	check_config tls-off-bool "$tmp/tls-off-bool.yaml"
else
	cat "$tmp/tls-off-bool.err" >&2
	fail "helm template --set config.tls.mode=false"
fi

step "kubeconform -strict (Kubernetes $KUBE_VERSION): rendered chart"
validate "${rendered[@]}" || fail "kubeconform: rendered chart"

step "examples/kubernetes: kubeconform, chartcheck, sidekey check"
validate examples/kubernetes/*.yaml || fail "kubeconform: examples/kubernetes"
"$tmp/chartcheck" assert -scenario sidecar examples/kubernetes/*.yaml || fail "examples/kubernetes (chartcheck)"
check_config sidecar examples/kubernetes/*.yaml

step "renders that must fail, with a message that says why"
# must_fail NAME WANT [helm args...]: the render fails and stderr holds WANT.
must_fail() {
	local name=$1 want=$2
	shift 2
	if render "$name" "$@"; then
		fail "$name: rendered, but must fail with: $want"
	elif ! grep -qF -- "$want" "$tmp/$name.err"; then
		cat "$tmp/$name.err" >&2
		fail "$name: failed without the message: $want"
	else
		echo "ok $name: $(grep -F -m1 -- "$want" "$tmp/$name.err" | sed 's/^[[:space:]]*//' | cut -c1-110)"
	fi
}
ci=$CHART/ci
must_fail replicas-file "replicaCount=3 needs config.storage.type=redis" -f "$ci/default-values.yaml" --set replicaCount=3
must_fail hpa-file "autoscaling.enabled=true needs config.storage.type=redis" -f "$ci/default-values.yaml" --set autoscaling.enabled=true
must_fail replicas-memory 'needs config.storage.type=redis (got "memory")' -f "$ci/callers-values.yaml" --set replicaCount=2
must_fail no-callers "refuses to start without callers"
must_fail legacy-memory "config.storage.type=memory cannot keep a generated one" -f "$ci/legacy-values.yaml" --set config.storage.type=memory --set legacy.localCA.existingSecret=
must_fail legacy-port-taken "legacy.tenantPorts.sf: port 8080 is already the main port" -f "$ci/legacy-values.yaml" --set legacy.tenantPorts.sf=8080
must_fail legacy-unknown-tenant 'legacy.tenantPorts.ghost: no tenant "ghost"' -f "$ci/legacy-values.yaml" --set legacy.tenantPorts.ghost=9002
must_fail legacy-tls-without-port "config.tenants.sf.tls=local needs legacy.tenantPorts.sf" -f "$ci/legacy-values.yaml" --set legacy.tenantPorts=null
must_fail caller-without-key 'caller "ops" needs config.callers.ops.key_sha256' -f "$ci/default-values.yaml" --set 'config.callers.ops.tenants={eu-simple}'
must_fail redis-without-key "needs a store key shared by every replica" -f "$ci/ha-values.yaml" --set secrets.storeKey=
must_fail redis-without-addr "needs exactly one of config.storage.redis.addr" -f "$ci/ha-values.yaml" --set config.storage.redis.addr=
must_fail redis-addr-and-sentinel "needs exactly one of config.storage.redis.addr" -f "$ci/sentinel-values.yaml" --set config.storage.redis.addr=redis:6379
must_fail secret-for-unknown-tenant 'config.tenants.ghost is not configured' -f "$ci/default-values.yaml" --set secrets.tenants.ghost.client_secret=x
# apps: secrets only for configured apps, tenants and callers name existing apps.
must_fail secret-for-unknown-app 'app secrets are set for "ghost", but config.apps.ghost is not configured' -f "$ci/apps-values.yaml" --set secrets.apps.ghost.client_secret=x
must_fail key-for-unknown-app 'app secrets are set for "ghost", but config.apps.ghost is not configured' -f "$ci/existing-secret-values.yaml" --set existingSecret.keys.apps.ghost.token=k
must_fail tenant-unknown-app 'config.tenants.eu-simple.app is "ghost", but config.apps.ghost is not configured' -f "$ci/apps-values.yaml" --set config.tenants.eu-simple.app=ghost
must_fail caller-unknown-app 'config.callers.billing-app.apps names "ghost", but config.apps.ghost is not configured' -f "$ci/default-values.yaml" --set 'config.callers.billing-app.apps={ghost}'
# tls: what the chart cannot serve fails with what to do instead.
must_fail tls-files-without-secret "config.tls.mode=files needs tls.existingSecret" -f "$ci/default-values.yaml" --set config.tls.mode=files
must_fail tls-secret-unused "tls.existingSecret is only used with config.tls.mode=files" -f "$ci/default-values.yaml" --set tls.existingSecret=sidekey-tls
# callers by client certificate: the CA needs tls, a cert_subject needs the CA and no key.
must_fail client-ca-tls-off "tls.clientCA.existingSecret needs config.tls.mode=files or acme" -f "$ci/default-values.yaml" --set tls.clientCA.existingSecret=sidekey-client-ca
must_fail cert-subject-without-ca "config.callers.billing.cert_subject needs tls.clientCA.existingSecret" -f "$ci/mtls-values.yaml" --set tls.clientCA.existingSecret=
must_fail cert-subject-and-key 'caller "billing" has config.callers.billing.cert_subject and a key in secrets.callerKeys.billing' -f "$ci/mtls-values.yaml" --set secrets.callerKeys.billing=ci-secret-billing
must_fail cert-subject-and-hash 'caller "billing" has both config.callers.billing.cert_subject and config.callers.billing.key_sha256' -f "$ci/mtls-values.yaml" --set config.callers.billing.key_sha256=184ea9f2af2786451a553bcf2ad84652ea3679462feb8a265bbe73533f683f00
must_fail acme-without-email "config.tls.mode=acme needs config.tls.email" -f "$ci/tls-acme-values.yaml" --set config.tls.email=
must_fail acme-without-domains "config.tls.mode=acme needs config.tls.domains" -f "$ci/tls-acme-values.yaml" --set-json 'config.tls.domains=[]'
must_fail acme-replicas-file-store "autoscaling.enabled=true needs config.storage.type=redis" -f "$ci/ha-values.yaml" -f "$ci/tls-acme-values.yaml" --set config.storage.type=file
must_fail acme-networkpolicy "the NetworkPolicy admits only labelled pods" -f "$ci/tls-acme-values.yaml" --set networkPolicy.extraFrom=null
must_fail acme-ca-root "not supported by the chart yet: config.tls.ca_root_file" -f "$ci/tls-acme-values.yaml" --set config.tls.ca_root_file=/etc/ca.pem
must_fail both-secret-sources "existingSecret.name is set" -f "$ci/existing-secret-values.yaml" --set secrets.adminToken=x
# values.schema.json: secrets never in the ConfigMap, chart-owned keys, enums.
must_fail secret-in-config "client_secret" -f "$ci/default-values.yaml" --set config.tenants.eu-simple.client_secret=plain
must_fail listen-in-config "listen" -f "$ci/default-values.yaml" --set config.listen=0.0.0.0:9000
must_fail unknown-config-key "tenant_spaces" -f "$ci/default-values.yaml" --set config.tenants.eu-simple.tenant_spaces=x
must_fail app-secret-in-config "additional properties 'client_secret' not allowed" -f "$ci/apps-values.yaml" --set config.apps.hippo.client_secret=plain
must_fail tenant-without-provider "'/config/tenants/bare': missing property 'provider'" -f "$ci/default-values.yaml" --set config.tenants.bare.client_id=x
must_fail app-without-provider "'/config/apps/bare': missing property 'provider'" -f "$ci/apps-values.yaml" --set config.apps.bare.client_id=x
must_fail rate-limit-burst "'/config/tenants/eu-simple/rate_limit/burst': minimum: got -1, want 0" -f "$ci/default-values.yaml" --set config.tenants.eu-simple.rate_limit.burst=-1
must_fail rate-limit-rps "'/config/apps/hippo/rate_limit/rps': minimum: got -1, want 0" -f "$ci/apps-values.yaml" --set config.apps.hippo.rate_limit.rps=-1
must_fail tls-cert-in-config "additional properties 'cert_file' not allowed" -f "$ci/tls-files-values.yaml" --set config.tls.cert_file=/etc/tls.crt
must_fail client-ca-in-config "additional properties 'client_ca_file' not allowed" -f "$ci/mtls-values.yaml" --set config.tls.client_ca_file=/etc/ca.pem
must_fail cert-subject-form "'/config/callers/billing/cert_subject': 'billing' does not match pattern" -f "$ci/mtls-values.yaml" --set config.callers.billing.cert_subject=billing
must_fail caller-key-header-form "'/config/caller_key_header': 'X Key' does not match pattern" -f "$ci/mtls-values.yaml" --set 'config.caller_key_header=X Key'
must_fail tls-mode-enum "'/config/tls/mode': value must be one of 'off', 'files', 'acme'" -f "$ci/default-values.yaml" --set config.tls.mode=on
must_fail store-key-form "'/secrets/storeKey': '0123' does not match pattern" -f "$ci/ha-values.yaml" --set-string secrets.storeKey=0123
must_fail storage-enum "'/config/storage/type': value must be one of 'file', 'memory', 'redis'" -f "$ci/default-values.yaml" --set config.storage.type=sqlite

step "the checks can fail"
cat >"$tmp/broken.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec:
      containers:
        - name: app
          image: busybox
          securityContxt: {runAsNonRoot: true}
EOF
if out=$(validate "$tmp/broken.yaml" 2>&1); then
	fail "kubeconform accepted an unknown field (securityContxt): the schemas are not strict"
elif ! grep -q "additional properties 'securityContxt' not allowed" <<<"$out"; then
	echo "$out" >&2
	fail "kubeconform rejected the broken manifest for another reason"
else
	echo "ok kubeconform rejects an unknown field"
fi
if render weakened -f "$ci/default-values.yaml" --set securityContext.readOnlyRootFilesystem=false; then
	if "$tmp/chartcheck" assert -scenario default "$tmp/weakened.yaml" >/dev/null 2>&1; then
		fail "chartcheck accepted readOnlyRootFilesystem: false"
	else
		echo "ok chartcheck rejects a writable root filesystem"
	fi
else
	fail "helm template with readOnlyRootFilesystem=false"
fi

if [[ -f $tmp/tls-files.yaml ]]; then
	sed 's/scheme: HTTPS/scheme: HTTP/' "$tmp/tls-files.yaml" >"$tmp/tls-http-probes.yaml"
	if "$tmp/chartcheck" assert -scenario tls-files "$tmp/tls-http-probes.yaml" >/dev/null 2>&1; then
		fail "chartcheck accepted HTTP probes of an HTTPS listener"
	else
		echo "ok chartcheck rejects HTTP probes of an HTTPS listener"
	fi
else
	fail "no tls-files render to weaken"
fi

if [[ -f $tmp/acme-ha.yaml ]]; then
	sed 's/type: redis/type: file/' "$tmp/acme-ha.yaml" >"$tmp/acme-ha-file.yaml"
	out=$("$tmp/chartcheck" assert -scenario acme-ha "$tmp/acme-ha-file.yaml" 2>&1 || true)
	if ! grep -q "without the redis store that shares the ACME state" <<<"$out"; then
		fail "chartcheck accepted acme over several replicas without the redis store"
	else
		echo "ok chartcheck rejects acme over several replicas without the redis store"
	fi
else
	fail "no acme-ha render to weaken"
fi

if [[ -f $tmp/mtls.yaml ]]; then
	sed 's|path: ca.crt|path: bundle.pem|' "$tmp/mtls.yaml" >"$tmp/mtls-no-ca.yaml"
	if "$tmp/chartcheck" assert -scenario mtls "$tmp/mtls-no-ca.yaml" >/dev/null 2>&1; then
		fail "chartcheck accepted a client CA volume without ca.crt"
	else
		echo "ok chartcheck rejects a client CA volume without the ca.crt that client_ca_file names"
	fi
else
	fail "no mtls render to weaken"
fi

step "done"
if ((${#failed[@]})); then
	echo "check-chart: ${#failed[@]} failure(s):" >&2
	printf '  - %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "check-chart: ok ($((SECONDS - started))s)"
