"""Issue 11 in the lab: the kubeadm flow items behind kube-vip against the stand-ins (the upgrade's snapshot, renewals
that wait for each node's own API server); the real lab cannot run kube-vip yet (tests/lab/README.md)."""

from __future__ import annotations

import pytest

from cluster import without_addons
from test_scenarios import lab_cluster

pytestmark = pytest.mark.lab


def sh(cluster, node: str, command: str) -> str:
    return cluster.lab.ssh(node, f"sudo sh -c '{command}'").stdout


def test_upgrade_snapshot_outside_etcd_data_and_renewal_waits_for_each_nodes_own_api_server():
    with lab_cluster("ha-kube-vip.yaml") as cluster:
        config, _ = without_addons(cluster.config())  # the lab has no API server for the add-ons
        assert cluster.up(config).error is None
        upgraded = dict(config, kubernetesVersion="1.37.1")
        result = cluster.up(upgraded)
        assert result.error is None, result.error
        assert sh(cluster, "cp1", "ls -A /var/lib/etcd").split() == ["member"]
        assert sh(cluster, "cp1", "ls /var/lib/etcd-snapshots; stat -c %a /var/lib/etcd-snapshots").split() == [
            "before-v1.37.1.db", "700"]
        assert "kubeconfig" not in result.ran()  # the exported token outlives admin.conf's renewed certificate
        result = cluster.up(dict(upgraded, certificates={"renew": "2026-11-25"}))
        assert result.error is None, result.error
        asked = {c["host"]: c["argv"] for c in cluster.lab.journal()["calls"]
                 if c["tool"] == "kubectl" and "--server" in c["argv"]}
        assert {host: argv[argv.index("--server") + 1] for host, argv in asked.items()} == {
            f"cp{i}": f"https://198.18.0.1{i}:6443" for i in (1, 2, 3)}
        for node in ("cp1", "cp2", "cp3"):
            assert "kube-vip.yaml" in sh(cluster, node, "ls /etc/kubernetes/manifests").split()  # parked and back
