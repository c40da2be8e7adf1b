"""The kubelet stand-in (tests/lab/standins/kubelet.py) gives a container what the kubelet v1.36.4 gives it from its
pod: env from `valueFrom.fieldRef` and a host-network pod's hostAliases in its /etc/hosts. kube-vip's static pod needs
both: `vip_nodename` from spec.nodeName, and `kubernetes` → 127.0.0.1 to reach its local API server
(kube-vip pkg/manager/manager.go@v1.2.2: `kubernetes:<port>` when the VIP may not be up yet)."""

from __future__ import annotations

import json
import socket
from pathlib import Path


POD = {"metadata": {"name": "kube-vip", "namespace": "kube-system"},
       "spec": {"hostNetwork": True, "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["kubernetes"]}]}}
CONTAINER = {"name": "kube-vip", "command": ["/kube-vip"], "args": ["manager"], "env": [
    {"name": "vip_nodename", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    {"name": "address", "value": "198.18.0.100"}]}


def container_spec(kubelet_standin, tmp_path, pod) -> dict:
    (tmp_path / "image").mkdir(exist_ok=True)
    _, argv, _ = kubelet_standin.container_process(pod, CONTAINER, tmp_path / "image", "unix:///dev/null")
    return json.loads(argv[-1])


def test_env_from_field_ref_spec_node_name_is_the_node(kubelet_standin, tmp_path):
    env = container_spec(kubelet_standin, tmp_path, POD)["env"]
    assert (env["vip_nodename"], env["address"]) == (socket.gethostname(), "198.18.0.100")


def test_a_host_network_pods_hosts_file_is_the_nodes_plus_its_host_aliases(kubelet_standin, tmp_path):
    mounts = {target: source for source, target, _ in container_spec(kubelet_standin, tmp_path, POD)["mounts"]}
    hosts = Path(mounts["/etc/hosts"]).read_text()
    assert hosts.startswith("# Kubernetes-managed hosts file (host network).\n" + Path("/etc/hosts").read_text())
    assert hosts.endswith("\n# Entries added by HostAliases.\n127.0.0.1\tkubernetes\n")


def test_a_pod_without_host_aliases_gets_the_nodes_hosts_file(kubelet_standin, tmp_path):
    pod = {**POD, "spec": {"hostNetwork": True}}
    mounts = {target: source for source, target, _ in container_spec(kubelet_standin, tmp_path, pod)["mounts"]}
    assert mounts["/etc/hosts"] == "/etc/hosts"
