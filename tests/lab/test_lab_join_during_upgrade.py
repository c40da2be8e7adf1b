"""One run that adds nodes and raises kubernetesVersion a minor (see tests/lab/README.md).

The cluster runs 1.36.4 (3 control planes behind kube-vip, 2 workers); one `pulumi up` adds a worker
(w3) and a control plane (cp4) and raises the version to 1.37.1. A new node's upgrade step is new too
and does nothing, so the new nodes must join at 1.37.1, and only once the API servers they reach run
it: the worker after every control plane's upgrade, the control plane after those before it.
"""

from __future__ import annotations

import pytest

from cluster import LabCluster
from conftest import CONFIGS

pytestmark = pytest.mark.lab

TARGET = "1.37.1"


@pytest.fixture(scope="module")
def grown_while_upgrading():
    with LabCluster(CONFIGS / "scale.yaml", log=lambda _: None) as cluster:
        config = cluster.config(without=("w3", "cp4"))
        assert cluster.up(config).error is None
        target = cluster.config(kubernetesVersion=TARGET)
        result = cluster.up(target)
        yield cluster, target, result


def call_index(journal: dict, host: str, *argv: str) -> int:
    """Where in the journal `host` ran the stand-in kubeadm with these first arguments (exactly once)."""
    found = [i for i, c in enumerate(journal["calls"])
             if c["host"] == host and c["tool"] == "kubeadm" and c["argv"][:len(argv)] == list(argv)]
    assert len(found) == 1, f"{host} ran kubeadm {' '.join(argv)} {len(found)} times"
    return found[0]


def test_every_node_ends_at_the_new_version(grown_while_upgrading):
    cluster, target, result = grown_while_upgrading
    assert result.error is None, result.error
    assert cluster.problems(target) == []


def test_the_new_worker_joins_after_every_control_plane_is_upgraded(grown_while_upgrading):
    cluster, _, _ = grown_while_upgrading
    journal = cluster.lab.journal()
    join = call_index(journal, "w3", "join")
    assert join > call_index(journal, "cp1", "upgrade", "apply")
    for control_plane in ("cp2", "cp3"):
        assert join > call_index(journal, control_plane, "upgrade", "node")


def test_the_new_control_plane_joins_after_the_ones_before_it_are_upgraded(grown_while_upgrading):
    cluster, _, _ = grown_while_upgrading
    journal = cluster.lab.journal()
    assert call_index(journal, "cp4", "join") > call_index(journal, "cp3", "upgrade", "node")


def test_the_new_nodes_joined_at_the_new_version_and_needed_no_upgrade(grown_while_upgrading):
    cluster, _, _ = grown_while_upgrading
    journal = cluster.lab.journal()
    assert not [u for u in journal["upgrades"] if u["host"] in ("w3", "cp4")]
    for node in ("w3", "cp4"):
        assert cluster.lab.ssh(node, "sudo kubeadm version -o short").stdout.strip() == f"v{TARGET}"


@pytest.mark.parametrize("node", ["w3", "w1", "cp2"])
def test_cri_tools_is_installed_at_the_new_minor_and_held(grown_while_upgrading, node):
    """Joined new (w3) or upgraded (w1, cp2): crictl follows the minor; the lab's kubeadm package, like
    pkgs.k8s.io's since 1.32, does not pull it in."""
    cluster, _, _ = grown_while_upgrading
    version = cluster.lab.ssh(node, "dpkg-query -W -f='${Version}' cri-tools").stdout.strip()
    assert version == f"{TARGET.rsplit('.', 1)[0]}.0-1.1"
    assert "cri-tools" in cluster.lab.ssh(node, "apt-mark showhold").stdout.split()


def test_the_new_control_plane_gets_certificates_that_are_deleted_with_the_tokens(grown_while_upgrading):
    """A control plane joins, so this run uploads the certificates; once its joins are done, neither the
    kubeadm-certs Secret nor a bootstrap token is left."""
    cluster, _, result = grown_while_upgrading
    assert {"certificate-upload", "join-material", "join-cleanup"} <= set(result.ran("replace"))
    journal = cluster.lab.journal()
    assert journal["tokens"] == {} and journal["certificateKeys"] == {}
    assert result.step("join-cleanup").started > max(result.step(f"{n}-join").ended for n in ("w3", "cp4"))
