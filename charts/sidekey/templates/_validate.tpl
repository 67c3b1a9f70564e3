{{/*
sidekey.validate fails the render, with a message naming the values to
change, for every combination sidekey would refuse or that would silently
misbehave in a cluster. It prints nothing.
*/}}
{{- define "sidekey.validate" -}}
{{- $cfg := .Values.config }}
{{- $type := ($cfg.storage | default dict).type | default "file" }}
{{- $refs := include "sidekey.secretRefs" . | fromYaml }}

{{- /* Several replicas must share one token store and one refresh lock. */}}
{{- $scaled := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled }}
{{- if and $scaled (ne $type "redis") }}
{{- $what := ternary "autoscaling.enabled=true" (printf "replicaCount=%d" (int .Values.replicaCount)) (.Values.autoscaling.enabled | default false) }}
{{- fail (printf "\n\nsidekey: %s needs config.storage.type=redis (got %q).\nWith file or memory storage every replica keeps its own tokens and refresh lock, so a rotated refresh token used by one replica breaks the others.\nSet config.storage.type=redis and config.storage.redis.addr, or replicaCount=1 without autoscaling." $what $type) }}
{{- end }}
{{- if eq $type "redis" }}
{{- $redis := $cfg.storage.redis | default dict }}
{{- $modes := 0 }}
{{- range $m := list "addr" "sentinel" "cluster" }}{{ if index $redis $m }}{{ $modes = add1 $modes }}{{ end }}{{ end }}
{{- if ne (int $modes) 1 }}
{{- fail "\n\nsidekey: config.storage.type=redis needs exactly one of config.storage.redis.addr (host:port of the Redis service), config.storage.redis.sentinel {master, addrs} and config.storage.redis.cluster {addrs}." }}
{{- end }}
{{- if not $refs.storeKey }}
{{- fail "\n\nsidekey: config.storage.type=redis needs a store key shared by every replica: set secrets.storeKey (or existingSecret.keys.storeKey)." }}
{{- end }}
{{- end }}
{{- if and .Values.fileStore.existingClaim (ne $type "file") }}
{{- fail (printf "\n\nsidekey: fileStore.existingClaim is only used with config.storage.type=file (got %q)." $type) }}
{{- end }}

