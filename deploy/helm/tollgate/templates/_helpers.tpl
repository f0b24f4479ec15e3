{{/*
Name of the chart, or nameOverride.
*/}}
{{- define "tollgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources: fullnameOverride, else release name and
chart name (once, when the release name already contains it).
*/}}
{{- define "tollgate.fullname" -}}
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

{{- define "tollgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "tollgate.labels" -}}
helm.sh/chart: {{ include "tollgate.chart" . }}
{{ include "tollgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels selecting the server's pods.
*/}}
{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tollgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/*
Labels of the migration Job and its pod: the release's, with their own
component, so the server's selector never matches them.
*/}}
{{- define "tollgate.migrateLabels" -}}
helm.sh/chart: {{ include "tollgate.chart" . }}
app.kubernetes.io/name: {{ include "tollgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: migrate
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Name of the ServiceAccount of the server.
*/}}
{{- define "tollgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tollgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest, else repository:tag (appVersion by
default).
*/}}
{{- define "tollgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Checks every value the server cannot run without, so that a missing one fails
the render (helm install, upgrade, template) naming the value instead of
leaving pods crash-looping on "token secret: required".
*/}}
{{- define "tollgate.validate" -}}
{{- $_ := required "issuer is required: the public URL of the server, e.g. --set issuer=https://auth.example.com" .Values.issuer }}
{{- $_ := required "keys.tokenSecret.existingSecret is required: the name of an existing Secret holding the token secret (outside the embedded default Tollgate never generates keys)" .Values.keys.tokenSecret.existingSecret }}
{{- $_ := required "keys.pepper.existingSecret is required: the name of an existing Secret holding the pepper (outside the embedded default Tollgate never generates keys)" .Values.keys.pepper.existingSecret }}
{{- $_ := required "database.existingSecret is required: the name of an existing Secret holding the PostgreSQL URL" .Values.database.existingSecret }}
{{- if not (index .Values.config "TOLLGATE_REDIS_ADDRS") }}
{{- $_ := required "redis.existingSecret is required: the name of an existing Secret holding the Redis URL (or TOLLGATE_REDIS_ADDRS in config, for Sentinel or Cluster)" .Values.redis.existingSecret }}
{{- else if .Values.redis.existingSecret }}
{{- fail "redis.existingSecret and config.TOLLGATE_REDIS_ADDRS exclude each other: one Redis URL, or the addresses of Sentinels or Cluster nodes" }}
{{- end }}
{{- $_ := required "keys.keyEncryptionKey.existingSecret is required: the name of an existing Secret holding the key-encryption key (outside the embedded default Tollgate never generates keys)" .Values.keys.keyEncryptionKey.existingSecret }}
{{- if not (regexMatch "^[a-z0-9]{1,8}$" (toString .Values.keys.pepper.id)) }}
{{- fail (printf "keys.pepper.id must be 1 to 8 characters a-z or 0-9, got %q" (toString .Values.keys.pepper.id)) }}
{{- end }}
{{- range .Values.keys.rotatedTokenSecrets }}
{{- $_ := required "keys.rotatedTokenSecrets: every entry needs existingSecret" .existingSecret }}
{{- $_ := required "keys.rotatedTokenSecrets: every entry needs key" .key }}
{{- end }}
{{- range .Values.keys.retiredPeppers }}
{{- $_ := required "keys.retiredPeppers: every entry needs existingSecret" .existingSecret }}
{{- $_ := required "keys.retiredPeppers: every entry needs key" .key }}
{{- if not (regexMatch "^[a-z0-9]{1,8}$" (toString .id)) }}
{{- fail (printf "keys.retiredPeppers: id must be 1 to 8 characters a-z or 0-9, got %q" (toString .id)) }}
{{- end }}
{{- if eq (toString .id) (toString $.Values.keys.pepper.id) }}
{{- fail (printf "keys.retiredPeppers: id %q is the current keys.pepper.id; a new pepper needs a new id" (toString .id)) }}
{{- end }}
{{- end }}
{{- range $name, $_ := .Values.config }}
{{- if not (hasPrefix "TOLLGATE_" $name) }}
{{- fail (printf "config: %s is not a TOLLGATE_ variable; use extraEnv for other variables" $name) }}
{{- end }}
{{- if has $name (list "TOLLGATE_HTTP_ADDR" "TOLLGATE_OPS_ADDR" "TOLLGATE_ISSUER" "TOLLGATE_DATABASE_URL" "TOLLGATE_REDIS_URL" "TOLLGATE_TOKEN_SECRET" "TOLLGATE_TOKEN_SECRET_FILE" "TOLLGATE_ROTATED_TOKEN_SECRET_FILES" "TOLLGATE_PEPPER" "TOLLGATE_PEPPER_FILE" "TOLLGATE_PEPPER_ID" "TOLLGATE_RETIRED_PEPPER_FILES" "TOLLGATE_KEY_ENCRYPTION_KEY" "TOLLGATE_KEY_ENCRYPTION_KEY_FILE" "TOLLGATE_HTTP_SHUTDOWN_DELAY" "TOLLGATE_HTTP_SHUTDOWN_TIMEOUT") }}
{{- fail (printf "config: %s is set by the chart from its own values (see values.yaml)" $name) }}
{{- end }}
{{- end }}
{{- if not (has .Values.probes.readiness.path (list "/readyz" "/healthz")) }}
{{- fail (printf "probes.readiness.path must be /readyz or /healthz, got %q" .Values.probes.readiness.path) }}
{{- end }}
{{- if le (int .Values.terminationGracePeriodSeconds) (add (int .Values.shutdownDelaySeconds) (int .Values.shutdownTimeoutSeconds)) }}
{{- fail "terminationGracePeriodSeconds must exceed shutdownDelaySeconds + shutdownTimeoutSeconds, or Kubernetes kills pods still draining" }}
{{- end }}
{{- end }}

