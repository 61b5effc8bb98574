{{/* The tenant name: the marker label value of synced objects. */}}
{{- define "knest.tenant" -}}
{{- default .Release.Name .Values.tenant -}}
{{- end -}}

{{/* Labels of every object the chart installs. */}}
{{- define "knest.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: knest
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: knest
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selects the tenant's synced pods: the marker label, reserved to knest. */}}
{{- define "knest.tenantPods" -}}
knest.io/tenant: {{ include "knest.tenant" . }}
{{- end -}}

{{/* Selects the knestd pod: a reserved label no tenant pod can carry. */}}
{{- define "knest.knestdPods" -}}
knest.io/component: knestd
knest.io/control-plane: {{ include "knest.tenant" . }}
{{- end -}}

{{/* The knestd image reference. global.imageRegistry, when set, replaces
the repository's registry (its first component when that names a host:
it holds a dot or a colon, or is localhost) and keeps the path. */}}
{{- define "knest.image" -}}
{{- $tag := .Values.knestd.image.tag | default (printf "v%s" .Chart.Version) -}}
{{- $repo := .Values.knestd.image.repository -}}
{{- $registry := "" -}}
{{- with .Values.global }}{{ $registry = .imageRegistry | default "" }}{{ end -}}
{{- if $registry -}}
{{- $parts := splitList "/" $repo -}}
{{- $first := first $parts -}}
{{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) -}}
{{- $parts = rest $parts -}}
{{- end -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" $registry) (join "/" $parts) -}}
{{- end -}}
{{- if hasPrefix "sha256:" $tag -}}
{{ $repo }}@{{ $tag }}
{{- else -}}
{{ $repo }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{/* The in-cluster DNS name of the Service in front of knestd. */}}
{{- define "knest.serviceHost" -}}
knestd.{{ .Release.Namespace }}.svc
{{- end -}}

{{/* The name of the cluster-scoped grant of hostNodeInfo and poolNodes: namespace and
release names hold no colon, so no two tenants' names can collide. */}}
{{- define "knest.hostNodeInfoName" -}}
knest:host-node-info:{{ .Release.Namespace }}:{{ .Release.Name }}
{{- end -}}
