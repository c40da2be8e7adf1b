"""The delete path of a node: `kubeadm reset` against the node's own runtime, and what reset leaves behind."""

from __future__ import annotations

from components.config import ClusterSpec, Node
from components.kubeadm_config import CRI_SOCKETS, EXTERNAL_ETCD_CA, EXTERNAL_ETCD_CERT, EXTERNAL_ETCD_KEY, PKI_DIR
from components.loadbalancer import endpoint_stages
from components.remote import node_script

# Where the endpoint's steps put their static pods before kubeadm (haproxy-keepalived.sh, kube-vip.sh).
ENDPOINT_MANIFESTS = {
    "haproxy-keepalived": ("/etc/kubernetes/manifests/haproxy.yaml", "/etc/kubernetes/manifests/keepalived.yaml"),
    "kube-vip": ("/etc/kubernetes/manifests/kube-vip.yaml",),
}
# The cluster's identity: the shared CAs and the service-account key pair (what upload-certs hands to
# joining control planes, cmd/kubeadm/app/phases/copycerts/copycerts.go@v1.36.4 certsToTransfer).
CLUSTER_IDENTITY = tuple(f"{PKI_DIR}/{name}" for name in (
    "ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.pub", "sa.key"))
STACKED_ETCD_CA = (f"{PKI_DIR}/etcd/ca.crt", f"{PKI_DIR}/etcd/ca.key")


def reset_script(spec: ClusterSpec, node: Node, template: str = "reset.sh") -> str:
    # An explicit socket: kubeadm reset refuses to guess when a host has more than one runtime.
    return node_script(template, {"NODE_NAME": node.name, "CRI_SOCKET": CRI_SOCKETS[spec.container_runtime]}, node)


def kept_across_reset(spec: ClusterSpec, node: Node) -> str:
    """What a retried init or join keeps across its `kubeadm reset` (kubeadm-retry.sh), one a line:
    what the steps before it placed on `node` under /etc/kubernetes and, on the init node, the
    cluster's identity."""
    files: list[str] = []
    if node.is_control_plane and "before-kubeadm" in endpoint_stages(spec, node):
        files += ENDPOINT_MANIFESTS[spec.control_plane.load_balancer.type]
    if node == spec.first_control_plane:
        files += CLUSTER_IDENTITY
        if spec.etcd_topology == "external":
            files += (EXTERNAL_ETCD_CA, EXTERNAL_ETCD_CERT, EXTERNAL_ETCD_KEY)
        else:
            files += STACKED_ETCD_CA
    return "\n".join(files)


def retry_params(spec: ClusterSpec, node: Node) -> dict[str, str]:
    """init.sh's and join.sh's parameters for a retry (kubeadm-retry.sh)."""
    return {"CRI_SOCKET": CRI_SOCKETS[spec.container_runtime], "KEEP_ACROSS_RESET": kept_across_reset(spec, node)}
