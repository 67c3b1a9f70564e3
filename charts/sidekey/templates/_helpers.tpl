{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "sidekey.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, unless the release name already holds the chart name. */}}
{{- define "sidekey.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sidekey.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sidekey.labels" -}}
helm.sh/chart: {{ include "sidekey.chart" . }}
{{ include "sidekey.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sidekey.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sidekey.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sidekey.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sidekey.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sidekey.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The client pod labels as "k=v, k=v", for NOTES.txt. */}}
{{- define "sidekey.clientLabels" -}}
{{- $pairs := list }}
{{- range $k, $v := .Values.networkPolicy.clientPodLabels }}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) }}
{{- end }}
{{- join ", " $pairs }}
{{- end }}

{{/* Where the Secret is mounted; every *_file key points below it. */}}
{{- define "sidekey.secretDir" -}}/run/secrets/sidekey{{- end }}

{{/* Where sidekey.yaml is mounted. */}}
{{- define "sidekey.configDir" -}}/etc/sidekey{{- end }}

{{- define "sidekey.secretName" -}}
{{- .Values.existingSecret.name | default (include "sidekey.fullname" .) }}
{{- end }}

{{/* config.tls.mode as off, files or acme (unquoted YAML `off` reads as false). */}}
{{- define "sidekey.tlsMode" -}}
{{- $mode := (.Values.config.tls | default dict).mode }}
{{- if $mode }}{{ $mode }}{{ else }}off{{ end }}
{{- end }}

{{/* The listener's scheme, which also names its ports: http, or https with tls. */}}
{{- define "sidekey.scheme" -}}
{{- if eq (include "sidekey.tlsMode" .) "off" }}http{{ else }}https{{ end }}
{{- end }}

{{/* Where tls.existingSecret (tls.crt, tls.key) is mounted for tls.mode files. */}}
{{- define "sidekey.tlsDir" -}}/run/secrets/sidekey-tls{{- end }}

{{/*
Where tls.clientCA.existingSecret is mounted: its key (tls.clientCA.key) appears
there as ca.crt, which config.tls.client_ca_file names.
*/}}
{{- define "sidekey.clientCADir" -}}/run/secrets/sidekey-client-ca{{- end }}

{{/* The Secret holding the CA of callers' client certificates, or "". */}}
{{- define "sidekey.clientCASecret" -}}
{{- ((.Values.tls | default dict).clientCA | default dict).existingSecret }}
{{- end }}

{{/* The key of that Secret holding the CA bundle. */}}
{{- define "sidekey.clientCAKey" -}}
{{- ((.Values.tls | default dict).clientCA | default dict).key | default "ca.crt" }}
{{- end }}

{{/* The container port answering ACME HTTP-01 challenges (the Service's port 80). */}}
{{- define "sidekey.acmeHTTPPort" -}}8081{{- end }}

