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
{{- $registry := required "image.registry is required: set it to the registry path you pushed the stunnerd, stunner-gateway-operator and stunner-scaler images to (see the README, Build the images)" $root.Values.image.registry -}}
{{ trimSuffix "/" $registry }}/{{ $name }}:{{ $root.Values.image.tag | default $root.Chart.AppVersion }}
{{- end -}}

{{/* The Pod Security Standard "restricted" pod and container security contexts. */}}
{{- define "stunner.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile: { type: RuntimeDefault }
{{- end -}}
{{- define "stunner.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: { drop: [ALL] }
{{- end -}}

{{/* nodeSelector, tolerations, affinity and imagePullSecrets of a pod; takes (list $ .Values.x). */}}
{{- define "stunner.scheduling" -}}
{{- $root := index . 0 -}}{{- $w := index . 1 -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $w.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $w.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $w.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A PodDisruptionBudget keeping one replica of a multi-replica workload; takes (list $ name component replicas). */}}
{{- define "stunner.pdb" -}}
{{- $root := index . 0 -}}{{- $name := index . 1 -}}{{- $component := index . 2 -}}{{- $replicas := index . 3 -}}
{{- if and $root.Values.podDisruptionBudget.enabled (gt (int $replicas) 1) }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels: {{- include "stunner.labels" $root | nindent 4 }}
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ $root.Release.Name }}
      app.kubernetes.io/component: {{ $component }}
{{- end }}
{{- end -}}

{{/* KEDA trigger metadata / HPA behaviour for one autoscaled Gateway. */}}
{{/* Whether the cluster's HPA honours behavior.scaleUp/scaleDown.tolerance by default
     (HPAConfigurableTolerance, beta and on from Kubernetes 1.35): "true" or "". The operator
     decides the same from the API server's version. */}}
{{- define "stunner.configurableTolerance" -}}
{{- if semverCompare ">=1.35-0" .Capabilities.KubeVersion.Version }}true{{ end -}}
{{- end -}}

{{/* The HPA behavior of autoscaled Gateways; takes (list $ withTolerance): with it, tolerance 0
     both ways so the gateway steps down to exactly the size it needs (the scaler is told with
     hpaTolerance "0"). */}}
{{- define "stunner.scaleDownBehavior" -}}
{{- $root := index . 0 -}}{{- $tolerance := index . 1 -}}
scaleDown:
  stabilizationWindowSeconds: {{ $root.Values.scaleDown.stabilizationWindowSeconds }}
  policies:
    - type: Pods
      value: {{ $root.Values.scaleDown.podsPerPeriod }}
      periodSeconds: {{ $root.Values.scaleDown.periodSeconds }}
  {{- if $tolerance }}
  tolerance: "0"
  {{- end }}
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
  {{- if $tolerance }}
  tolerance: "0"
  {{- end }}
{{- end -}}


{{/* CRD manifests (text) with Helm's labels and helm.sh/resource-policy: keep added to each
     top-level "metadata:"; takes (list $ text). The CRDs' own metadata holds only their name. */}}
{{- define "stunner.keptCrds" -}}
{{- $root := index . 0 -}}{{- $text := index . 1 -}}
{{- $meta := printf "metadata:\n  annotations:\n    helm.sh/resource-policy: keep\n  labels:\n%s\n" (include "stunner.labels" $root | indent 4) -}}
{{ regexReplaceAll "(?m)^metadata:\n" $text $meta }}
{{- end -}}