{{/*
Directory of the mounted key files.
*/}}
{{- define "tollgate.keysDir" -}}/run/secrets/tollgate{{- end }}

{{/*
Environment of the server and the migration Job: listeners, issuer,
database and Redis URLs (from their Secrets), key files, config, extraEnv.
*/}}
{{- define "tollgate.env" -}}
- name: TOLLGATE_HTTP_ADDR
  value: "0.0.0.0:8080"
- name: TOLLGATE_OPS_ADDR
  value: "0.0.0.0:9090"
- name: TOLLGATE_ISSUER
  value: {{ .Values.issuer | quote }}
- name: TOLLGATE_HTTP_SHUTDOWN_DELAY
  value: {{ printf "%ds" (int .Values.shutdownDelaySeconds) | quote }}
- name: TOLLGATE_HTTP_SHUTDOWN_TIMEOUT
  value: {{ printf "%ds" (int .Values.shutdownTimeoutSeconds) | quote }}
- name: TOLLGATE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret | quote }}
      key: {{ .Values.database.key | quote }}
{{- if .Values.redis.existingSecret }}
- name: TOLLGATE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret | quote }}
      key: {{ .Values.redis.key | quote }}
{{- end }}
- name: TOLLGATE_TOKEN_SECRET_FILE
  value: {{ include "tollgate.keysDir" . }}/token-secret/{{ .Values.keys.tokenSecret.key }}
{{- with .Values.keys.rotatedTokenSecrets }}
- name: TOLLGATE_ROTATED_TOKEN_SECRET_FILES
  value: {{ $files := list }}{{ range $i, $s := . }}{{ $files = append $files (printf "%s/rotated-token-secret-%d/%s" (include "tollgate.keysDir" $) $i $s.key) }}{{ end }}{{ join "," $files | quote }}
{{- end }}
- name: TOLLGATE_PEPPER_ID
  value: {{ .Values.keys.pepper.id | toString | quote }}
- name: TOLLGATE_PEPPER_FILE
  value: {{ include "tollgate.keysDir" . }}/pepper/{{ .Values.keys.pepper.key }}
{{- with .Values.keys.retiredPeppers }}
- name: TOLLGATE_RETIRED_PEPPER_FILES
  value: {{ $files := list }}{{ range $i, $p := . }}{{ $files = append $files (printf "%s=%s/retired-pepper-%d/%s" (toString $p.id) (include "tollgate.keysDir" $) $i $p.key) }}{{ end }}{{ join "," $files | quote }}
{{- end }}
- name: TOLLGATE_KEY_ENCRYPTION_KEY_FILE
  value: {{ include "tollgate.keysDir" . }}/key-encryption-key/{{ .Values.keys.keyEncryptionKey.key }}
{{- range $name, $value := .Values.config }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Volumes of the key files, one per Secret reference (files mode 0440, group
fsGroup, so the nonroot user reads them), and /tmp.
*/}}
{{- define "tollgate.volumes" -}}
- name: tmp
  emptyDir: {}
- name: token-secret
  secret:
    secretName: {{ .Values.keys.tokenSecret.existingSecret | quote }}
    defaultMode: 0440
    items:
      - key: {{ .Values.keys.tokenSecret.key | quote }}
        path: {{ .Values.keys.tokenSecret.key | quote }}
{{- range $i, $s := .Values.keys.rotatedTokenSecrets }}
- name: rotated-token-secret-{{ $i }}
  secret:
    secretName: {{ $s.existingSecret | quote }}
    defaultMode: 0440
    items:
      - key: {{ $s.key | quote }}
        path: {{ $s.key | quote }}
{{- end }}
- name: pepper
  secret:
    secretName: {{ .Values.keys.pepper.existingSecret | quote }}
    defaultMode: 0440
    items:
      - key: {{ .Values.keys.pepper.key | quote }}
        path: {{ .Values.keys.pepper.key | quote }}
{{- range $i, $p := .Values.keys.retiredPeppers }}
- name: retired-pepper-{{ $i }}
  secret:
    secretName: {{ $p.existingSecret | quote }}
    defaultMode: 0440
    items:
      - key: {{ $p.key | quote }}
        path: {{ $p.key | quote }}
{{- end }}
- name: key-encryption-key
  secret:
    secretName: {{ .Values.keys.keyEncryptionKey.existingSecret | quote }}
    defaultMode: 0440
    items:
      - key: {{ .Values.keys.keyEncryptionKey.key | quote }}
        path: {{ .Values.keys.keyEncryptionKey.key | quote }}
{{- end }}

{{/*
Mounts of the volumes of tollgate.volumes.
*/}}
{{- define "tollgate.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: token-secret
  mountPath: {{ include "tollgate.keysDir" . }}/token-secret
  readOnly: true
{{- range $i, $s := .Values.keys.rotatedTokenSecrets }}
- name: rotated-token-secret-{{ $i }}
  mountPath: {{ include "tollgate.keysDir" $ }}/rotated-token-secret-{{ $i }}
  readOnly: true
{{- end }}
- name: pepper
  mountPath: {{ include "tollgate.keysDir" . }}/pepper
  readOnly: true
{{- range $i, $p := .Values.keys.retiredPeppers }}
- name: retired-pepper-{{ $i }}
  mountPath: {{ include "tollgate.keysDir" $ }}/retired-pepper-{{ $i }}
  readOnly: true
{{- end }}
- name: key-encryption-key
  mountPath: {{ include "tollgate.keysDir" . }}/key-encryption-key
  readOnly: true
{{- end }}
