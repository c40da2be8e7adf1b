"""The delete path of a node: `kubeadm reset` against the node's own runtime, and what reset leaves behind."""

from __future__ import annotations

from components.config import ClusterSpec, Node
from components.kubeadm_config import CRI_SOCKETS
from components.remote import node_script


def reset_script(spec: ClusterSpec, node: Node, template: str = "reset.sh") -> str:
    # An explicit socket: kubeadm reset refuses to guess when a host has more than one runtime.
    return node_script(template, {"NODE_NAME": node.name, "CRI_SOCKET": CRI_SOCKETS[spec.container_runtime]}, node)
