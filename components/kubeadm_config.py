"""kubeadm v1beta4 configuration documents rendered from the spec.

Init documents hold no secret (kubeadm mints the first token itself);
JoinConfiguration carries the join material and therefore only ever travels through stdin.
"""

from __future__ import annotations

from typing import Any, Mapping

from components.config import API_SERVER_PORT, CONTROL_PLANE_TAINT_KEY, ClusterSpec, Node, Taint
from components.control_plane_files import api_server_args, api_server_volumes, component_args
from components.scripts import yaml_documents

KUBEADM_API = "kubeadm.k8s.io/v1beta4"
PKI_DIR = "/etc/kubernetes/pki"
EXTERNAL_ETCD_CA = f"{PKI_DIR}/etcd/ca.crt"
EXTERNAL_ETCD_CERT = f"{PKI_DIR}/apiserver-etcd-client.crt"
EXTERNAL_ETCD_KEY = f"{PKI_DIR}/apiserver-etcd-client.key"
# kubeadm init always creates a bootstrap token: an empty bootstrapTokens list is defaulted to one of 24 h
# (apis/kubeadm/v1beta4/defaults.go SetDefaults_BootstrapTokens, apis/bootstraptoken/v1/defaults.go,
# @v1.36.4), and its bootstrap-token phase, which also writes cluster-info and the bootstrap RBAC rules,
# cannot be skipped. Nothing uses that token: joins get their own (join-material.sh), and init's later
# phases (kubelet-finalize, addon, show-join-command) do not read it (cmd/init.go). So it is short-lived and
# described, and join-cleanup.sh deletes it by that description.
INIT_TOKEN_DESCRIPTION = "kubeadm-cluster init, unused, deleted after the joins"
INIT_TOKEN_TTL = "10m0s"
CRI_SOCKETS = {
    "containerd": "unix:///run/containerd/containerd.sock",
    "cri-o": "unix:///var/run/crio/crio.sock",
}


def node_taints(spec: ClusterSpec, node: Node) -> list[Taint]:
    """The node's taints as kubeadm registers them: control planes keep theirs unless schedulable."""
    taints = list(node.taints)
    if node.is_control_plane and not spec.control_plane.schedulable:
        taints.insert(0, Taint(CONTROL_PLANE_TAINT_KEY, "", "NoSchedule"))
    return taints


def node_registration(spec: ClusterSpec, node: Node) -> dict[str, Any]:
    return {
        "name": node.name,
        "criSocket": CRI_SOCKETS[spec.container_runtime],
        # Always explicit: an empty list means "no taints", while an absent one adds the control-plane taint.
        "taints": [t.kubeadm() for t in node_taints(spec, node)],
        "kubeletExtraArgs": [{"name": "node-ip", "value": node.internal_address}],
    }


def _etcd(spec: ClusterSpec) -> dict[str, Any]:
    if spec.etcd_topology == "external":
        return {"external": {
            "endpoints": [f"https://{n.internal_address}:2379" for n in spec.etcd_nodes],
            "caFile": EXTERNAL_ETCD_CA,
            "certFile": EXTERNAL_ETCD_CERT,
            "keyFile": EXTERNAL_ETCD_KEY,
        }}
    return {"local": {"dataDir": "/var/lib/etcd"}}


def cluster_configuration(spec: ClusterSpec) -> dict[str, Any]:
    return {
        "apiVersion": KUBEADM_API,
        "kind": "ClusterConfiguration",
        "clusterName": spec.cluster_name,
        "kubernetesVersion": f"v{spec.kubernetes_version}",
        "controlPlaneEndpoint": spec.control_plane.endpoint,
        "imageRepository": spec.image_repository,
        "networking": {
            "podSubnet": spec.networking.pod_subnet,
            "serviceSubnet": spec.networking.service_subnet,
            "dnsDomain": spec.networking.dns_domain,
        },
        "apiServer": {"certSANs": list(spec.control_plane.cert_sans), "extraArgs": api_server_args(spec),
                      "extraVolumes": api_server_volumes(spec)},
        "controllerManager": {"extraArgs": component_args(spec)},
        "scheduler": {"extraArgs": component_args(spec)},
        "etcd": _etcd(spec),
    }


