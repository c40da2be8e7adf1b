"""The real lab's Helm chart repository (issue 12): the charts a stack config installs, served over HTTPS.

**The charts are the lab's own stand-ins, not the upstream charts**: each has the upstream chart's name
and version and renders, from the same values, the objects the program relies on — nothing else. They are
written here as text (Chart.yaml, values.yaml, Go templates), packaged with tarfile and indexed in Python
(no helm CLI, nothing pulled from a Go module or a fetched repository); the real pulumi-kubernetes
provider's Helm (helm.sh/helm/v3 v3.18.6) renders and installs them.

- ingress-nginx 4.15.1 (INGRESS_NGINX_CHART_VERSION): the controller DaemonSet and the IngressClass,
  following kubernetes/ingress-nginx@helm-chart-4.15.1 charts/ingress-nginx/templates/
  controller-daemonset.yaml, controller-ingressclass.yaml, _params.tpl and _helpers.tpl (names, labels,
  hostNetwork, dnsPolicy, hostPort per containerPort, the webhook port and args) with values.yaml's defaults
  for the keys used. Left out: RBAC, ConfigMaps, the admission webhook's ValidatingWebhookConfiguration and
  its certificate Jobs (the kubelet stand-in runs no controller, so a webhook would refuse every Ingress),
  the Deployment kind (the program always asks for a DaemonSet: other kinds fail to render).
- podinfo 6.9.2: its Deployment and Service, following stefanprodan/podinfo@6.9.2 charts/podinfo/templates/
  deployment.yaml, service.yaml and _helpers.tpl (replicaCount, ui.message as PODINFO_UI_MESSAGE, ports).

The repository: index.yaml and the .tgz files (helm's repo layout, pkg/repo/index.go@v3.18.6) served by
Python's http.server on the client namespace's loopback, behind Debian's haproxy terminating TLS on
CLIENT_ADDRESS:PORT with the registry's certificate (images.make_ca: the lab CA, an IP SAN for that
address), as the image registry is. The Pulumi CLI and its kubernetes provider run in that namespace and
trust the lab CA through SSL_CERT_FILE (cluster.LabCluster): Helm's HTTP getter uses Go's system roots when
no caFile is given (pkg/getter/httpgetter.go@v3.18.6), which read SSL_CERT_FILE (crypto/x509 root_unix.go).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PORT = 8443
BACKEND = "127.0.0.1:8879"

INGRESS_NGINX_HELPERS = """\
{{/* kubernetes/ingress-nginx@helm-chart-4.15.1 charts/ingress-nginx/templates/_helpers.tpl */}}
{{- define "ingress-nginx.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "ingress-nginx.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "ingress-nginx.fullname" -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- define "ingress-nginx.controller.fullname" -}}
{{- printf "%s-%s" (include "ingress-nginx.fullname" .) .Values.controller.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "ingress-nginx.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ingress-nginx.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "ingress-nginx.labels" -}}
helm.sh/chart: {{ include "ingress-nginx.chart" . }}
{{ include "ingress-nginx.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: {{ template "ingress-nginx.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
"""

INGRESS_NGINX_DAEMONSET = """\
{{- if ne .Values.controller.kind "DaemonSet" }}
{{- fail "the lab's ingress-nginx chart renders controller.kind DaemonSet only" }}
{{- end }}
apiVersion: apps/v1
kind: DaemonSet
metadata:
  labels:
    {{- include "ingress-nginx.labels" . | nindent 4 }}
    app.kubernetes.io/component: controller
  name: {{ include "ingress-nginx.controller.fullname" . }}
  namespace: {{ .Release.Namespace }}
spec:
  selector:
    matchLabels:
      {{- include "ingress-nginx.selectorLabels" . | nindent 6 }}
      app.kubernetes.io/component: controller
  revisionHistoryLimit: {{ .Values.revisionHistoryLimit }}
  template:
    metadata:
      labels:
        {{- include "ingress-nginx.labels" . | nindent 8 }}
        app.kubernetes.io/component: controller
    spec:
      dnsPolicy: {{ .Values.controller.dnsPolicy }}
      containers:
        - name: {{ .Values.controller.containerName }}
          {{- with .Values.controller.image }}
          image: {{ .registry }}/{{ .image }}:{{ .tag }}
          {{- end }}
          args:
            - /nginx-ingress-controller
            - --election-id={{ include "ingress-nginx.fullname" . }}-leader
            - --controller-class={{ .Values.controller.ingressClassResource.controllerValue }}
            - --configmap=$(POD_NAMESPACE)/{{ include "ingress-nginx.controller.fullname" . }}
          {{- if and .Values.controller.reportNodeInternalIp .Values.controller.hostNetwork }}
            - --report-node-internal-ip-address={{ .Values.controller.reportNodeInternalIp }}
          {{- end }}
          {{- if .Values.controller.admissionWebhooks.enabled }}
            - --validating-webhook=:{{ .Values.controller.admissionWebhooks.port }}
          {{- end }}
          env:
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
          ports:
          {{- range $key, $value := .Values.controller.containerPort }}
            - name: {{ $key }}
              containerPort: {{ $value }}
              protocol: TCP
              {{- if $.Values.controller.hostPort.enabled }}
              hostPort: {{ index $.Values.controller.hostPort.ports $key | default $value }}
              {{- end }}
          {{- end }}
          {{- if .Values.controller.admissionWebhooks.enabled }}
            - name: webhook
              containerPort: {{ .Values.controller.admissionWebhooks.port }}
              protocol: TCP
          {{- end }}
    {{- if .Values.controller.hostNetwork }}
      hostNetwork: {{ .Values.controller.hostNetwork }}
    {{- end }}
    {{- if .Values.controller.tolerations }}
      tolerations: {{ toYaml .Values.controller.tolerations | nindent 8 }}
    {{- end }}
      terminationGracePeriodSeconds: {{ .Values.controller.terminationGracePeriodSeconds }}
"""

INGRESS_NGINX_CLASS = """\
{{- if .Values.controller.ingressClassResource.enabled -}}
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  labels:
    {{- include "ingress-nginx.labels" . | nindent 4 }}
    app.kubernetes.io/component: controller
  name: {{ .Values.controller.ingressClassResource.name }}
  {{- if .Values.controller.ingressClassResource.default }}
  annotations:
    ingressclass.kubernetes.io/is-default-class: "true"
  {{- end }}
spec:
  controller: {{ .Values.controller.ingressClassResource.controllerValue }}
{{- end }}
"""

# values.yaml@helm-chart-4.15.1's defaults for the keys the templates above use.
INGRESS_NGINX_VALUES = {
    "revisionHistoryLimit": 10,
    "controller": {
        "name": "controller",
        "kind": "Deployment",
        "image": {"registry": "registry.k8s.io", "image": "ingress-nginx/controller", "tag": "v1.15.1"},
        "containerName": "controller",
        "containerPort": {"http": 80, "https": 443},
        "dnsPolicy": "ClusterFirst",
        "reportNodeInternalIp": False,
        "hostNetwork": False,
        "hostPort": {"enabled": False, "ports": {"http": 80, "https": 443}},
        "ingressClassResource": {"name": "nginx", "enabled": True, "default": False,
                                 "controllerValue": "k8s.io/ingress-nginx"},
        "admissionWebhooks": {"enabled": True, "port": 8443},
        "tolerations": [],
        "terminationGracePeriodSeconds": 300,
    },
}

PODINFO_HELPERS = """\
{{/* stefanprodan/podinfo@6.9.2 charts/podinfo/templates/_helpers.tpl */}}
{{- define "podinfo.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- define "podinfo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "podinfo.fullname" . }}
{{- end }}
{{- define "podinfo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "podinfo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
"""

PODINFO_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ template "podinfo.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "podinfo.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 1
  selector:
    matchLabels:
      {{- include "podinfo.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "podinfo.selectorLabels" . | nindent 8 }}
    spec:
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ .Chart.Name }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          command:
            - ./podinfo
            - --port={{ .Values.service.httpPort | default 9898 }}
          env:
          {{- if .Values.ui.message }}
          - name: PODINFO_UI_MESSAGE
            value: {{ quote .Values.ui.message }}
          {{- end }}
          {{- if .Values.ui.color }}
          - name: PODINFO_UI_COLOR
            value: {{ quote .Values.ui.color }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ .Values.service.httpPort | default 9898 }}
              protocol: TCP
"""

PODINFO_SERVICE = """\
{{- if .Values.service.enabled -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ template "podinfo.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "podinfo.labels" . | nindent 4 }}
spec:
  type: {{ .Values.service.type }}
  ports:
    - port: {{ .Values.service.externalPort }}
      targetPort: http
      protocol: TCP
      name: http
  selector:
    {{- include "podinfo.selectorLabels" . | nindent 4 }}
{{- end }}
"""

# values.yaml@6.9.2's defaults for the keys the templates above use.
PODINFO_VALUES = {
    "replicaCount": 1,
    "image": {"repository": "ghcr.io/stefanprodan/podinfo", "tag": "6.9.2"},
    "ui": {"color": "#34577c", "message": ""},
    "service": {"enabled": True, "type": "ClusterIP", "httpPort": 9898, "externalPort": 9898},
}

STAND_IN = "kubeadm-cluster lab stand-in (tests/lab/charts.py), not the upstream chart: "


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    metadata: dict[str, Any]  # Chart.yaml besides name and version
    values: dict[str, Any]
    templates: dict[str, str]

    @property
    def archive_name(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    def chart_yaml(self) -> dict[str, Any]:
        return {**self.metadata, "name": self.name, "version": self.version}

    def archive(self) -> bytes:
        """The chart as `helm package` lays it out: NAME/Chart.yaml, values.yaml, templates/ in a gzipped tar
        (pkg/chart/loader/archive.go@v3.18.6 strips the top directory); reproducible (mtime 0)."""
        files = {"Chart.yaml": yaml.safe_dump(self.chart_yaml(), sort_keys=False),
                 "values.yaml": yaml.safe_dump(self.values, sort_keys=False),
                 **{f"templates/{name}": text for name, text in self.templates.items()}}
        raw = io.BytesIO()
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped, \
                tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(f"{self.name}/{path}")
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        return raw.getvalue()


CHARTS = (
    Chart("ingress-nginx", "4.15.1",
          {"apiVersion": "v2", "appVersion": "1.15.1", "kubeVersion": ">=1.21.0-0",
           "description": STAND_IN + "the ingress-nginx controller DaemonSet and its IngressClass"},
          INGRESS_NGINX_VALUES,
          {"_helpers.tpl": INGRESS_NGINX_HELPERS, "controller-daemonset.yaml": INGRESS_NGINX_DAEMONSET,
           "controller-ingressclass.yaml": INGRESS_NGINX_CLASS}),
    Chart("podinfo", "6.9.2",
          {"apiVersion": "v1", "appVersion": "6.9.2", "kubeVersion": ">=1.23.0-0",
           "description": STAND_IN + "podinfo's Deployment and Service"},
          PODINFO_VALUES,
          {"_helpers.tpl": PODINFO_HELPERS, "deployment.yaml": PODINFO_DEPLOYMENT, "service.yaml": PODINFO_SERVICE}),
)


def charts_for(config: dict[str, Any]) -> list[Chart]:
    """The charts the stack CONFIG (keys without the project prefix) installs: its ingress chart and each
    helmReleases entry's. A chart the lab has no stand-in for is an error, not a silent skip."""
    from components.config import parse_spec
    from hosts import LabError

    spec = parse_spec(config)
    wanted = [(r.chart, r.version) for r in spec.helm_releases]
    if spec.ingress.controller != "none":
        wanted.insert(0, (spec.ingress.controller, spec.ingress.chart_version))
    known = {(c.name, c.version): c for c in CHARTS}
    missing = [f"{name} {version}" for name, version in wanted if (name, version) not in known]
    if missing:
        raise LabError(f"the lab has no chart for {', '.join(missing)} (tests/lab/charts.py has "
                       f"{', '.join(f'{c.name} {c.version}' for c in CHARTS)})")
    return [known[w] for w in dict.fromkeys(wanted)]


def write_repository(directory: Path, charts: list[Chart]) -> None:
    """index.yaml and the archives (pkg/repo/index.go@v3.18.6: apiVersion v1, entries by chart name, each
    the chart's metadata with urls — relative ones resolve against the repository URL — digest and created)."""
    directory.mkdir(parents=True, exist_ok=True)
    entries: dict[str, list[dict[str, Any]]] = {}
    for chart in charts:
        data = chart.archive()
        (directory / chart.archive_name).write_bytes(data)
        entries.setdefault(chart.name, []).append({
            **chart.chart_yaml(), "urls": [chart.archive_name], "digest": hashlib.sha256(data).hexdigest(),
            "created": "2026-01-01T00:00:00Z"})
    (directory / "index.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v1", "entries": entries, "generated": "2026-01-01T00:00:00Z"}, sort_keys=False))


HAPROXY_CONFIG = """global
    maxconn 64
defaults
    mode tcp
    timeout connect 5s
    timeout client 1m
    timeout server 1m
frontend charts
    bind {address}:{port} ssl crt {pem}
    default_backend files
backend files
    server files {backend}
"""


@dataclass
class ChartRepository:
    """The charts of a stack config served in NAMESPACE at https://ADDRESS:PORT/ with the certificate PEM."""
    namespace: str
    address: str
    pem: Path
    ca: Path
    work: Path
    processes: tuple[subprocess.Popen, ...] = ()

    @property
    def url(self) -> str:
        return f"https://{self.address}:{PORT}"

    def start(self, charts: list[Chart]) -> "ChartRepository":
        from images import serve

        write_repository(self.work / "repo", charts)
        config = self.work / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(address=self.address, port=PORT, pem=self.pem, backend=BACKEND))
        host, port = BACKEND.split(":")
        self.processes = serve(self.namespace, (
            [sys.executable, "-m", "http.server", port, "--bind", host, "--directory", str(self.work / "repo")],
            ["haproxy", "-db", "-f", str(config)]), self.work / "charts.log", self._answers,
            "the lab chart repository")
        return self

    def _answers(self) -> bool:
        return subprocess.run(["ip", "netns", "exec", self.namespace, "curl", "-fsS", "-o", "/dev/null", "--cacert",
                               str(self.ca), f"{self.url}/index.yaml"], capture_output=True).returncode == 0

    def stop(self) -> None:
        from images import stop_processes

        stop_processes(self.processes)
        self.processes = ()


def from_chart_repository(config: dict[str, Any], url: str) -> dict[str, Any]:
    """CONFIG with its ingress chart and every Helm release taken from the repository at URL, as an air-gapped
    site points them at its mirror: `ingress.repo` and `helmReleases[].repo`."""
    config = {**config}
    if (config.get("ingress") or {}).get("controller", "ingress-nginx") != "none":
        config["ingress"] = {**(config.get("ingress") or {}), "repo": url}
    if config.get("helmReleases"):
        config["helmReleases"] = [{**release, "repo": url} for release in config["helmReleases"]]
    return config