{{/*
The default public_url: the Service's address, or with tls.mode acme the
first domain (its certificate is validated on port 443 of that name).
*/}}
{{- define "sidekey.publicURL" -}}
{{- $url := printf "%s://%s.%s.svc:%d" (include "sidekey.scheme" .) (include "sidekey.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- if eq (include "sidekey.tlsMode" .) "acme" }}
{{- with (.Values.config.tls.domains | default list) }}{{ $url = printf "https://%s" (first .) }}{{ end }}
{{- end }}
{{- .Values.config.public_url | default $url | trimSuffix "/" }}
{{- end }}

{{/* The secret fields a tenant or an app may read from a file. */}}
{{- define "sidekey.tenantSecretFields" -}}client_secret refresh_token token shop_secret{{- end }}

{{/* The config sections whose blocks have secret fields, and each one's key prefix in the chart's Secret. */}}
{{- define "sidekey.secretSections" -}}
tenants: tenant
apps: app
{{- end }}

{{/*
sidekey.secretRefs: the secret files, as YAML
  {storeKey: KEY, redisPassword: KEY, redisSentinelPassword: KEY, adminToken: KEY,
   tenants: {NAME: {FIELD: KEY}}, apps: {NAME: {FIELD: KEY}}, callerKeys: {NAME: KEY}}
where KEY is the key in the mounted Secret (and so the file name). With
existingSecret the keys are the user's; otherwise the chart names them and
secretData holds the values.
*/}}
{{- define "sidekey.secretRefs" -}}
{{- $refs := dict "tenants" dict "apps" dict "callerKeys" dict }}
{{- $sections := include "sidekey.secretSections" . | fromYaml }}
{{- if .Values.existingSecret.name }}
{{- $k := .Values.existingSecret.keys }}
{{- range $f := list "storeKey" "redisPassword" "redisSentinelPassword" "adminToken" }}
{{- with index $k $f }}{{ $_ := set $refs $f . }}{{ end }}
{{- end }}
{{- range $section, $prefix := $sections }}
{{- range $block, $fields := index $k $section }}
{{- range $field, $key := $fields }}
{{- if $key }}
{{- $b := get (index $refs $section) $block | default dict }}
{{- $_ := set $b $field $key }}
{{- $_ := set (index $refs $section) $block $b }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $caller, $key := $k.callerKeys }}
{{- if $key }}{{ $_ := set $refs.callerKeys $caller $key }}{{ end }}
{{- end }}
{{- else }}
{{- $s := .Values.secrets }}
{{- if $s.storeKey }}{{ $_ := set $refs "storeKey" "store-key" }}{{ end }}
{{- if $s.redisPassword }}{{ $_ := set $refs "redisPassword" "redis-password" }}{{ end }}
{{- if $s.redisSentinelPassword }}{{ $_ := set $refs "redisSentinelPassword" "redis-sentinel-password" }}{{ end }}
{{- if $s.adminToken }}{{ $_ := set $refs "adminToken" "admin-token" }}{{ end }}
{{- range $section, $prefix := $sections }}
{{- range $block, $fields := index $s $section }}
{{- range $field, $value := $fields }}
{{- if $value }}
{{- $b := get (index $refs $section) $block | default dict }}
{{- $_ := set $b $field (printf "%s.%s.%s" $prefix $block $field) }}
{{- $_ := set (index $refs $section) $block $b }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $caller, $value := $s.callerKeys }}
{{- if $value }}{{ $_ := set $refs.callerKeys $caller (printf "caller.%s.key" $caller) }}{{ end }}
{{- end }}
{{- end }}
{{- toYaml $refs }}
{{- end }}

{{/* sidekey.secretData: the chart-made Secret's stringData, keyed as secretRefs names them. */}}
{{- define "sidekey.secretData" -}}
{{- $s := .Values.secrets }}
{{- $data := dict }}
{{- if $s.storeKey }}{{ $_ := set $data "store-key" $s.storeKey }}{{ end }}
{{- if $s.redisPassword }}{{ $_ := set $data "redis-password" $s.redisPassword }}{{ end }}
{{- if $s.redisSentinelPassword }}{{ $_ := set $data "redis-sentinel-password" $s.redisSentinelPassword }}{{ end }}
{{- if $s.adminToken }}{{ $_ := set $data "admin-token" $s.adminToken }}{{ end }}
{{- range $section, $prefix := include "sidekey.secretSections" . | fromYaml }}
{{- range $block, $fields := index $s $section }}
{{- range $field, $value := $fields }}
{{- if $value }}{{ $_ := set $data (printf "%s.%s.%s" $prefix $block $field) $value }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $caller, $value := $s.callerKeys }}
{{- if $value }}{{ $_ := set $data (printf "caller.%s.key" $caller) $value }}{{ end }}
{{- end }}
{{- toYaml $data }}
{{- end }}

{{/* sidekey.hasSecret: "true" when a Secret (made or existing) is mounted. */}}
{{- define "sidekey.hasSecret" -}}
{{- if or .Values.existingSecret.name (ne (include "sidekey.secretData" .) "{}") }}true{{ end }}
{{- end }}