def init_configuration(spec: ClusterSpec) -> str:
    """InitConfiguration + ClusterConfiguration + KubeletConfiguration + KubeProxyConfiguration."""
    node = spec.first_control_plane
    return yaml_documents(
        {
            "apiVersion": KUBEADM_API,
            "kind": "InitConfiguration",
            "bootstrapTokens": [{"description": INIT_TOKEN_DESCRIPTION, "ttl": INIT_TOKEN_TTL}],
            "localAPIEndpoint": {"advertiseAddress": node.internal_address, "bindPort": API_SERVER_PORT},
            "nodeRegistration": node_registration(spec, node),
        },
        cluster_configuration(spec),
        {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "cgroupDriver": "systemd",
            # Preparation sets the kernel settings the kubelet would otherwise change itself.
            "protectKernelDefaults": spec.security.protect_kernel_defaults,
            # The serving certificate comes from a CSR (signer kubernetes.io/kubelet-serving) the program's
            # approver checks (kubelet_serving.py) instead of being self-signed (pkg/kubelet/kubelet.go@v1.36.4).
            "serverTLSBootstrap": spec.security.kubelet_serving_certificates,
        },
        {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": spec.networking.kube_proxy_mode,
        },
    )


UPLOAD_CERTS_VERSION = "@KUBERNETES_VERSION@"


def upload_certs_configuration(spec: ClusterSpec) -> str:
    """The config `kubeadm init phase upload-certs` reads on the first control plane.

    Without --config the phase uploads the certificate set of kubeadm's defaults, i.e. local etcd's,
    and overwrites the external-etcd set init uploaded (cmd/kubeadm/app/cmd/init.go newInitData →
    LoadOrDefaultInitConfiguration; phases/copycerts/copycerts.go certsToTransfer, @v1.36.4); the
    default kubernetesVersion "stable-1" is also looked up online. Only etcd decides the set; the
    version is filled on the node with kubeadm's own (@KUBERNETES_VERSION@), because kubeadm refuses
    a version older than its minor - 1 (util/config/common.go NormalizeKubernetesVersion) and the
    init-time version goes stale with upgrades.
    """
    node = spec.first_control_plane
    return yaml_documents(
        {
            "apiVersion": KUBEADM_API,
            "kind": "InitConfiguration",
            "localAPIEndpoint": {"advertiseAddress": node.internal_address, "bindPort": API_SERVER_PORT},
            "nodeRegistration": {"name": node.name, "criSocket": CRI_SOCKETS[spec.container_runtime]},
        },
        {
            "apiVersion": KUBEADM_API,
            "kind": "ClusterConfiguration",
            "kubernetesVersion": UPLOAD_CERTS_VERSION,
            "etcd": _etcd(spec),
        },
    )


def join_configuration(spec: ClusterSpec, node: Node, material: Mapping[str, str]) -> str:
    """JoinConfiguration with the join material in it: a secret, for stdin only."""
    document: dict[str, Any] = {
        "apiVersion": KUBEADM_API,
        "kind": "JoinConfiguration",
        "discovery": {"bootstrapToken": {
            "apiServerEndpoint": spec.control_plane.endpoint,
            "token": material["token"],
            "caCertHashes": [material["caCertHash"]],
        }},
        "nodeRegistration": node_registration(spec, node),
    }
    if node.is_control_plane:
        document["controlPlane"] = {
            "localAPIEndpoint": {"advertiseAddress": node.internal_address, "bindPort": API_SERVER_PORT},
            "certificateKey": material["certificateKey"],
        }
    return yaml_documents(document)
