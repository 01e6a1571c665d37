{{/*
Names, labels, images and the pod pieces every component shares. Components are "gateway",
"inference", "model-sync", "mlflow" and "training" (the Job/CronJob); most helpers take a dict with the root context as "ctx"
and the component's name as "component".
*/}}

{{- define "brainscan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart>, or the release name alone when it already contains the chart name. */}}
{{- define "brainscan.fullname" -}}
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

{{/* Name of one component's objects: <fullname>-<component>. */}}
{{- define "brainscan.componentName" -}}
{{- printf "%s-%s" (include "brainscan.fullname" .ctx) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "brainscan.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object of the release. */}}
{{- define "brainscan.labels" -}}
helm.sh/chart: {{ include "brainscan.chart" . }}
app.kubernetes.io/name: {{ include "brainscan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: brainscan
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component's objects. */}}
{{- define "brainscan.componentLabels" -}}
{{ include "brainscan.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector of one component's pods (immutable once deployed: never add to it). */}}
{{- define "brainscan.selectorLabels" -}}
app.kubernetes.io/name: {{ include "brainscan.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector of every pod of the release. */}}
{{- define "brainscan.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "brainscan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* ServiceAccount name of a component; takes ctx, component and values (the component's). */}}
{{- define "brainscan.serviceAccountName" -}}
{{- if .values.serviceAccount.create -}}
{{- default (include "brainscan.componentName" .) .values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Image reference: <registry>/<repository>@<digest> when a digest is set, else :<tag> with the
chart's appVersion as the default tag. global.imageRegistry replaces the registry.
Takes ctx and image (the component's image values).
*/}}
{{- define "brainscan.image" -}}
{{- $registry := default .image.registry .ctx.Values.global.imageRegistry -}}
{{- $repository := .image.repository -}}
{{- if $registry -}}
{{- $repository = printf "%s/%s" $registry .image.repository -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Service URL of a component inside the cluster; takes ctx, component and port. */}}
{{- define "brainscan.serviceUrl" -}}
{{- printf "http://%s:%v" (include "brainscan.componentName" .) .port -}}
{{- end -}}

{{/* The MLflow URL model-sync uses: the in-chart Service or the external URL. */}}
{{- define "brainscan.mlflowUrl" -}}
{{- if .Values.mlflow.enabled -}}
{{- include "brainscan.serviceUrl" (dict "ctx" . "component" "mlflow" "port" .Values.mlflow.service.port) -}}
{{- else -}}
{{- required "mlflow.external.url is required when mlflow.enabled is false" .Values.mlflow.external.url -}}
{{- end -}}
{{- end -}}

{{/* Pod-level fields every component shares; takes ctx, component and values. */}}
{{- define "brainscan.podCommon" -}}
serviceAccountName: {{ include "brainscan.serviceAccountName" . }}
# None of the components calls the Kubernetes API.
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ .values.terminationGracePeriodSeconds }}
{{- with .ctx.Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if and .values.topologySpread .values.topologySpread.enabled }}
topologySpreadConstraints:
  - maxSkew: {{ .values.topologySpread.maxSkew }}
    topologyKey: {{ .values.topologySpread.topologyKey }}
    whenUnsatisfiable: {{ .values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "brainscan.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end -}}

{{/* Pod metadata annotations: Prometheus scraping and the caller's own; takes values and port. */}}
{{- define "brainscan.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end -}}

{{/* Container-level fields every component shares; takes ctx and values. */}}
{{- define "brainscan.containerCommon" -}}
image: {{ include "brainscan.image" (dict "ctx" .ctx "image" .values.image) }}
imagePullPolicy: {{ .values.image.pullPolicy }}
securityContext:
  {{- toYaml .ctx.Values.containerSecurityContext | nindent 2 }}
resources:
  {{- toYaml .values.resources | nindent 2 }}
{{- if gt (int .ctx.Values.preStopSleepSeconds) 0 }}
lifecycle:
  preStop:
    exec:
      command: ["sleep", "{{ .ctx.Values.preStopSleepSeconds }}"]
{{- end }}
{{- end -}}

{{/*
Startup, readiness and liveness probes. The paths are the services' real health routes, passed
in by each Deployment, never taken from values. Takes values, live (path), ready (path), port
(name) and optionally headers (a list of HTTPHeader).
*/}}
{{- define "brainscan.probes" -}}
{{- $probes := .values.probes -}}
{{- if $probes.startup.enabled }}
startupProbe:
  httpGet:
    path: {{ .live }}
    port: {{ .port }}
    {{- with .headers }}
    httpHeaders:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  periodSeconds: {{ $probes.startup.periodSeconds }}
  timeoutSeconds: {{ $probes.startup.timeoutSeconds }}
  failureThreshold: {{ $probes.startup.failureThreshold }}
{{- end }}
{{- if $probes.readiness.enabled }}
readinessProbe:
  httpGet:
    path: {{ .ready }}
    port: {{ .port }}
    {{- with .headers }}
    httpHeaders:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  periodSeconds: {{ $probes.readiness.periodSeconds }}
  timeoutSeconds: {{ $probes.readiness.timeoutSeconds }}
  failureThreshold: {{ $probes.readiness.failureThreshold }}
  successThreshold: {{ $probes.readiness.successThreshold }}
{{- end }}
{{- if $probes.liveness.enabled }}
livenessProbe:
  httpGet:
    path: {{ .live }}
    port: {{ .port }}
    {{- with .headers }}
    httpHeaders:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  periodSeconds: {{ $probes.liveness.periodSeconds }}
  timeoutSeconds: {{ $probes.liveness.timeoutSeconds }}
  failureThreshold: {{ $probes.liveness.failureThreshold }}
{{- end }}
{{- end -}}

{{/* The /tmp volume every container gets, its root filesystem being read-only. */}}
{{- define "brainscan.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end -}}

{{/* HorizontalPodAutoscaler; takes ctx, component and values. */}}
{{- define "brainscan.hpa" -}}
{{- $autoscaling := .values.autoscaling -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "brainscan.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "brainscan.componentLabels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "brainscan.componentName" . }}
  minReplicas: {{ $autoscaling.minReplicas }}
  maxReplicas: {{ $autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $autoscaling.targetCPUUtilizationPercentage }}
    {{- if and $autoscaling.queueDepth $autoscaling.queueDepth.enabled }}
    - type: Pods
      pods:
        metric:
          name: {{ $autoscaling.queueDepth.metricName }}
        target:
          type: AverageValue
          averageValue: {{ $autoscaling.queueDepth.averageValue | quote }}
    {{- end }}
    {{- with $autoscaling.extraMetrics }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $autoscaling.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* PodDisruptionBudget; takes ctx, component and values. */}}
{{- define "brainscan.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "brainscan.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "brainscan.componentLabels" . | nindent 4 }}
spec:
  minAvailable: {{ .values.pdb.minAvailable }}
  selector:
    matchLabels:
      {{- include "brainscan.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/* ServiceAccount; takes ctx, component and values. */}}
{{- define "brainscan.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "brainscan.serviceAccountName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "brainscan.componentLabels" . | nindent 4 }}
  {{- with .values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end -}}

{{/* ClusterIP (or other type) Service with one "http" port; takes ctx, component and values. */}}
{{- define "brainscan.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "brainscan.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "brainscan.componentLabels" . | nindent 4 }}
spec:
  type: {{ .values.service.type }}
  selector:
    {{- include "brainscan.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .values.service.port }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{/* ConfigMap of a component's environment; takes ctx, component and env (a map). */}}
{{- define "brainscan.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "brainscan.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "brainscan.componentLabels" . | nindent 4 }}
data:
  {{- range $key, $value := .env }}
  {{ $key }}: {{ $value | toString | quote }}
  {{- end }}
{{- end -}}

{{/* Egress to DNS, the first rule of every restricted egress policy. */}}
{{- define "brainscan.dnsEgress" -}}
- to:
    {{- toYaml .Values.networkPolicy.dnsTo | nindent 4 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end -}}

{{/* Ingress rule letting Prometheus scrape a component's port; takes ctx. */}}
{{- define "brainscan.metricsIngress" -}}
{{- with .ctx.Values.networkPolicy.metricsFrom }}
- from:
    {{- toYaml . | nindent 4 }}
  ports:
    - port: http
      protocol: TCP
{{- end }}
{{- end -}}

{{/* PersistentVolumeClaim of a component's data; takes ctx, component and values. */}}
{{- define "brainscan.pvc" -}}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ include "brainscan.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "brainscan.componentLabels" . | nindent 4 }}
  annotations:
    # Keep the data when the release is uninstalled.
    helm.sh/resource-policy: keep
spec:
  accessModes:
    {{- toYaml .values.persistence.accessModes | nindent 4 }}
  {{- with .values.persistence.storageClass }}
  storageClassName: {{ . }}
  {{- end }}
  resources:
    requests:
      storage: {{ .values.persistence.size }}
{{- end -}}

{{/* Host headers the in-chart MLflow accepts: its Service names, localhost, and extras. */}}
{{- define "brainscan.mlflowAllowedHosts" -}}
{{- $svc := include "brainscan.componentName" (dict "ctx" . "component" "mlflow") -}}
{{- $hosts := list "localhost" "localhost:*" "127.0.0.1" "127.0.0.1:*" -}}
{{- range $name := list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) -}}
{{- $hosts = append $hosts $name -}}
{{- $hosts = append $hosts (printf "%s:*" $name) -}}
{{- end -}}
{{- concat $hosts .Values.mlflow.allowedHosts | join "," -}}
{{- end -}}


{{/*
MLflow's own client variables from mlflow.auth.existingSecret (model-sync and the training
job); a key missing from the Secret is simply not set. Takes the root context.
*/}}
{{- define "brainscan.mlflowCredentialsEnv" -}}
{{- with .Values.mlflow.auth.existingSecret }}
# MLflow's own client variables; a key missing from the Secret is simply not set.
- name: MLFLOW_TRACKING_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: username
      optional: true
- name: MLFLOW_TRACKING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: password
      optional: true
- name: MLFLOW_TRACKING_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: token
      optional: true
{{- end }}
{{- end -}}

{{/*
Egress rule to MLflow (model-sync and the training job): the in-chart MLflow's pods, else
networkPolicy.externalMlflowTo, else any address on mlflow.external.egressPorts. Takes the root
context.
*/}}
{{- define "brainscan.mlflowEgress" -}}
{{- if .Values.mlflow.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "brainscan.selectorLabels" (dict "ctx" . "component" "mlflow") | nindent 10 }}
  ports:
    - port: 5000
      protocol: TCP
{{- else if .Values.networkPolicy.externalMlflowTo }}
- to:
    {{- toYaml .Values.networkPolicy.externalMlflowTo | nindent 4 }}
{{- else }}
# An external MLflow (and its artifact store) at any address, on its ports only.
- ports:
    {{- range .Values.mlflow.external.egressPorts }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end -}}

{{/* Whether the training pipeline runs in the cluster (as a Job, a CronJob or both). */}}
{{- define "brainscan.trainingEnabled" -}}
{{- if or .Values.training.job.enabled .Values.training.cronJob.enabled -}}true{{- end -}}
{{- end -}}

{{/*
The training pod: `dvc repro` of the image's DVC project on the data set in
training.data.existingClaim (read-only at /data). The root filesystem is read-only and DVC
writes in its project, so the init container "workspace" copies the image's /workspace into an
emptyDir (as its folder "workspace"), which the later containers mount at /workspace; "params" then writes params.yaml
there with the data source set to /data (and training.params), checked by the Params model,
before "training" runs `dvc repro`. Takes the root context.
*/}}
{{- define "brainscan.trainingPod" -}}
{{- $ctx := dict "ctx" . "component" "training" "values" .Values.training -}}
{{- $training := .Values.training -}}
{{- $image := include "brainscan.image" (dict "ctx" . "image" $training.image) -}}
metadata:
  # Not the chart's version labels: the Job's name is a digest of this pod, and a new chart
  # version alone is no reason for a new run.
  labels:
    {{- include "brainscan.selectorLabels" $ctx | nindent 4 }}
    app.kubernetes.io/part-of: brainscan
    {{- with $training.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $training.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- include "brainscan.podCommon" $ctx | nindent 2 }}
  # A failed run is a new pod (backoffLimit), never a restart in place of a half-written project.
  restartPolicy: Never
  initContainers:
    - name: workspace
      image: {{ $image }}
      imagePullPolicy: {{ $training.image.pullPolicy }}
      securityContext:
        {{- toYaml .Values.containerSecurityContext | nindent 8 }}
      resources:
        {{- toYaml $training.initResources | nindent 8 }}
      # Into a folder of its own on the volume (the volume's root is not this user's to chmod);
      # the later containers mount that folder at /workspace.
      command: ["cp", "-a", "/workspace", "/writable-workspace/"]
      volumeMounts:
        - name: workspace
          mountPath: /writable-workspace
        - name: tmp
          mountPath: /tmp
    - name: params
      image: {{ $image }}
      imagePullPolicy: {{ $training.image.pullPolicy }}
      securityContext:
        {{- toYaml .Values.containerSecurityContext | nindent 8 }}
      resources:
        {{- toYaml $training.initResources | nindent 8 }}
      workingDir: /workspace
      command:
        - brainscan-train
        - --params
        - params.yaml
        - params
        - --set
        - data.source=directory
        - --set
        - data.source_dir=/data
        {{- range $key, $value := $training.params }}
        - --set
        - {{ printf "%s=%s" $key (toJson $value) | quote }}
        {{- end }}
        - --out
        - params.yaml
      volumeMounts:
        - name: workspace
          mountPath: /workspace
          subPath: workspace
        - name: tmp
          mountPath: /tmp
  containers:
    - name: training
      image: {{ $image }}
      imagePullPolicy: {{ $training.image.pullPolicy }}
      securityContext:
        {{- toYaml .Values.containerSecurityContext | nindent 8 }}
      resources:
        {{- toYaml $training.resources | nindent 8 }}
      workingDir: /workspace
      command: ["dvc", "repro"]
      env:
        - name: MLFLOW_TRACKING_URI
          value: {{ include "brainscan.mlflowUrl" . | quote }}
        - name: HOME
          value: /workspace
        # DVC's site cache (default /var/tmp/dvc) on the writable /tmp.
        - name: DVC_SITE_CACHE_DIR
          value: /tmp/dvc
        - name: MPLCONFIGDIR
          value: /tmp/matplotlib
        {{- include "brainscan.mlflowCredentialsEnv" . | nindent 8 }}
        {{- with $training.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      volumeMounts:
        - name: workspace
          mountPath: /workspace
          subPath: workspace
        - name: tmp
          mountPath: /tmp
        - name: data
          mountPath: /data
          readOnly: true
          {{- with $training.data.subPath }}
          subPath: {{ . }}
          {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $training.tmpSizeLimit }}
    # The DVC project, its cache and the pipeline's outputs (data/raw is a copy of the data set).
    - name: workspace
      emptyDir:
        sizeLimit: {{ $training.workspaceSizeLimit }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ required "training.data.existingClaim is required when training.job or training.cronJob is enabled" $training.data.existingClaim }}
        readOnly: true
{{- end -}}

{{/* The Job spec fields of a training run (Job and CronJob); takes training.job. */}}
{{- define "brainscan.trainingJobSpec" -}}
backoffLimit: {{ .backoffLimit }}
activeDeadlineSeconds: {{ .activeDeadlineSeconds }}
{{- if not (kindIs "invalid" .ttlSecondsAfterFinished) }}
ttlSecondsAfterFinished: {{ .ttlSecondsAfterFinished }}
{{- end }}
{{- end -}}

{{/*
Name of the training Job: <fullname>-training-<digest of its pod and backoffLimit>. A Job's pod
template cannot change, so an upgrade that changes the run replaces the Job (a new run) and one
that changes nothing leaves it alone. Takes the root context.
*/}}
{{- define "brainscan.trainingJobName" -}}
{{- $base := include "brainscan.componentName" (dict "ctx" . "component" "training") | trunc 54 | trimSuffix "-" -}}
{{- $digest := printf "%s\n%v" (include "brainscan.trainingPod" .) .Values.training.job.backoffLimit | sha256sum | trunc 8 -}}
{{- printf "%s-%s" $base $digest -}}
{{- end -}}

{{/* Name of the training CronJob (at most 52 characters, as Kubernetes asks). */}}
{{- define "brainscan.trainingCronJobName" -}}
{{- include "brainscan.componentName" (dict "ctx" . "component" "training") | trunc 52 | trimSuffix "-" -}}
{{- end -}}
