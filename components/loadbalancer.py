"""Phase 2: the HA control-plane endpoint, served from the control planes themselves.

- kube-vip: a static pod on every control plane. On the init node it goes in before `kubeadm init`
  with super-admin.conf (admin.conf has no RBAC until init made it, kube-vip#684) and is switched to
  admin.conf after init; on the other control planes it goes in after their join.
- haproxy-keepalived: keepalived (VRRP) and haproxy (every API server as backend) as static pods on
  every control plane before its init/join, per kubeadm's ha-considerations; haproxy listens on the
  endpoint port, which is not 6443. The VRRP password travels through stdin only.
- external / none: nothing runs; the endpoint is the user's load balancer or the single control plane.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi

from components.config import API_SERVER_PORT, ClusterSpec, Node
from components.remote import Context, node_command, node_script
from components.scripts import COMPONENTS_DIR, yaml_documents

CONFIG_HASH_ANNOTATION = "kubeadm-cluster/config-hash"


def _static_pod(name: str, container: dict[str, Any], volumes: list[dict[str, Any]],
                annotations: dict[str, str] | None = None, **spec: Any) -> str:
    metadata: dict[str, Any] = {"name": name, "namespace": "kube-system"}
    if annotations:
        metadata["annotations"] = annotations
    return yaml_documents({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": [container], "hostNetwork": True, "volumes": volumes, **spec},
    })


def kube_vip_manifest(spec: ClusterSpec, kubeconfig_path: str) -> str:
    """What `kube-vip manifest pod --interface @INTERFACE@ --address VIP --controlplane --arp --leaderElection
    --k8sConfigPath PATH` of the configured kube-vip image's version prints (kube-vip pkg/kubevip/config_generator.go@v1.2.3,
    generatePodSpec; flag defaults in cmd/kube-vip.go@v1.2.3); @INTERFACE@ is filled on the node.

    `address` with `vip_subnet`: since v1.2.0 the manager exits when `vip_address` comes without
    `vip_subnet` (config_manager.go CheckSubnetExists, kube-vip#1500). `vip_nodename` from the pod's
    node name is the leader-election identity (else the hostname, which can differ from the node name).
    """
    env: list[dict[str, Any]] = [
        {"name": "vip_arp", "value": "true"},
        {"name": "port", "value": str(API_SERVER_PORT)},
        {"name": "vip_nodename", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "vip_interface", "value": "@INTERFACE@"},
        {"name": "vip_subnet", "value": "32"},  # cmd/kube-vip.go GenerateCidrRange for an IPv4 address
        {"name": "dns_mode", "value": "first"},
        {"name": "dhcp_mode", "value": "ipv4"},
        {"name": "cp_enable", "value": "true"},
        {"name": "cp_namespace", "value": "kube-system"},
        {"name": "vip_leaderelection", "value": "true"},
        {"name": "vip_leasename", "value": "plndr-cp-lock"},
        {"name": "vip_leaseduration", "value": "15"},
        {"name": "vip_renewdeadline", "value": "10"},
        {"name": "vip_retryperiod", "value": "2"},
        {"name": "address", "value": spec.control_plane.load_balancer.vip},
        {"name": "prometheus_server", "value": ":2112"},
    ]
    return _static_pod(
        "kube-vip",
        {
            "name": "kube-vip",
            "image": spec.control_plane.load_balancer.kube_vip_image,
            "imagePullPolicy": "IfNotPresent",
            "args": ["manager"],
            "env": env,
            "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}},
            "volumeMounts": [{"name": "kubeconfig", "mountPath": "/etc/kubernetes/admin.conf"}],
        },
        [{"name": "kubeconfig", "hostPath": {"path": kubeconfig_path}}],
        hostAliases=[{"ip": "127.0.0.1", "hostnames": ["kubernetes"]}],
    )


def haproxy_config(spec: ClusterSpec) -> str:
    port = spec.control_plane.endpoint_port
    servers = "".join(
        f"    server {n.name} {n.internal_address}:{API_SERVER_PORT} check verify none\n" for n in spec.control_planes)
    return (
        "global\n    log stdout format raw local0\n"
        "defaults\n    mode tcp\n    log global\n    option tcplog\n    retries 1\n"
        "    timeout connect 5s\n    timeout client 35s\n    timeout server 35s\n    timeout check 10s\n"
        f"frontend apiserver\n    bind *:{port}\n    mode tcp\n    option tcplog\n    default_backend apiserverbackend\n"
        "backend apiserverbackend\n    option httpchk\n    http-check connect ssl\n"
        "    http-check send meth GET uri /healthz\n    http-check expect status 200\n"
        "    mode tcp\n    balance roundrobin\n" + servers
    )


def vrrp_router_id(cluster_name: str) -> int:
    """A stable VRRP router id per cluster (1–255), so two clusters on one LAN do not collide by default."""
    return int(hashlib.sha256(cluster_name.encode()).hexdigest(), 16) % 255 + 1


def keepalived_config(spec: ClusterSpec, node: Node) -> str:
    """keepalived.conf with @INTERFACE@ and @AUTH_PASS@ left for the node; the first control plane is MASTER.

    Priorities as kubeadm's docs/ha-considerations.md: MASTER 101, every BACKUP 100. A failing check
    subtracts its weight 2 (keepalived.conf(5) "VRRP script(s)"), so a failing MASTER (99) drops below
    every healthy BACKUP; with backups at 100 - index it tied or stayed above them.
    """
    state, priority = ("MASTER", 101) if node == spec.first_control_plane else ("BACKUP", 100)
    return (
        "global_defs {\n    router_id LVS_DEVEL\n}\n"
        "vrrp_script check_apiserver {\n    script \"/etc/keepalived/check_apiserver.sh\"\n"
        "    interval 3\n    weight -2\n    fall 10\n    rise 2\n}\n"
        "vrrp_instance VI_1 {\n"
        f"    state {state}\n    interface @INTERFACE@\n"
        f"    virtual_router_id {vrrp_router_id(spec.cluster_name)}\n    priority {priority}\n"
        "    authentication {\n        auth_type PASS\n        auth_pass @AUTH_PASS@\n    }\n"
        f"    virtual_ipaddress {{\n        {spec.control_plane.load_balancer.vip}\n    }}\n"
        "    track_script {\n        check_apiserver\n    }\n}\n"
    )


def _config_hash(*parts: str) -> dict[str, str]:
    """An annotation that changes with the config files, so the kubelet restarts the pod when they change."""
    return {CONFIG_HASH_ANNOTATION: hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]}


def haproxy_keepalived_params(spec: ClusterSpec, node: Node) -> dict[str, str | None]:
    lb = spec.control_plane.load_balancer
    port = spec.control_plane.endpoint_port
    haproxy_cfg = haproxy_config(spec)
    keepalived_conf = keepalived_config(spec, node)
    check = (COMPONENTS_DIR / "keepalived-check-apiserver.sh").read_text().replace("@PORT@", str(port))
    haproxy_pod = _static_pod(
        "haproxy",
        {
            "name": "haproxy",
            "image": lb.haproxy_image,
            "livenessProbe": {"failureThreshold": 8, "httpGet": {
                "host": "localhost", "path": "/healthz", "port": port, "scheme": "HTTPS"}},
            "volumeMounts": [{"name": "haproxyconf", "mountPath": "/usr/local/etc/haproxy/haproxy.cfg",
                              "readOnly": True}],
        },
        [{"name": "haproxyconf", "hostPath": {"path": "/etc/haproxy/haproxy.cfg", "type": "FileOrCreate"}}],
        annotations=_config_hash(haproxy_cfg),
    )
    keepalived_pod = _static_pod(
        "keepalived",
        {
            "name": "keepalived",
            "image": lb.keepalived_image,
            "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_BROADCAST", "NET_RAW"]}},
            "volumeMounts": [
                {"name": "config", "mountPath": "/usr/local/etc/keepalived/keepalived.conf"},
                {"name": "check", "mountPath": "/etc/keepalived/check_apiserver.sh"},
            ],
        },
        [
            {"name": "config", "hostPath": {"path": "/etc/keepalived/keepalived.conf"}},
            {"name": "check", "hostPath": {"path": "/etc/keepalived/check_apiserver.sh"}},
        ],
        annotations=_config_hash(keepalived_conf, check),
    )
    return {
        "VIP": lb.vip,
        "VIP_INTERFACE": lb.interface,
        "PORT": str(port),
        "HAPROXY_CFG": haproxy_cfg,
        "HAPROXY_MANIFEST": haproxy_pod,
        "KEEPALIVED_CONF": keepalived_conf,
        "KEEPALIVED_CHECK": check,
        "KEEPALIVED_MANIFEST": keepalived_pod,
    }


class ControlPlaneEndpoint(pulumi.ComponentResource):
    """The endpoint's static pods on one control plane.

    `stage` is "before-kubeadm" (haproxy-keepalived everywhere, kube-vip on the init node with
    super-admin.conf) or "after-kubeadm" (kube-vip with admin.conf).
    """

    def __init__(self, ctx: Context, node: Node, stage: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:ControlPlaneEndpoint", f"{node.name}-{stage}", None, opts)
        spec = ctx.spec
        lb = spec.control_plane.load_balancer
        stdin = None
        if lb.type == "haproxy-keepalived":
            script = node_script("haproxy-keepalived.sh", haproxy_keepalived_params(spec, node), node)
            stdin = ctx.keepalived_auth_pass
        else:
            kubeconfig = "/etc/kubernetes/super-admin.conf" if stage == "before-kubeadm" else "/etc/kubernetes/admin.conf"
            script = node_script("kube-vip.sh", {"VIP": lb.vip, "VIP_INTERFACE": lb.interface,
                                                 "MANIFEST": kube_vip_manifest(spec, kubeconfig)}, node)
        self.command = node_command(f"{node.name}-{lb.type}-{stage}", ctx, node, create=script, stdin=stdin,
                                    triggers=[node.address], opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


def endpoint_stages(spec: ClusterSpec, node: Node) -> tuple[str, ...]:
    """Which ControlPlaneEndpoint stages a control plane gets, in order."""
    lb_type = spec.control_plane.load_balancer.type
    if lb_type == "haproxy-keepalived":
        return ("before-kubeadm",)
    if lb_type == "kube-vip":
        return ("before-kubeadm", "after-kubeadm") if node == spec.first_control_plane else ("after-kubeadm",)
    return ()

