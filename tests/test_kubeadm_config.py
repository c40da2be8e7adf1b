"""The kubeadm v1beta4 documents rendered from the spec (what `kubeadm init --config` reads)."""

from __future__ import annotations

import yaml

from components.config import parse_spec
from components.kubeadm_config import init_configuration, join_configuration
from harness import base_config, inner_script, run_program


def documents(config: dict) -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all(init_configuration(parse_spec(config)))}


def test_init_documents_and_api_versions():
    docs = documents(base_config())
    assert {kind: d["apiVersion"] for kind, d in docs.items()} == {
        "InitConfiguration": "kubeadm.k8s.io/v1beta4",
        "ClusterConfiguration": "kubeadm.k8s.io/v1beta4",
        "KubeletConfiguration": "kubelet.config.k8s.io/v1beta1",
        "KubeProxyConfiguration": "kubeproxy.config.k8s.io/v1alpha1",
    }


def test_cluster_configuration_from_the_spec():
    config = base_config(networking={"podSubnet": "10.200.0.0/16", "serviceSubnet": "10.100.0.0/16",
                                     "dnsDomain": "k8s.internal"},
                         imageRepository="registry.cn-hangzhou.aliyuncs.com/google_containers",
                         controlPlane={"endpoint": "k8s-api.internal:6443", "certSANs": ["api.example.com"]})
    cluster = documents(config)["ClusterConfiguration"]
    assert cluster["kubernetesVersion"] == "v1.36.4"
    assert cluster["controlPlaneEndpoint"] == "k8s-api.internal:6443"
    assert cluster["networking"] == {"podSubnet": "10.200.0.0/16", "serviceSubnet": "10.100.0.0/16",
                                     "dnsDomain": "k8s.internal"}
    assert cluster["imageRepository"] == "registry.cn-hangzhou.aliyuncs.com/google_containers"
    assert cluster["apiServer"]["certSANs"] == ["api.example.com", "k8s-api.internal"]
    assert cluster["clusterName"] == "dev"
    assert cluster["etcd"] == {"local": {"dataDir": "/var/lib/etcd"}}


def test_init_configuration_registers_the_first_control_plane():
    config = base_config()
    config["nodes"][0]["internalAddress"] = "10.0.1.11"
    init = documents(config)["InitConfiguration"]
    assert init["localAPIEndpoint"] == {"advertiseAddress": "10.0.1.11", "bindPort": 6443}
    registration = init["nodeRegistration"]
    assert registration["name"] == "cp1"
    assert registration["criSocket"] == "unix:///run/containerd/containerd.sock"
    assert registration["kubeletExtraArgs"] == [{"name": "node-ip", "value": "10.0.1.11"}]
    assert registration["taints"] == [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]


def test_no_secret_in_init_documents():
    init = documents(base_config())["InitConfiguration"]
    assert "bootstrapTokens" not in init and "certificateKey" not in init


def test_schedulable_control_planes_have_an_empty_taint_list():
    config = base_config(controlPlane={"endpoint": "k8s-api.internal:6443", "schedulable": True})
    assert documents(config)["InitConfiguration"]["nodeRegistration"]["taints"] == []


def test_kubelet_uses_systemd_cgroups_and_kube_proxy_the_configured_mode():
    docs = documents(base_config(networking={"kubeProxyMode": "nftables"}))
    assert docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    assert docs["KubeProxyConfiguration"]["mode"] == "nftables"


def test_cri_o_socket():
    docs = documents(base_config(containerRuntime={"type": "cri-o"}))
    assert docs["InitConfiguration"]["nodeRegistration"]["criSocket"] == "unix:///var/run/crio/crio.sock"


def test_worker_join_has_its_taints_and_no_control_plane_section():
    spec = parse_spec(base_config())
    worker = next(n for n in spec.nodes if n.name == "w2")
    document = yaml.safe_load(join_configuration(spec, worker, {"token": "t", "caCertHash": "h", "certificateKey": "k"}))
    assert "controlPlane" not in document
    assert document["nodeRegistration"]["taints"] == [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]


def test_init_script_carries_the_config_and_upload_certs():
    script = inner_script(run_program(base_config()).named("cp1-init").plain("create"))
    assert "kubeadm init --config \"$STATE_DIR/init.yaml\" --upload-certs --skip-token-print" in script
    assert "controlPlaneEndpoint: k8s-api.internal:6443" in script


def test_prepare_script_pins_the_version_and_uses_the_mirror():
    config = base_config(packageRepositories={"kubernetes": "https://mirror.example/k8s/v{minor}/deb/"},
                         imageRepository="mirror.example/k8s")
    script = inner_script(run_program(config).named("w1-prepare").plain("create"))
    assert "K8S_VERSION=1.36.4\n" in script
    assert "K8S_REPO_URL=https://mirror.example/k8s/v1.36/deb/\n" in script
    assert "IMAGE_REPOSITORY=mirror.example/k8s\n" in script
    assert "apt-mark hold" in script and "swapoff -a" in script and "br_netfilter" in script


def test_external_etcd_endpoints_in_cluster_configuration():
    config = base_config(etcd={"topology": "external"}, nodes=base_config()["nodes"] + [
        {"name": f"etcd{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]} for i in (1, 2, 3)])
    etcd = documents(config)["ClusterConfiguration"]["etcd"]
    assert etcd == {"external": {
        "endpoints": ["https://10.0.0.31:2379", "https://10.0.0.32:2379", "https://10.0.0.33:2379"],
        "caFile": "/etc/kubernetes/pki/etcd/ca.crt",
        "certFile": "/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "keyFile": "/etc/kubernetes/pki/apiserver-etcd-client.key"}}
