{{/* Names and labels shared by every object of the release. */}}
{{- define "zeropool.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "zeropool.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "zeropool.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "zeropool.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "zeropool.secretName" -}}
{{ .Values.secrets.existingSecret | default (printf "%s-keys" (include "zeropool.fullname" .)) }}
{{- end -}}

{{- define "zeropool.databaseSecretName" -}}
{{ .Values.database.existingSecret | default (printf "%s-database" (include "zeropool.fullname" .)) }}
{{- end -}}

{{/* Environment common to the API and the workers. */}}
{{- define "zeropool.env" -}}
- name: TEMPORAL_ADDRESS
  value: {{ .Values.temporal.address | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
- name: TEMPORAL_TASK_QUEUE
  value: {{ .Values.temporal.taskQueue | quote }}
{{- if .Values.temporal.apiKey.existingSecret }}
- name: TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef: { name: {{ .Values.temporal.apiKey.existingSecret }}, key: {{ .Values.temporal.apiKey.key }} }
{{- end }}
{{- if .Values.temporal.tls.enabled }}
- name: TEMPORAL_TLS
  value: "true"
- name: TEMPORAL_TLS_CLIENT_CERT_PATH
  value: /etc/zeropool/temporal-tls/tls.crt
- name: TEMPORAL_TLS_CLIENT_KEY_PATH
  value: /etc/zeropool/temporal-tls/tls.key
{{- if .Values.temporal.tls.serverCA }}
- name: TEMPORAL_TLS_SERVER_CA_CERT_PATH
  value: /etc/zeropool/temporal-tls/ca.crt
{{- end }}
{{- if .Values.temporal.tls.serverName }}
- name: TEMPORAL_TLS_SERVER_NAME
  value: {{ .Values.temporal.tls.serverName | quote }}
{{- end }}
{{- end }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef: { name: {{ include "zeropool.databaseSecretName" . }}, key: {{ .Values.database.key }} }
- name: ZEROPOOL_API_KEY
  valueFrom:
    secretKeyRef: { name: {{ include "zeropool.secretName" . }}, key: admin-key }
- name: ZEROPOOL_NODE_SECRET_KEY
  valueFrom:
    secretKeyRef: { name: {{ include "zeropool.secretName" . }}, key: node-secret-key }
- name: ZEROPOOL_DATA_DIR
  value: /var/lib/zeropool
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- if .Values.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.tracing.otlpEndpoint | quote }}
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* Volumes: a writable data folder and /tmp on a read-only root, and the Temporal client certificate. */}}
{{- define "zeropool.volumes" -}}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  secret:
    secretName: {{ required "temporal.tls.existingSecret is required with temporal.tls.enabled" .Values.temporal.tls.existingSecret }}
{{- end }}
{{- end -}}

{{- define "zeropool.volumeMounts" -}}
- name: data
  mountPath: /var/lib/zeropool
- name: tmp
  mountPath: /tmp
{{- if .Values.temporal.tls.enabled }}
- name: temporal-tls
  mountPath: /etc/zeropool/temporal-tls
  readOnly: true
{{- end }}
{{- end -}}
