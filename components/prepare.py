"""Phase 1: node preparation — kernel settings, container runtime, pinned Kubernetes packages."""

from __future__ import annotations

import pulumi

from components.config import ClusterSpec, Node
from components.remote import Context, node_command, node_script
from components.scripts import ParamValue


def package_params(spec: ClusterSpec) -> dict[str, ParamValue]:
    """Parameters of packages.sh: the target version and where its packages come from."""
    return {
        "K8S_VERSION": spec.kubernetes_version,
        "K8S_MINOR": spec.minor,
        "K8S_REPO_URL": spec.package_repository("kubernetes", ""),
        "K8S_KEY_FINGERPRINT": spec.package_key_fingerprint("kubernetes"),
        "RUNTIME": spec.container_runtime,
        "CRIO_REPO_URL": spec.package_repository("cri-o", ""),
        "CRIO_KEY_FINGERPRINT": spec.package_key_fingerprint("cri-o"),
    }


class NodePreparation(pulumi.ComponentResource):
    """Everything a machine needs before kubeadm runs on it; all nodes in parallel."""

    def __init__(self, ctx: Context, node: Node, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:NodePreparation", node.name, None, opts)
        spec = ctx.spec
        params = {
            **package_params(spec),
            "IMAGE_REPOSITORY": spec.image_repository,
            "CONTAINERD_REPO_URL": spec.package_repository("containerd", ""),
            "CONTAINERD_KEY_FINGERPRINT": spec.package_key_fingerprint("containerd"),
        }
        self.command = node_command(
            f"{node.name}-prepare", ctx, node,
            create=node_script("prepare.sh", params, node, includes=("packages.sh",)),
            triggers=[node.address],
            # Version changes act through the upgrade steps; a prepared node is never prepared again.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["create"]),
        )
        self.register_outputs({})
