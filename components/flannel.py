"""flannel from the pinned upstream manifest, parsed and created as typed Kubernetes resources."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Callable

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.config import FLANNEL_VERSION, ClusterSpec

MANIFEST = Path(__file__).parent / "flannel" / f"kube-flannel-{FLANNEL_VERSION}.yml"

# The kinds the manifest holds, in the order they must exist.
TYPED_KINDS: dict[tuple[str, str], Callable[..., pulumi.CustomResource]] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): k8s.rbac.v1.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): k8s.rbac.v1.ClusterRoleBinding,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("apps/v1", "DaemonSet"): k8s.apps.v1.DaemonSet,
}


def load_manifest() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def customize(documents: list[dict[str, Any]], spec: ClusterSpec) -> list[dict[str, Any]]:
    """The manifest with the pod network, backend and interface of the stack config."""
    documents = copy.deepcopy(documents)
    for doc in documents:
        if doc["kind"] == "ConfigMap":
            net_conf = json.loads(doc["data"]["net-conf.json"])
            net_conf["Network"] = spec.networking.pod_subnet
            net_conf["Backend"]["Type"] = spec.cni.backend
            doc["data"]["net-conf.json"] = json.dumps(net_conf, indent=2) + "\n"
        if doc["kind"] == "DaemonSet" and spec.cni.iface:
            flanneld = next(c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "kube-flannel")
            flanneld["args"].append(f"--iface={spec.cni.iface}")
    return documents


def namespace_name(documents: list[dict[str, Any]]) -> str:
    return next(doc["metadata"]["name"] for doc in documents if doc["kind"] == "Namespace")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def typed_resource(doc: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """A manifest document as its typed resource class (top-level fields become keyword arguments)."""
    cls = TYPED_KINDS.get((doc["apiVersion"], doc["kind"]))
    if cls is None:
        raise ValueError(f"the flannel manifest has an unexpected {doc['apiVersion']} {doc['kind']}")
    fields = {_snake(key): value for key, value in doc.items() if key not in ("apiVersion", "kind")}
    return cls(f"flannel-{doc['kind'].lower()}-{doc['metadata']['name']}", **fields, opts=opts)


class Flannel(pulumi.ComponentResource):
    def __init__(self, spec: ClusterSpec, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:Flannel", "flannel", None, opts)
        documents = customize(load_manifest(), spec)
        created: dict[str, pulumi.CustomResource] = {}
        previous: list[pulumi.Resource] = []
        for rank in TYPED_KINDS:
            batch = [doc for doc in documents if (doc["apiVersion"], doc["kind"]) == rank]
            made = [typed_resource(doc, pulumi.ResourceOptions(parent=self, depends_on=previous)) for doc in batch]
            created.update({doc["kind"]: resource for doc, resource in zip(batch, made)})
            previous = made or previous
        namespace = created["Namespace"]
        self.owned_namespaces = {namespace_name(documents): namespace.metadata["name"]}
        # pulumi-kubernetes awaits a DaemonSet's rollout: depending on it means "the CNI is ready".
        self.daemon_set = created["DaemonSet"]
        self.register_outputs({})
