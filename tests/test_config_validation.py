"""SPEC §2: every bad input is rejected before any resource exists, naming key path, value and what is allowed."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from components.config import ConfigError, parse_spec
from harness import BASE_NODES, base_config, run_program


def nodes(*changes: tuple[int, dict[str, Any]], extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    result = copy.deepcopy(BASE_NODES)
    for index, change in changes:
        result[index].update(change)
    return result + (extra or [])


def without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def apply(config: dict[str, Any]) -> dict[str, Any]:
        config.pop(key)
        return config
    return apply


def with_(**overrides: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def apply(config: dict[str, Any]) -> dict[str, Any]:
        config.update(overrides)
        return config
    return apply


WORKERS_ONLY = [{"name": "w1", "address": "10.0.0.21", "roles": ["worker"]}]
ETCD = [{"name": f"etcd{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]} for i in (1, 2, 3)]

# (case id, config change, the key path the error must name, a word of what is allowed)
BAD_CONFIGS = [
    ("no-control-plane", with_(nodes=WORKERS_ONLY), "nodes", "control-plane"),
    ("empty-inventory", with_(nodes=[]), "nodes", "non-empty"),
    ("duplicate-name", with_(nodes=nodes((1, {"name": "cp1"}))), "nodes[1].name", "unique"),
    ("duplicate-address", with_(nodes=nodes((4, {"address": "10.0.0.21"}))), "nodes[4].address", "unique"),
    ("internal-address-clash", with_(nodes=nodes((4, {"internalAddress": "10.0.0.11"}))), "nodes[4].address", "unique"),
    ("ha-without-endpoint", with_(controlPlane={}), "controlPlane.endpoint", "required"),
    ("version-two-parts", with_(kubernetesVersion="1.36"), "kubernetesVersion", "x.y.z"),
    ("version-garbage", with_(kubernetesVersion="latest"), "kubernetesVersion", "x.y.z"),
    ("version-unsupported-minor", with_(kubernetesVersion="1.30.2"), "kubernetesVersion", "1.35"),
    ("pod-cidr-malformed", with_(networking={"podSubnet": "10.244.0.0/33"}), "networking.podSubnet", "CIDR"),
    ("service-cidr-host-bits", with_(networking={"serviceSubnet": "10.96.0.1/12"}), "networking.serviceSubnet", "CIDR"),
    ("subnets-overlap", with_(networking={"podSubnet": "10.96.0.0/16"}), "networking.serviceSubnet", "overlaps"),
    ("pod-subnet-holds-node", with_(networking={"podSubnet": "10.0.0.0/16"}), "networking.podSubnet", "nodes[0].address"),
    ("service-subnet-holds-node", with_(networking={"serviceSubnet": "10.0.0.0/24"}), "networking.serviceSubnet", "outside"),
    ("unknown-role", with_(nodes=nodes((3, {"roles": ["minion"]}))), "nodes[3].roles[0]", "control-plane, worker, etcd"),
    ("unknown-runtime", with_(containerRuntime={"type": "docker"}), "containerRuntime.type", "containerd, cri-o"),
    ("unknown-cni", with_(cni={"type": "calico"}), "cni.type", "flannel"),
    ("unknown-cni-backend", with_(cni={"backend": "udp"}), "cni.backend", "vxlan, host-gw"),
    ("unknown-ingress", with_(ingress={"controller": "haproxy"}), "ingress.controller", "ingress-nginx, traefik, none"),
    ("unknown-lb-type", with_(controlPlane={"endpoint": "k8s-api.internal:6443", "loadBalancer": {"type": "f5"}}),
     "controlPlane.loadBalancer.type", "kube-vip"),
    ("unknown-proxy-mode", with_(networking={"kubeProxyMode": "userspace"}), "networking.kubeProxyMode", "nftables"),
    ("external-etcd-without-members", with_(etcd={"topology": "external"}), "etcd.topology", "odd number"),
    ("external-etcd-even", with_(etcd={"topology": "external"}, nodes=nodes(extra=ETCD[:2])), "etcd.topology", "odd number"),
    ("etcd-role-with-stacked", with_(nodes=nodes(extra=ETCD)), "nodes[5].roles", "etcd.topology: external"),
    ("etcd-role-combined", with_(etcd={"topology": "external"},
                                 nodes=nodes((3, {"roles": ["worker", "etcd"]}), extra=ETCD[:2])),
     "nodes[3].roles", "dedicated"),
    ("kube-vip-without-vip", with_(controlPlane={"endpoint": "10.0.0.100:6443", "loadBalancer": {"type": "kube-vip"}}),
     "controlPlane.loadBalancer.vip", "required"),
    ("vip-is-node-address", with_(controlPlane={"endpoint": "10.0.0.11:6443",
                                                "loadBalancer": {"type": "kube-vip", "vip": "10.0.0.11"}}),
     "controlPlane.loadBalancer.vip", "free address"),
    ("endpoint-not-vip", with_(controlPlane={"endpoint": "k8s-api.internal:6443",
                                             "loadBalancer": {"type": "kube-vip", "vip": "10.0.0.100"}}),
     "controlPlane.endpoint", "VIP 10.0.0.100"),
    ("haproxy-on-6443", with_(controlPlane={"endpoint": "10.0.0.100:6443",
                                            "loadBalancer": {"type": "haproxy-keepalived", "vip": "10.0.0.100"}}),
     "controlPlane.endpoint", "another port"),
    ("endpoint-malformed", with_(controlPlane={"endpoint": "https://api:6443"}), "controlPlane.endpoint", "host:port"),
    ("lb-none-with-ha", with_(controlPlane={"endpoint": "k8s-api.internal:6443", "loadBalancer": {"type": "none"}}),
     "controlPlane.loadBalancer.type", "single control plane"),
    ("helm-without-chart", with_(helmReleases=[{"name": "m", "version": "1.0.0"}]), "helmReleases[0].chart", "required"),
    ("helm-without-version", with_(helmReleases=[{"name": "m", "chart": "m"}]), "helmReleases[0].version", "required"),
    ("helm-version-range", with_(helmReleases=[{"name": "m", "chart": "m", "version": "^3.0.0"}]),
     "helmReleases[0].version", "exact chart version"),
    ("helm-duplicate-name", with_(helmReleases=[{"name": "m", "chart": "m", "version": "1.0.0"},
                                                {"name": "m", "chart": "n", "version": "1.0.0"}]),
     "helmReleases[1].name", "unique"),
    ("missing-ssh-key", without("sshPrivateKey"), "sshPrivateKey", "ssh.agent"),
    ("node-name-uppercase", with_(nodes=nodes((0, {"name": "CP1"}))), "nodes[0].name", "lowercase"),
    ("node-address-malformed", with_(nodes=nodes((2, {"address": "10.0.0.300"}))), "nodes[2].address", "IP address"),
    ("hostname-without-internal", with_(nodes=nodes((2, {"address": "cp3.example.com"}))),
     "nodes[2].internalAddress", "required"),
    ("node-port-out-of-range", with_(nodes=nodes((1, {"port": 70000}))), "nodes[1].port", "1 to 65535"),
    ("host-key-malformed", with_(nodes=nodes((1, {"hostKey": "AAAA"}))), "nodes[1].hostKey", "ssh-ed25519"),
    ("taint-effect", with_(nodes=nodes((3, {"taints": [{"key": "a", "effect": "Sometimes"}]}))),
     "nodes[3].taints[0].effect", "NoSchedule"),
    ("label-key", with_(nodes=nodes((3, {"labels": {"bad key!": "x"}}))), "nodes[3].labels", "label key"),
    ("unknown-node-key", with_(nodes=nodes((3, {"adress": "10.0.0.99"}))), "nodes[3].adress", "unknown key"),
    ("max-unavailable-zero", with_(upgrade={"maxUnavailableWorkers": 0}), "upgrade.maxUnavailableWorkers", "1 to"),
    ("package-mirror-not-url", with_(packageRepositories={"kubernetes": "mirror.local/k8s"}),
     "packageRepositories.kubernetes", "http(s) URL"),
    ("ssh-agent-not-bool", with_(ssh={"agent": "yes"}), "ssh.agent", "true or false"),
    ("mistyped-top-level-key", with_(node=[]), "node", "did you mean nodes?"),
    ("ipv6-pod-subnet", with_(networking={"podSubnet": "fd00:10::/56"}), "networking.podSubnet", "IPv4 only"),
    ("vip-inside-service-subnet", with_(controlPlane={"endpoint": "10.96.0.50:6443", "loadBalancer": {
        "type": "kube-vip", "vip": "10.96.0.50"}}), "networking.serviceSubnet", "controlPlane.loadBalancer.vip"),
    ("helm-without-repo", with_(helmReleases=[{"name": "m", "chart": "metrics-server", "version": "3.13.0"}]),
     "helmReleases[0].repo", "oci://"),
    ("node-user-malformed", with_(nodes=nodes((1, {"user": "Admin User"}))), "nodes[1].user", "Unix user name"),
    ("vip-interface-alias", with_(controlPlane={"endpoint": "10.0.0.100:6443", "loadBalancer": {
        "type": "kube-vip", "vip": "10.0.0.100", "interface": "eth0:1"}}), "controlPlane.loadBalancer.interface", "alias"),
    ("bastion-host-key-malformed", with_(ssh={"bastion": {"host": "203.0.113.10", "hostKey": "AAAA"}}),
     "ssh.bastion.hostKey", "ssh-ed25519"),
]


@pytest.mark.parametrize("change,path,allowed", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_rejected_before_any_resource(change, path, allowed):
    with pytest.raises(ConfigError) as raised:
        run_program(change(base_config()))
    message = str(raised.value)
    assert f"{path}:" in message or f"{path}." in message, message
    assert allowed in message, message
    assert raised.value.run.resources == [], "a resource was registered before validation finished"


def test_error_names_the_bad_value():
    with pytest.raises(ConfigError) as raised:
        run_program(base_config(containerRuntime={"type": "docker"}))
    assert "'docker'" in str(raised.value)


def test_all_problems_are_reported_together():
    config = base_config(kubernetesVersion="banana", networking={"kubeProxyMode": "userspace"})
    with pytest.raises(ConfigError) as raised:
        run_program(config)
    assert len(raised.value.problems) == 2
    assert "kubernetesVersion" in raised.value.problems[0]


def test_config_error_prints_without_traceback():
    import pulumi

    assert issubclass(ConfigError, pulumi.RunError)


def test_ssh_agent_replaces_the_private_key():
    config = base_config(ssh={"user": "ubuntu", "agent": True})
    config.pop("sshPrivateKey")
    assert parse_spec({k: v for k, v in config.items()}, has_private_key=False).ssh.agent


def test_haproxy_with_agent_needs_a_vrrp_password():
    config = base_config(ssh={"agent": True},
                         controlPlane={"endpoint": "10.0.0.100:8443",
                                       "loadBalancer": {"type": "haproxy-keepalived", "vip": "10.0.0.100"}})
    with pytest.raises(ConfigError, match="keepalivedAuthPass"):
        parse_spec(config, has_private_key=False)


def test_even_control_planes_warn_about_quorum():
    spec = parse_spec(base_config(nodes=nodes(extra=[{"name": "cp4", "address": "10.0.0.14",
                                                       "roles": ["control-plane"]}])))
    assert any("quorum" in w for w in spec.warnings)


def test_even_control_planes_with_external_etcd_do_not_warn():
    etcd = [{"name": f"e{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]} for i in range(3)]
    spec = parse_spec(base_config(etcd={"topology": "external"},
                                  nodes=etcd + [dict(n) for n in BASE_NODES if n["name"] != "cp3"]))
    assert not any("quorum" in w for w in spec.warnings)


def test_etcd_role_on_a_stacked_cluster_is_one_problem():
    config = base_config(nodes=[{"name": "cp1", "address": "10.0.0.11", "roles": ["control-plane", "etcd"]}],
                         controlPlane={})
    with pytest.raises(ConfigError) as error:
        parse_spec(config)
    assert "1 problem(s)" in str(error.value) and "etcd.topology: external" in str(error.value)


def test_a_minor_newer_than_tested_warns():
    spec = parse_spec(base_config(kubernetesVersion="1.38.0"))
    assert any("newer than the tested minors" in w for w in spec.warnings)


def test_oci_and_local_charts_need_no_repo():
    releases = [{"name": "a", "chart": "oci://ghcr.io/org/charts/a", "version": "1.0.0"},
                {"name": "b", "chart": "./charts/b", "version": "1.0.0"}]
    assert len(parse_spec(base_config(helmReleases=releases)).helm_releases) == 2


def test_ipvs_warns_deprecation():
    spec = parse_spec(base_config(networking={"kubeProxyMode": "ipvs"}))
    assert any("ipvs" in w and "deprecated" in w for w in spec.warnings)


def test_ingress_nginx_warns_retirement():
    assert any("retired" in w for w in parse_spec(base_config()).warnings)
    assert not any("retired" in w for w in parse_spec(base_config(ingress={"controller": "traefik"})).warnings)


def test_defaults():
    spec = parse_spec({"nodes": [{"name": "solo", "address": "192.168.56.10", "roles": ["control-plane"]}]},
                      stack="lab")
    assert spec.cluster_name == "lab"
    assert spec.control_plane.endpoint == "192.168.56.10:6443"
    assert spec.control_plane.load_balancer.type == "none"
    assert spec.networking.pod_subnet == "10.244.0.0/16"
    assert spec.kubernetes_version == "1.36.4"
    assert spec.ssh.user == "root"


def test_a_single_control_plane_is_reached_at_its_internal_address_and_named_in_sans_by_both():
    spec = parse_spec(base_config(controlPlane={}, nodes=[
        {"name": "cp1", "address": "203.0.113.5", "internalAddress": "10.0.1.11", "roles": ["control-plane"]}]))
    assert spec.control_plane.endpoint == "10.0.1.11:6443"
    assert set(spec.control_plane.cert_sans) == {"10.0.1.11", "203.0.113.5"}


def test_a_missing_endpoint_with_a_vip_suggests_the_vip():
    config = base_config(controlPlane={"loadBalancer": {"type": "haproxy-keepalived", "vip": "10.0.0.100"}})
    with pytest.raises(ConfigError, match=r"e\.g\. 10\.0\.0\.100:8443 \(the VIP\)"):
        parse_spec(config)


def test_endpoint_and_vip_are_cert_sans():
    spec = parse_spec(base_config(controlPlane={"endpoint": "10.0.0.100:6443", "certSANs": ["api.example.com"],
                                                "loadBalancer": {"type": "kube-vip", "vip": "10.0.0.100"}}))
    assert spec.control_plane.cert_sans == ("api.example.com", "10.0.0.100")


def test_haproxy_endpoint_defaults_to_port_8443():
    spec = parse_spec(base_config(controlPlane={"endpoint": "10.0.0.100",
                                                "loadBalancer": {"type": "haproxy-keepalived", "vip": "10.0.0.100"}}))
    assert spec.control_plane.endpoint == "10.0.0.100:8443"


def test_even_number_of_control_planes_is_allowed():
    parse_spec(base_config(nodes=nodes((2, {"roles": ["worker"]}))))


def test_a_load_balancer_image_that_is_no_image_reference_is_refused_naming_the_key():
    config = base_config(controlPlane={"endpoint": "10.0.0.100:6443", "loadBalancer": {
        "type": "kube-vip", "vip": "10.0.0.100", "images": {"kubeVip": "mirror.internal/kube vip:v1"}}})
    with pytest.raises(ConfigError) as raised:
        parse_spec(config)
    assert "controlPlane.loadBalancer.images.kubeVip: 'mirror.internal/kube vip:v1'" in str(raised.value)