{{/* sidekey.config: the sidekey.yaml the ConfigMap holds. */}}
{{- define "sidekey.config" -}}
{{- include "sidekey.validate" . }}
{{- include "sidekey.validateLegacy" . }}
{{- $cfg := deepCopy .Values.config }}
{{- $dir := include "sidekey.secretDir" . }}
{{- $refs := include "sidekey.secretRefs" . | fromYaml }}
{{- $_ := set $cfg "listen" "0.0.0.0:8080" }}
{{- $_ := set $cfg "public_url" (include "sidekey.publicURL" .) }}
{{- $mode := include "sidekey.tlsMode" . }}
{{- $tls := $cfg.tls | default dict }}
{{- $_ := set $tls "mode" $mode }}
{{- if eq $mode "files" }}
{{- $_ := set $tls "cert_file" (printf "%s/tls.crt" (include "sidekey.tlsDir" .)) }}
{{- $_ := set $tls "key_file" (printf "%s/tls.key" (include "sidekey.tlsDir" .)) }}
{{- else if eq $mode "acme" }}
{{- $_ := set $tls "http_challenge_port" (include "sidekey.acmeHTTPPort" . | int) }}
{{- end }}
{{- if include "sidekey.clientCASecret" . }}
{{- $_ := set $tls "client_ca_file" (printf "%s/ca.crt" (include "sidekey.clientCADir" .)) }}
{{- end }}
{{- $_ := set $cfg "tls" $tls }}
{{- $storage := $cfg.storage | default dict }}
{{- $_ := set $storage "type" ($storage.type | default "file") }}
{{- if or (eq $storage.type "file") (eq $mode "acme") }}
{{- /* The file store, and certmagic's {storage.path}/acme. */}}
{{- $_ := set $storage "path" "/data" }}
{{- end }}
{{- if ne $storage.type "redis" }}
{{- $_ := unset $storage "redis" }}
{{- end }}
{{- with $refs.storeKey }}
{{- $_ := set $storage "key_file" (printf "%s/%s" $dir .) }}
{{- end }}
{{- with $refs.redisPassword }}
{{- $redis := $storage.redis | default dict }}
{{- $_ := set $redis "password_file" (printf "%s/%s" $dir .) }}
{{- $_ := set $storage "redis" $redis }}
{{- end }}
{{- with $refs.redisSentinelPassword }}
{{- with ($storage.redis | default dict).sentinel }}
{{- $_ := set . "password_file" (printf "%s/%s" $dir $refs.redisSentinelPassword) }}
{{- end }}
{{- end }}
{{- $_ := set $cfg "storage" $storage }}
{{- with $refs.adminToken }}
{{- $_ := set $cfg "admin_token_file" (printf "%s/%s" $dir .) }}
{{- end }}
{{- range $section, $prefix := include "sidekey.secretSections" . | fromYaml }}
{{- range $block, $fields := index $refs $section }}
{{- $b := index (index $cfg $section) $block }}
{{- range $field, $key := $fields }}
{{- $_ := set $b (printf "%s_file" $field) (printf "%s/%s" $dir $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $caller, $key := $refs.callerKeys }}
{{- $_ := set (index $cfg.callers $caller) "key_file" (printf "%s/%s" $dir $key) }}
{{- end }}
{{- if not $cfg.callers }}
{{- $_ := unset $cfg "callers" }}
{{- end }}
{{- if not $cfg.allow_unauthenticated }}
{{- $_ := unset $cfg "allow_unauthenticated" }}
{{- end }}
{{- if not $cfg.caller_key_header }}
{{- $_ := unset $cfg "caller_key_header" }}
{{- end }}
{{- if not $cfg.apps }}
{{- $_ := unset $cfg "apps" }}
{{- end }}
{{- range $tenant, $port := .Values.legacy.tenantPorts }}
{{- $_ := set (index $cfg.tenants $tenant) "listen" (printf "0.0.0.0:%d" (int $port)) }}
{{- end }}
{{- with .Values.legacy.forwardProxyPort }}
{{- $_ := set $cfg "forward_proxy" (dict "listen" (printf "0.0.0.0:%d" (int .))) }}
{{- end }}
{{- if .Values.legacy.localCA.existingSecret }}
{{- $dir := include "sidekey.localCADir" . }}
{{- $_ := set $cfg "local_ca" (dict "cert_file" (printf "%s/tls.crt" $dir) "key_file" (printf "%s/tls.key" $dir)) }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Where the local CA Secret (legacy.localCA.existingSecret) is mounted. */}}
{{- define "sidekey.localCADir" -}}/run/secrets/sidekey-local-ca{{- end }}

{{/* The port name of tenant T's own listener: t-<first 13 characters>. */}}
{{- define "sidekey.tenantPortName" -}}{{ printf "t-%s" (. | trunc 13 | trimSuffix "-" | trimSuffix "." | replace "." "-" | replace "_" "-") }}{{- end }}

{{/* Container or Service ports of the tenant listeners and the forward proxy. */}}
{{- define "sidekey.legacyPorts" -}}
{{- $service := .service }}
{{- range $tenant, $port := .Values.legacy.tenantPorts }}
- name: {{ include "sidekey.tenantPortName" $tenant }}
  {{- if $service }}
  port: {{ $port }}
  targetPort: {{ include "sidekey.tenantPortName" $tenant }}
  {{- else }}
  containerPort: {{ $port }}
  {{- end }}
  protocol: TCP
{{- end }}
{{- with .Values.legacy.forwardProxyPort }}
- name: proxy
  {{- if $service }}
  port: {{ . }}
  targetPort: proxy
  {{- else }}
  containerPort: {{ . }}
  {{- end }}
  protocol: TCP
{{- end }}
{{- end }}
