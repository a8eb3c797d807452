{{/* The release-scoped name of every object. */}}
{{- define "kubeboot.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels shared by every object. */}}
{{- define "kubeboot.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the server's pods. */}}
{{- define "kubeboot.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The Secret holding the published admin kubeconfig. */}}
{{- define "kubeboot.kubeconfigSecret" -}}
{{- .Values.adminKubeconfigSecret | default (printf "%s-admin-kubeconfig" (include "kubeboot.fullname" .)) -}}
{{- end -}}

{{/* Whether the data volume is a claim: the embedded store's, one replica. */}}
{{- define "kubeboot.persistent" -}}
{{- if and .Values.persistence.enabled (not .Values.etcd.endpoints) -}}true{{- end -}}
{{- end -}}

{{/* The server's flags, shared by `kubeboot init` (which generates what is missing) and `serve`. */}}
{{- define "kubeboot.serverArgs" -}}
- --bind-address=0.0.0.0
- --secure-port={{ .Values.securePort }}
- --data-dir=/var/lib/kubeboot
{{- if .Values.pki.existingSecret }}
- --cert-dir=/etc/kubeboot/pki
{{- end }}
- --cert-extra-sans={{ include "kubeboot.fullname" . }},{{ include "kubeboot.fullname" . }}.{{ .Release.Namespace }}.svc
- --shutdown-delay-duration={{ .Values.shutdownDelaySeconds }}s
{{- with .Values.etcd.endpoints }}
- --storage-backend=etcd
- --etcd-servers={{ join "," . }}
{{- end }}
{{- if .Values.etcd.tlsSecret }}
- --etcd-cafile=/etc/kubeboot/etcd/ca.crt
- --etcd-certfile=/etc/kubeboot/etcd/tls.crt
- --etcd-keyfile=/etc/kubeboot/etcd/tls.key
{{- end }}
{{- range .Values.extraArgs }}
- {{ . }}
{{- end }}
{{- end -}}

{{/* Where the server's files are, for init and serve alike. */}}
{{- define "kubeboot.volumeMounts" -}}
- name: data
  mountPath: /var/lib/kubeboot
- name: tmp
  mountPath: /tmp
{{- if .Values.pki.existingSecret }}
- name: pki
  mountPath: /etc/kubeboot/pki
  readOnly: true
{{- end }}
{{- if .Values.etcd.tlsSecret }}
- name: etcd-tls
  mountPath: /etc/kubeboot/etcd
  readOnly: true
{{- end }}
{{- end -}}

{{/* A container that runs as the image's user and can change nothing but its volumes. */}}
{{- define "kubeboot.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
{{- end -}}
