"""The ingress controller as a DaemonSet on the nodes' ports 80/443: ingress-nginx or Traefik."""

from __future__ import annotations

import copy
from typing import Any, Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.config import INGRESS_NGINX_WEBHOOK_PORT, ClusterSpec  # its validation warns that ingress-nginx is retired
from components.helm_releases import chart_reference

# The upstream chart repositories; `ingress.repo` replaces them (a mirror, for air-gapped sites).
UPSTREAM_REPOS = {"ingress-nginx": "https://kubernetes.github.io/ingress-nginx",
                  "traefik": "https://traefik.github.io/charts"}
NAMESPACES = {"ingress-nginx": "ingress-nginx", "traefik": "traefik"}
# Host ports and the host network are forbidden from Pod Security level baseline up (pod-security-admission
# policy/check_hostPorts.go, check_hostNamespaces.go), and the controller uses one or the other.
NAMESPACE_LABELS = {"pod-security.kubernetes.io/enforce": "privileged"}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` over `base`, recursively for mappings; other values are replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def ingress_nginx_values(host_network: bool) -> dict[str, Any]:
    """Bare-metal DaemonSet (ingress-nginx docs/deploy/baremetal.md): node ports 80/443, no LoadBalancer."""
    controller: dict[str, Any] = {
        "kind": "DaemonSet",
        "service": {"enabled": False},
        "publishService": {"enabled": False},
        "reportNodeInternalIp": True,
        "ingressClassResource": {"default": True},
    }
    if host_network:
        controller.update(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet",
                          admissionWebhooks={"port": INGRESS_NGINX_WEBHOOK_PORT})
    else:
        controller["hostPort"] = {"enabled": True}
    return {"controller": controller}


def traefik_values() -> dict[str, Any]:
    """Host ports 80/443 whatever `hostNetwork` says: in the host network Traefik would listen on 8000/8443."""
    return {
        "deployment": {"kind": "DaemonSet"},
        # Host ports cannot be surged: replace pods one node at a time.
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        "ports": {"web": {"hostPort": 80}, "websecure": {"hostPort": 443}},
        "service": {"enabled": False},
        "ingressClass": {"enabled": True, "isDefaultClass": True},
    }


def controller_values(spec: ClusterSpec) -> dict[str, Any]:
    ours = (ingress_nginx_values(spec.ingress.host_network) if spec.ingress.controller == "ingress-nginx"
            else traefik_values())
    return deep_merge(ours, spec.ingress.values)


def ingress_class_name(controller: str, values: Mapping[str, Any]) -> str | None:
    """The IngressClass the chart creates, honouring a name the user set in `ingress.values`."""
    if controller == "ingress-nginx":
        return values["controller"].get("ingressClassResource", {}).get("name") or "nginx"
    if controller == "traefik":
        # The chart's default is its fullname, which is the release name "traefik".
        return values.get("ingressClass", {}).get("name") or "traefik"
    return None


class Ingress(pulumi.ComponentResource):
    def __init__(self, spec: ClusterSpec, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:Ingress", "ingress", None, opts)
        controller = spec.ingress.controller
        values = controller_values(spec) if controller != "none" else {}
        self.class_name = ingress_class_name(controller, values)
        self.owned_namespaces: dict[str, pulumi.Output[str]] = {}
        if controller != "none":
            namespace = k8s.core.v1.Namespace(
                f"{controller}-namespace", metadata={"name": NAMESPACES[controller], "labels": NAMESPACE_LABELS},
                opts=pulumi.ResourceOptions(parent=self))
            self.owned_namespaces[NAMESPACES[controller]] = namespace.metadata["name"]
            chart, repo = chart_reference(controller, spec.ingress.repo or UPSTREAM_REPOS[controller])
            self.release = k8s.helm.v3.Release(
                controller,
                name=controller,
                chart=chart,
                version=spec.ingress.chart_version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo) if repo else None,
                namespace=namespace.metadata["name"],
                values=pulumi.Output.secret(values) if "ingress" in spec.secret_config_keys else values,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"className": self.class_name})
