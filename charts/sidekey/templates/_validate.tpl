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
{{- if not ($cfg.storage.redis | default dict).addr }}
{{- fail "\n\nsidekey: config.storage.type=redis needs config.storage.redis.addr (host:port of the Redis service)." }}
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
{{- fail "\n\nsidekey: the chart runs sidekey on 0.0.0.0:8080, and off loopback sidekey refuses to start without callers.\nSet config.callers.NAME.tenants and, for each caller, config.callers.NAME.key_sha256 (sha256 hex of its key) or secrets.callerKeys.NAME;\nor, only if every pod that can reach the Service may use every tenant, config.allow_unauthenticated=true." }}
{{- end }}
{{- range $name, $caller := $cfg.callers }}
{{- $hasHash := and $caller (get $caller "key_sha256") }}
{{- $hasKey := hasKey $refs.callerKeys $name }}
{{- if and $hasHash $hasKey }}
{{- fail (printf "\n\nsidekey: caller %q has both config.callers.%s.key_sha256 and a key in secrets/existingSecret callerKeys: keep one." $name $name) }}
{{- end }}
{{- if not (or $hasHash $hasKey) }}
{{- fail (printf "\n\nsidekey: caller %q needs config.callers.%s.key_sha256 or secrets.callerKeys.%s (existingSecret.keys.callerKeys.%s)." $name $name $name $name) }}
{{- end }}
{{- end }}
{{- range $name, $_ := $refs.callerKeys }}
{{- if not (hasKey ($cfg.callers | default dict) $name) }}
{{- fail (printf "\n\nsidekey: callerKeys.%s names no caller: add config.callers.%s.tenants." $name $name) }}
{{- end }}
{{- end }}

{{- /* Tenant secrets must belong to a configured tenant. */}}
{{- $fields := include "sidekey.tenantSecretFields" . | splitList " " }}
{{- range $name, $secret := $refs.tenants }}
{{- if not (index ($cfg.tenants | default dict) $name) }}
{{- fail (printf "\n\nsidekey: tenant secrets are set for %q, but config.tenants.%s is not configured." $name $name) }}
{{- end }}
{{- range $field, $_ := $secret }}
{{- if not (has $field $fields) }}
{{- fail (printf "\n\nsidekey: tenant secret field %q of %q is unknown; use one of %s." $field $name (join ", " $fields)) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* One source of secrets: values or an existing Secret, never both. */}}
{{- if and .Values.existingSecret.name (ne (include "sidekey.secretData" .) "{}") }}
{{- fail "\n\nsidekey: existingSecret.name is set, so the chart creates no Secret; move the values under secrets.* into that Secret and name their keys in existingSecret.keys." }}
{{- end }}
{{- end }}
