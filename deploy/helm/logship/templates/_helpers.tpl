{{/* Names, labels and the config blocks shared by the templates. */}}

{{- define "logship.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "logship.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "logship.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "logship.labels" -}}
helm.sh/chart: {{ include "logship.chart" . }}
app.kubernetes.io/name: {{ include "logship.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: logship
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "shipper"). */}}
{{- define "logship.selectorLabels" -}}
app.kubernetes.io/name: {{ include "logship.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* ServiceAccount of a component; call with (dict "ctx" $ "component" "shipper"). */}}
{{- define "logship.serviceAccountName" -}}
{{- $sa := get (get .ctx.Values .component) "serviceAccount" -}}
{{- if $sa.create -}}
{{- default (printf "%s-%s" (include "logship.fullname" .ctx) .component) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{- define "logship.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The node directory of this release's shipper registry. */}}
{{- define "logship.stateDir" -}}
{{- printf "%s/%s.%s" (trimSuffix "/" .Values.shipper.hostPaths.state) .Release.Namespace .Release.Name -}}
{{- end -}}

{{- define "logship.aggregatorService" -}}
{{- printf "%s-aggregator" (include "logship.fullname" .) -}}
{{- end -}}

{{/* host:port of the aggregator Service, fully qualified so sidecars in other namespaces reach it. */}}
{{- define "logship.aggregatorAddress" -}}
{{- printf "%s.%s.svc:%v" (include "logship.aggregatorService" .) .Release.Namespace .Values.aggregator.port -}}
{{- end -}}

{{- define "logship.aggregatorHeadlessService" -}}
{{- printf "%s-aggregator-headless" (include "logship.fullname" .) -}}
{{- end -}}

{{- define "logship.aggregatorHeadlessAddress" -}}
{{- printf "%s.%s.svc:%v" (include "logship.aggregatorHeadlessService" .) .Release.Namespace .Values.aggregator.port -}}
{{- end -}}

{{- define "logship.tlsSecret" -}}
{{- required "tls.existingSecret is required when tls.enabled is true (a Secret with tls.crt, tls.key, ca.crt)" .Values.tls.existingSecret -}}
{{- end -}}

{{/* The shipper's `output:` block: chart-derived hosts and TLS merged under the values' block. */}}
{{- define "logship.shipperOutput" -}}
{{- $ctx := .ctx -}}
{{- $hosts := $ctx.Values.shipper.outputHosts -}}
{{- $out := dict -}}
{{- if $hosts -}}
{{- $_ := set $out "hosts" $hosts -}}
{{- else if $ctx.Values.aggregator.service.headless.enabled -}}
{{- /* one address per ready aggregator pod: a connection to each, looked up again every ttl */}}
{{- $_ := set $out "hosts" (list (include "logship.aggregatorHeadlessAddress" $ctx)) -}}
{{- $_ := set $out "loadbalance" true -}}
{{- else -}}
{{- $_ := set $out "hosts" (list (include "logship.aggregatorAddress" $ctx)) -}}
{{- end -}}
{{- if $ctx.Values.tls.enabled -}}
{{- $tls := dict "enabled" true "ca_file" "/etc/logship/tls/ca.crt" "server_name" (printf "%s.%s.svc" (include "logship.aggregatorService" $ctx) $ctx.Release.Namespace) -}}
{{- if $ctx.Values.tls.requireClientCert -}}
{{- $_ := set $tls "cert_file" "/etc/logship/tls/tls.crt" -}}
{{- $_ := set $tls "key_file" "/etc/logship/tls/tls.key" -}}
{{- end -}}
{{- $_ := set $out "tls" $tls -}}
{{- end -}}
{{- toYaml (mustMergeOverwrite $out (deepCopy (default dict .output))) -}}
{{- end -}}

{{/* Security context every logship container shares. */}}
{{- define "logship.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Probes of a component from its values; call with the component's values. */}}
{{- define "logship.probes" -}}
{{- with .livenessProbe }}
livenessProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .readinessProbe }}
readinessProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Where the OpenSearch CA comes from: "secret", "configMap" (existing or from `pem`) or "". */}}
{{- define "logship.caSource" -}}
{{- $ca := .Values.opensearch.ca -}}
{{- if $ca.existingSecret -}}secret
{{- else if or $ca.existingConfigMap $ca.pem -}}configMap
{{- end -}}
{{- end -}}

{{- define "logship.caConfigMapName" -}}
{{- default (printf "%s-opensearch-ca" (include "logship.fullname" .)) .Values.opensearch.ca.existingConfigMap -}}
{{- end -}}

{{- define "logship.sidecarNamespace" -}}
{{- default .Release.Namespace .Values.sidecar.namespace -}}
{{- end -}}

{{- define "logship.sidecarConfigMap" -}}
{{- printf "%s-sidecar" (include "logship.fullname" .) -}}
{{- end -}}

{{/*
The sidecar container for an app pod. The pod needs three volumes: `app-logs` (emptyDir, also
mounted by the app container at /app/logs), `logship-sidecar-config` (the ConfigMap
"<release>-sidecar") and `logship-sidecar-state` (emptyDir). Call with
(dict "ctx" $ "appContainer" "app").
*/}}
{{- define "logship.sidecarContainer" -}}
{{- $ctx := .ctx -}}
- name: logship-shipper
  {{- if $ctx.Values.sidecar.native }}
  # Native sidecar (an init container that keeps running): starts before the app and is stopped
  # after it, so the app's last lines are still shipped when the pod terminates.
  restartPolicy: Always
  {{- end }}
  image: {{ include "logship.image" $ctx }}
  imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
  args:
    - --log-level={{ $ctx.Values.logLevel }}
    - --log-format={{ $ctx.Values.logFormat }}
    - shipper
    - -c
    - /etc/logship/logship.yml
  env:
    - name: POD_NAME
      valueFrom:
        fieldRef: {fieldPath: metadata.name}
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef: {fieldPath: metadata.namespace}
    - name: NODE_NAME
      valueFrom:
        fieldRef: {fieldPath: spec.nodeName}
    - name: CONTAINER_NAME
      value: {{ .appContainer | quote }}
  ports:
    - name: logship-metrics
      containerPort: {{ $ctx.Values.sidecar.port }}
      protocol: TCP
  # No readiness probe on purpose: a sidecar waiting for the aggregator must not take the app
  # pod out of its Service endpoints.
  livenessProbe:
    httpGet: {path: /healthz, port: logship-metrics}
    initialDelaySeconds: 10
    periodSeconds: 10
    timeoutSeconds: 5
    failureThreshold: 6
  resources:
    {{- toYaml $ctx.Values.sidecar.resources | nindent 4 }}
  securityContext:
    runAsUser: 10001
    runAsGroup: 10001
    runAsNonRoot: true
    {{- include "logship.containerSecurityContext" $ctx | nindent 4 }}
  volumeMounts:
    - name: app-logs
      mountPath: /app/logs
      readOnly: true
    - name: logship-sidecar-config
      mountPath: /etc/logship/logship.yml
      subPath: logship.yml
      readOnly: true
    - name: logship-sidecar-state
      mountPath: /var/lib/logship
{{- end -}}

{{/*
"true" when the shipper takes Kubernetes metadata from the API (shipper.config.kubernetes.enabled), else "":
the one switch for its token, its ClusterRole and its config.
*/}}
{{- define "logship.kubernetesMetadata" -}}
{{- if dig "kubernetes" "enabled" false .Values.shipper.config }}true{{- end }}
{{- end }}
