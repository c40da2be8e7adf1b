"""The lab's real external etcd (issue 12), `real-external-etcd.yaml`: three etcd members the program sets up with the
real kubeadm and etcd (kubeadm's HA etcd guide), two control planes joined against them. Every fact is read from the
real programs: etcdctl's member list on the members, the API server (kubectl with admin.conf), the engine's preview."""

from __future__ import annotations

import pytest

from scenario import lab_cluster

pytestmark = pytest.mark.lab

MEMBERS = ["etcd1", "etcd2", "etcd3"]
ENDPOINTS = "https://198.18.0.31:2379,https://198.18.0.32:2379,https://198.18.0.33:2379"


@pytest.fixture(scope="module")
def external():
    with lab_cluster("real-external-etcd.yaml") as cluster:
        config = cluster.config()
        result = cluster.up(config)
        if result.error is not None:
            for host in MEMBERS:
                print(f"--- {host}:", cluster.lab.ssh(host, "sudo sh -c 'tail -n 20 /var/lib/kclab-node/units/kubelet.journal; "
                                                      "tail -n 30 /var/log/pods/kube-system_etcd-*/etcd/*.log'",
                                                check=False).stdout)
        assert result.error is None, result.error
        yield cluster, config


def test_every_node_is_in_its_role(external):
    cluster, config = external
    assert cluster.problems(config) == []


def test_the_three_members_form_one_etcd_cluster(external):
    cluster, _ = external
    for host in MEMBERS:
        assert cluster.etcd_member_names(host) == MEMBERS


def test_both_control_planes_run_api_servers_on_the_external_members_and_no_etcd(external):
    """Issue 11 item 2: the second control plane's join (certificates uploaded) works with external etcd."""
    cluster, _ = external
    servers = {p["spec"]["nodeName"]: p["spec"]["containers"][0]["command"]
               for p in cluster.kubectl("get pods -n kube-system -l component=kube-apiserver")["items"]}
    assert sorted(servers) == ["cp1", "cp2"]
    assert all(f"--etcd-servers={ENDPOINTS}" in command for command in servers.values()), servers
    assert cluster.kubectl("get pods -n kube-system -l component=etcd")["items"] == []


def test_a_second_up_changes_nothing(external):
    cluster, config = external
    assert cluster.preview(config, "--expect-no-changes").returncode == 0
