"""Phase 3b: the files kube-apiserver's hardening flags point at, on every control plane before its
kubeadm init/join: the Pod Security admission configuration, the audit policy and the
encryption-at-rest configuration of Secrets.

All three are written whatever `security` says: a control plane that joins later gets the API
server flags of the cluster's ClusterConfiguration (fixed at init), so the files must be there.
The encryption configuration (it holds the key) is made once on the first control plane, printed
there as a secret and handed to the other control planes on stdin.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.config import ClusterSpec, Node
from components.remote import Context, node_command, node_script
from components.scripts import yaml_documents

HARDENING_DIR = "/etc/kubernetes/hardening"
ADMISSION_CONFIG = f"{HARDENING_DIR}/admission.yaml"
AUDIT_POLICY = f"{HARDENING_DIR}/audit-policy.yaml"
ENCRYPTION_CONFIG = f"{HARDENING_DIR}/encryption.yaml"
AUDIT_LOG_DIR = "/var/log/kubernetes/audit"
# kubeadm's cluster CA, with which kube-controller-manager signs the kubelet-serving CSRs
# (--cluster-signing-cert-file: cmd/kubeadm/app/phases/controlplane/manifests.go@v1.36.4); in the
# directory kubeadm mounts into the API server's static pod.
CLUSTER_CA = "/etc/kubernetes/pki/ca.crt"
# Rotation of the audit log (kube-apiserver --audit-log-max*): 30 days, 10 files of 100 MB.
AUDIT_LOG_ROTATION = {"audit-log-maxage": "30", "audit-log-maxbackup": "10", "audit-log-maxsize": "100"}
# Namespaces Pod Security admission leaves alone: kube-proxy, kube-vip, haproxy/keepalived and
# the control plane run there with host networking and privileges.
POD_SECURITY_EXEMPT_NAMESPACES = ("kube-system",)


def admission_configuration(spec: ClusterSpec) -> str:
    """PodSecurity plugin defaults: the configured level enforced, restricted warned and audited."""
    level = spec.security.pod_security
    return yaml_documents({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [{
            "name": "PodSecurity",
            "configuration": {
                "apiVersion": "pod-security.admission.config.k8s.io/v1",
                "kind": "PodSecurityConfiguration",
                "defaults": {
                    "enforce": level, "enforce-version": "latest",
                    "audit": "restricted", "audit-version": "latest",
                    "warn": "restricted", "warn-version": "latest",
                },
                "exemptions": {"usernames": [], "runtimeClasses": [],
                               "namespaces": list(POD_SECURITY_EXEMPT_NAMESPACES)},
            },
        }],
    })


def _resources(group: str, *names: str) -> dict[str, Any]:
    return {"group": group, "resources": list(names)}


def audit_policy() -> str:
    """Who did what, without secret values or the noise of probes and watches (after kubespray's
    and GKE's policies). The first matching rule decides."""
    return yaml_documents({
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version", "/metrics"]},
            {"level": "None", "resources": [_resources("", "events"), _resources("events.k8s.io", "events")]},
            {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch", "list", "get"],
             "resources": [_resources("", "endpoints", "services"), _resources("discovery.k8s.io", "endpointslices")]},
            # Heartbeats and leader election, many per second in a busy cluster.
            {"level": "None", "userGroups": ["system:nodes"], "verbs": ["get", "update", "patch"],
             "resources": [_resources("", "nodes", "nodes/status"), _resources("coordination.k8s.io", "leases")]},
            {"level": "None", "users": ["system:kube-controller-manager", "system:kube-scheduler"],
             "verbs": ["get", "update"], "resources": [_resources("coordination.k8s.io", "leases")]},
            {"level": "None", "verbs": ["watch"]},
            # Bodies of these hold secret values or tokens: who and when only.
            {"level": "Metadata", "resources": [
                _resources("", "secrets", "configmaps", "serviceaccounts/token"),
                _resources("authentication.k8s.io", "tokenreviews")]},
            {"level": "Request", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
            {"level": "Metadata"},
        ],
    })


def _args(**flags: str) -> list[dict[str, str]]:
    return [{"name": name.replace("_", "-"), "value": value} for name, value in flags.items()]


def api_server_args(spec: ClusterSpec) -> list[dict[str, str]]:
    """kube-apiserver extraArgs (kubeadm v1beta4 lists of {name, value}) for `security`."""
    security = spec.security
    args = [] if security.profiling else _args(profiling="false")
    if security.pod_security != "privileged":
        args += _args(admission_control_config_file=ADMISSION_CONFIG)
    if security.audit_log:
        args += _args(audit_policy_file=AUDIT_POLICY, audit_log_path=f"{AUDIT_LOG_DIR}/audit.log")
        args += _args(**{name.replace("-", "_"): value for name, value in AUDIT_LOG_ROTATION.items()})
    if security.encryption_at_rest:
        args += _args(encryption_provider_config=ENCRYPTION_CONFIG)
    if security.kubelet_serving_certificates:
        # logs, exec, port-forward and metrics through the API server verify the kubelet's certificate.
        args += _args(kubelet_certificate_authority=CLUSTER_CA)
    return args


def api_server_volumes(spec: ClusterSpec) -> list[dict[str, Any]]:
    """Host paths the static pod needs for those flags (kubeadm mounts only the PKI and CA dirs)."""
    security = spec.security
    volumes = []
    if security.pod_security != "privileged" or security.audit_log or security.encryption_at_rest:
        volumes.append({"name": "kubeadm-cluster-hardening", "hostPath": HARDENING_DIR, "mountPath": HARDENING_DIR,
                        "readOnly": True, "pathType": "Directory"})
    if security.audit_log:
        volumes.append({"name": "audit-log", "hostPath": AUDIT_LOG_DIR, "mountPath": AUDIT_LOG_DIR,
                        "readOnly": False, "pathType": "DirectoryOrCreate"})
    return volumes


def component_args(spec: ClusterSpec) -> list[dict[str, str]]:
    """kube-controller-manager and kube-scheduler extraArgs."""
    return [] if spec.security.profiling else _args(profiling="false")


class ControlPlaneFiles(pulumi.ComponentResource):
    """The hardening files on one control plane. On the first one, `encryption_configuration` is
    the configuration it printed (a secret); the others take it as `source`."""

    def __init__(self, ctx: Context, node: Node, source: pulumi.Output[str] | None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:ControlPlaneFiles", node.name, None, opts)
        spec = ctx.spec
        first = source is None
        others = sorted(n.name for n in spec.control_planes if n != node)
        self.command = node_command(
            f"{node.name}-control-plane-files", ctx, node,
            create=node_script("control-plane-files.sh", {
                "FIRST": first,
                "ADMISSION_CONFIG": admission_configuration(spec),
                "AUDIT_POLICY": audit_policy(),
            }, node),
            stdin=source,
            secret_stdout=first,
            # The first control plane reads its configuration again when control planes join, so a
            # key rotated by hand (README) reaches them.
            triggers=[node.address, ",".join(others)] if first else [node.address],
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The other control planes' script refuses a stdin that is not an encryption configuration.
        self.encryption_configuration: pulumi.Output[str] = (
            pulumi.Output.secret(self.command.stdout) if first else source)  # type: ignore[assignment]
        self.register_outputs({})