{{- /* sidekey listens on 0.0.0.0:8080 here: callers must authenticate. */}}
{{- if and (not $cfg.callers) (not $cfg.allow_unauthenticated) }}
{{- fail "\n\nsidekey: the chart runs sidekey on 0.0.0.0:8080, and off loopback sidekey refuses to start without callers.\nSet config.callers.NAME.tenants and, for each caller, config.callers.NAME.key_sha256 (sha256 hex of its key), secrets.callerKeys.NAME,\nor config.callers.NAME.cert_subject (its client certificate's subject, with tls.clientCA);\nor, only if every pod that can reach the Service may use every tenant, config.allow_unauthenticated=true." }}
{{- end }}
{{- $clientCA := include "sidekey.clientCASecret" . }}
{{- range $name, $caller := $cfg.callers }}
{{- $hasHash := and $caller (get $caller "key_sha256") }}
{{- $hasKey := hasKey $refs.callerKeys $name }}
{{- $hasSubject := and $caller (get $caller "cert_subject") }}
{{- if and $hasHash $hasKey }}
{{- fail (printf "\n\nsidekey: caller %q has both config.callers.%s.key_sha256 and a key in secrets/existingSecret callerKeys: keep one." $name $name) }}
{{- end }}
{{- if and $hasSubject $hasKey }}
{{- fail (printf "\n\nsidekey: caller %q has config.callers.%s.cert_subject and a key in secrets.callerKeys.%s (existingSecret.keys.callerKeys.%s):\na caller presents either a client certificate or a key. Remove the key, or the cert_subject." $name $name $name $name) }}
{{- end }}
{{- if and $hasSubject $hasHash }}
{{- fail (printf "\n\nsidekey: caller %q has both config.callers.%s.cert_subject and config.callers.%s.key_sha256:\na caller presents either a client certificate or a key. Keep one." $name $name $name) }}
{{- end }}
{{- if and $hasSubject (not $clientCA) }}
{{- fail (printf "\n\nsidekey: config.callers.%s.cert_subject needs tls.clientCA.existingSecret: a Secret holding the PEM CA bundle\n(key tls.clientCA.key, default ca.crt) that issues callers' client certificates. The chart mounts it and sets config.tls.client_ca_file." $name) }}
{{- end }}
{{- if not (or $hasHash $hasKey $hasSubject) }}
{{- fail (printf "\n\nsidekey: caller %q needs config.callers.%s.key_sha256 or secrets.callerKeys.%s (existingSecret.keys.callerKeys.%s),\nor config.callers.%s.cert_subject (its client certificate's subject, with tls.clientCA)." $name $name $name $name $name) }}
{{- end }}
{{- range $section := list "tenants" "apps" }}
{{- range (get ($caller | default dict) $section | default list) }}
{{- if not (hasKey ((index $cfg $section) | default dict) .) }}
{{- fail (printf "\n\nsidekey: config.callers.%s.%s names %q, but config.%s.%s is not configured." $name $section . $section .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $_ := $refs.callerKeys }}
{{- if not (hasKey ($cfg.callers | default dict) $name) }}
{{- fail (printf "\n\nsidekey: callerKeys.%s names no caller: add config.callers.%s.tenants." $name $name) }}
{{- end }}
{{- end }}

{{- /* Tenant and app secrets must belong to a configured tenant or app. */}}
{{- $fields := include "sidekey.tenantSecretFields" . | splitList " " }}
{{- range $section, $prefix := include "sidekey.secretSections" . | fromYaml }}
{{- range $name, $secret := index $refs $section }}
{{- if not (index ((index $cfg $section) | default dict) $name) }}
{{- fail (printf "\n\nsidekey: %s secrets are set for %q, but config.%s.%s is not configured." $prefix $name $section $name) }}
{{- end }}
{{- range $field, $_ := $secret }}
{{- if not (has $field $fields) }}
{{- fail (printf "\n\nsidekey: %s secret field %q of %q is unknown; use one of %s." $prefix $field $name (join ", " $fields)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- /* A tenant's app must exist (sidekey refuses to start otherwise). */}}
{{- range $name, $tenant := $cfg.tenants }}
{{- with ($tenant | default dict).app }}
{{- if not (index ($cfg.apps | default dict) .) }}
{{- fail (printf "\n\nsidekey: config.tenants.%s.app is %q, but config.apps.%s is not configured." $name . .) }}
{{- end }}
{{- end }}
{{- end }}

{{- include "sidekey.validateTLS" . }}

{{- /* One source of secrets: values or an existing Secret, never both. */}}
{{- if and .Values.existingSecret.name (ne (include "sidekey.secretData" .) "{}") }}
{{- fail "\n\nsidekey: existingSecret.name is set, so the chart creates no Secret; move the values under secrets.* into that Secret and name their keys in existingSecret.keys." }}
{{- end }}
{{- end }}

{{/*
sidekey.validateTLS fails the render for config.tls settings the chart
cannot serve. It prints nothing.
*/}}
{{- define "sidekey.validateTLS" -}}
{{- $mode := include "sidekey.tlsMode" . }}
{{- $tls := .Values.config.tls | default dict }}
{{- if not (has $mode (list "off" "files" "acme")) }}
{{- fail (printf "\n\nsidekey: config.tls.mode is %q; use \"off\", files or acme." $mode) }}
{{- end }}
{{- if $tls.ca_root_file }}
{{- fail "\n\nsidekey: not supported by the chart yet: config.tls.ca_root_file (mounting a private ACME CA's roots).\nUse an ACME CA the system roots trust, or tls.mode=files with a certificate issued by your CA (e.g. cert-manager) in tls.existingSecret." }}
{{- end }}
{{- if and .Values.tls.existingSecret (ne $mode "files") }}
{{- fail (printf "\n\nsidekey: tls.existingSecret is only used with config.tls.mode=files (got %q)." $mode) }}
{{- end }}
{{- if and (include "sidekey.clientCASecret" .) (eq $mode "off") }}
{{- fail "\n\nsidekey: tls.clientCA.existingSecret needs config.tls.mode=files or acme: client certificates are asked for in the TLS handshake, and with tls off there is none.\nTurn tls on (files with tls.existingSecret, or acme), or leave tls.clientCA.existingSecret empty and give callers keys." }}
{{- end }}
{{- if and (eq $mode "files") (not .Values.tls.existingSecret) }}
{{- fail "\n\nsidekey: config.tls.mode=files needs tls.existingSecret: a kubernetes.io/tls Secret (tls.crt, tls.key), e.g. one cert-manager keeps renewed.\nThe chart mounts it at /run/secrets/sidekey-tls; sidekey picks up renewed files by itself." }}
{{- end }}
{{- if eq $mode "acme" }}
{{- if not $tls.domains }}
{{- fail "\n\nsidekey: config.tls.mode=acme needs config.tls.domains: the names to obtain certificates for." }}
{{- end }}
{{- if not $tls.email }}
{{- fail "\n\nsidekey: config.tls.mode=acme needs config.tls.email: the ACME account's contact, which the CA requires." }}
{{- end }}
{{- /* Several replicas need storage.type=redis (checked above); sidekey then keeps the
     ACME account, certificates and challenges in Redis, shared by every replica. */}}
{{- if and .Values.networkPolicy.enabled (not .Values.networkPolicy.extraFrom) }}
{{- fail "\n\nsidekey: config.tls.mode=acme: the ACME CA must reach sidekey (TLS-ALPN-01 on port 443, HTTP-01 on port 80 of each domain), but the NetworkPolicy admits only labelled pods.\nAdd the CA's way in to networkPolicy.extraFrom (e.g. - ipBlock: {cidr: 0.0.0.0/0} behind a LoadBalancer), or set networkPolicy.enabled=false." }}
{{- end }}
{{- end }}
{{- end }}

{{/*
sidekey.validateLegacy fails the render for legacy.* settings (tenant
listeners, the forward proxy, the local CA) sidekey would refuse or a
cluster could not serve. It prints nothing.
*/}}
{{- define "sidekey.validateLegacy" -}}
{{- $cfg := .Values.config }}
{{- $type := ($cfg.storage | default dict).type | default "file" }}
{{- $ports := dict "8080" "the main port" }}
{{- if eq (include "sidekey.tlsMode" .) "acme" }}
{{- $_ := set $ports (include "sidekey.acmeHTTPPort" .) "the ACME HTTP-01 port" }}
{{- end }}
{{- $names := dict }}
{{- range $tenant, $port := .Values.legacy.tenantPorts }}
{{- if not (hasKey ($cfg.tenants | default dict) $tenant) }}
{{- fail (printf "\n\nsidekey: legacy.tenantPorts.%s: no tenant %q in config.tenants." $tenant $tenant) }}
{{- end }}
{{- with get $ports (toString $port) }}
{{- fail (printf "\n\nsidekey: legacy.tenantPorts.%s: port %v is already %s." $tenant $port .) }}
{{- end }}
{{- $_ := set $ports (toString $port) (printf "legacy.tenantPorts.%s" $tenant) }}
{{- $name := include "sidekey.tenantPortName" $tenant }}
{{- with get $names $name }}
{{- fail (printf "\n\nsidekey: legacy.tenantPorts: tenants %s and %s would both get the port name %s (the first 13 characters): rename one." . $tenant $name) }}
{{- end }}
{{- $_ := set $names $name $tenant }}
{{- end }}
{{- with .Values.legacy.forwardProxyPort }}
{{- with get $ports (toString .) }}
{{- fail (printf "\n\nsidekey: legacy.forwardProxyPort: the port is already %s." .) }}
{{- end }}
{{- end }}
{{- $needsCA := .Values.legacy.forwardProxyPort }}
{{- range $tenant, $t := $cfg.tenants }}
{{- if and $t (eq (toString (get $t "tls")) "local") }}
{{- $needsCA = true }}
{{- if not (hasKey ($.Values.legacy.tenantPorts | default dict) $tenant) }}
{{- fail (printf "\n\nsidekey: config.tenants.%s.tls=local needs legacy.tenantPorts.%s, the port of the listener it secures." $tenant $tenant) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $needsCA (eq $type "memory") (not .Values.legacy.localCA.existingSecret) }}
{{- fail "\n\nsidekey: tls: local and the forward proxy need a local CA that apps can trust, and config.storage.type=memory cannot keep a generated one.\nSet legacy.localCA.existingSecret (a kubernetes.io/tls Secret with the CA), or use storage type file or redis." }}
{{- end }}
{{- end }}
