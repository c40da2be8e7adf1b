"""The lab's real stacked-etcd HA (issue 12), `real-ha-stacked.yaml`: three control planes joined by the real kubeadm
(control-plane certificates uploaded, each adding its member to the real etcd), then, in order on one bring-up, a
control plane removed (its member gone from the real member list, its machine reset) and added back. Every fact
asserted is read from the real programs: etcdctl's member list, the API server (kubectl with admin.conf), pgrep on the
hosts, the engine's preview."""

from __future__ import annotations

import pytest

from scenario import lab_cluster

pytestmark = pytest.mark.lab

CONTROL_PLANES = ["cp1", "cp2", "cp3"]
LEAVING = "cp3"  # not the first: the program refuses to remove the control plane that ran kubeadm init


@pytest.fixture(scope="module")
def stacked():
    with lab_cluster("real-ha-stacked.yaml") as cluster:
        config = cluster.config()
        result = cluster.up(config)
        assert result.error is None, result.error
        cluster.times = {"up": result.seconds}
        yield cluster, config
        print("stacked HA times (s):", {step: round(seconds) for step, seconds in cluster.times.items()})


def control_plane_pods(cluster, component: str) -> list[str]:
    return sorted(p["spec"]["nodeName"]
                  for p in cluster.kubectl(f"get pods -n kube-system -l component={component}")["items"])


def test_three_control_planes_come_up_each_with_its_etcd_member(stacked):
    cluster, config = stacked
    assert cluster.problems(config) == []
    for host in CONTROL_PLANES:
        assert cluster.etcd_member_names(host) == CONTROL_PLANES
    assert control_plane_pods(cluster, "kube-apiserver") == CONTROL_PLANES
    assert control_plane_pods(cluster, "etcd") == CONTROL_PLANES


def test_the_joined_api_servers_use_every_etcd_member(stacked):
    """kubeadm's stacked join points each API server at its local member (--etcd-servers=https://127.0.0.1:2379);
    the member list above is the real cluster the three of them share."""
    cluster, _ = stacked
    pod = cluster.kubectl(f"get pod -n kube-system kube-apiserver-{LEAVING}")
    assert "--etcd-servers=https://127.0.0.1:2379" in pod["spec"]["containers"][0]["command"]


@pytest.fixture(scope="module")
def removed(stacked):
    cluster, config = stacked
    result = cluster.up(cluster.config(without=(LEAVING,)))
    assert result.error is None, result.error
    cluster.times[f"remove {LEAVING}"] = result.seconds
    return cluster, config


def test_removing_a_control_plane_removes_its_etcd_member_and_node(removed):
    cluster, _ = removed
    remaining = [cp for cp in CONTROL_PLANES if cp != LEAVING]
    assert cluster.etcd_member_names("cp1") == remaining
    assert sorted(n["metadata"]["name"] for n in cluster.kubectl("get nodes")["items"]) == remaining


def test_the_removed_control_plane_is_reset_and_its_processes_end(removed):
    cluster, _ = removed
    assert cluster.lab.ssh(LEAVING, "sudo find /etc/kubernetes/manifests /var/lib/etcd -mindepth 1 2>/dev/null || true"
                           ).stdout.strip() == ""
    assert cluster.control_plane_processes_left(LEAVING) == ""


@pytest.fixture(scope="module")
def rejoined(removed):
    cluster, config = removed
    result = cluster.up(config)
    assert result.error is None, result.error
    cluster.times[f"add {LEAVING} again"] = result.seconds
    return cluster, config


def test_the_removed_control_plane_joins_again_with_a_new_member(rejoined):
    cluster, config = rejoined
    assert cluster.problems(config) == []
    for host in CONTROL_PLANES:
        assert cluster.etcd_member_names(host) == CONTROL_PLANES


def test_a_second_up_changes_nothing(rejoined):
    cluster, config = rejoined
    assert cluster.preview(config, "--expect-no-changes").returncode == 0
