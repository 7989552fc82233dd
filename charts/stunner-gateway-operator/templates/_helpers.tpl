{{/* Common names and labels. */}}
{{- define "stunner.fullname" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "stunner.operatorName" -}}{{ include "stunner.fullname" . }}-operator{{- end -}}
{{- define "stunner.scalerName" -}}{{ include "stunner.fullname" . }}-scaler{{- end -}}

{{- define "stunner.labels" -}}
app.kubernetes.io/part-of: stunner
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "stunner.image" -}}
{{- $root := index . 0 -}}{{- $name := index . 1 -}}
{{ $root.Values.image.registry }}/{{ $name }}:{{ $root.Values.image.tag | default $root.Chart.AppVersion }}
{{- end -}}

{{/* KEDA trigger metadata / HPA behaviour for one autoscaled Gateway. */}}
{{- define "stunner.scaleDownBehavior" -}}
scaleDown:
  stabilizationWindowSeconds: {{ .Values.scaleDown.stabilizationWindowSeconds }}
  policies:
    - type: Pods
      value: {{ .Values.scaleDown.podsPerPeriod }}
      periodSeconds: {{ .Values.scaleDown.periodSeconds }}
scaleUp:
  stabilizationWindowSeconds: 0
  selectPolicy: Max
  policies:
    - type: Percent
      value: 100
      periodSeconds: 15
    - type: Pods
      value: 4
      periodSeconds: 15
{{- end -}}
