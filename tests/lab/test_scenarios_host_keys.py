"""SSH trust on first use through the real Pulumi CLI (components/host_keys.py): a small topology behind a bastion
on the lab's real Kubernetes (configs/real-bastion.yaml), its host keys recorded by the first `up`; a node whose
host key changes stops the next `up` naming it, and nothing runs on it until its new key is accepted deliberately
(see test_scenarios.py)."""

from __future__ import annotations

import subprocess

import pytest

from pulumi_cli import Result
from scenario import lab_cluster

pytestmark = pytest.mark.lab

RECORDS = {"ssh.bastion-host-key": "bastion", "solo-host-key": "solo", "edge-host-key": "edge"}


@pytest.fixture(scope="module")
def small():
    with lab_cluster("real-bastion.yaml") as cluster:
        config = cluster.config()
        result = cluster.up(config)
        assert result.error is None, result.error
        yield cluster, config
        assert cluster.secrets.leaks() == []


def recorded(cluster) -> dict[str, str]:
    """The host keys the stack holds: each record's stdout, by host."""
    resources = cluster.stack.export()["deployment"]["resources"]
    return {RECORDS[r["urn"].rsplit("::", 1)[1]]: r["outputs"]["stdout"] for r in resources
            if r["urn"].rsplit("::", 1)[1] in RECORDS}


def new_host_key(cluster, name: str) -> str:
    """The machine gets new SSH host keys (a reinstall, or another machine at its address): sshd re-reads them
    on SIGHUP. The lab's own SSH client follows (it trusts each host's current key)."""
    done = cluster.lab.ssh(name, "sudo rm -f /etc/ssh/ssh_host_* && sudo ssh-keygen -A >/dev/null && "
                                 "cat /etc/ssh/ssh_host_ed25519_key.pub && sudo kill -HUP \"$(cat /run/sshd.pid)\"")
    key = " ".join(done.stdout.split()[:2])
    cluster.lab.hosts[name].host_key = key
    return key


def kubelet_confs(cluster) -> dict[str, str]:
    """Each node's kubelet.conf, which kubeadm init, join (the TLS bootstrap's new certificate) and reset rewrite
    or remove."""
    return {name: cluster.lab.ssh(name, "sudo sha256sum /etc/kubernetes/kubelet.conf").stdout for name in ("solo", "edge")}


def kubeadm_version(cluster, name: str) -> str:
    return cluster.lab.ssh(name, "kubeadm version -o short").stdout.strip()


def steps_on(result: Result, host: str) -> list[str]:
    """The commands on `host` the engine started in this run (any op but `same`)."""
    return [s.name for s in result.commands if s.host == host and s.action != "same"]


def test_the_first_up_records_every_host_key_and_the_next_changes_nothing(small):
    cluster, config = small
    assert "hostKey" not in config["ssh"]["bastion"] and not any("hostKey" in n for n in config["nodes"])
    assert recorded(cluster) == {name: cluster.lab.hosts[name].host_key for name in ("bastion", "solo", "edge")}
    assert cluster.preview(config, "--expect-no-changes").returncode == 0


def rotate_ssh_key(cluster, config: dict, name: str) -> dict:
    """A new SSH key for the stack (authorized on every host beside the old one): every connection changes."""
    key = cluster.lab.work / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = key.with_suffix(".pub").read_text().strip()
    for host in cluster.lab.hosts:
        cluster.lab.ssh(host, f"echo '{public}' >> ~/.ssh/authorized_keys")
    return dict(config, sshPrivateKey=key.read_text())


def test_a_changed_node_key_stops_the_next_up_naming_the_node_and_nothing_runs_on_it(small):
    """A new SSH key re-scans the nodes from the bastion: the record of edge sees another key and refuses."""
    cluster, config = small
    before = recorded(cluster)
    new_host_key(cluster, "edge")
    rotated = rotate_ssh_key(cluster, config, "rotated-id_ed25519")
    result = cluster.up(rotated)
    assert result.error is not None
    assert "edge-host-key:" in result.error
    assert "The SSH host key of node edge (198.18.0.32:22) has changed since this stack recorded it" in result.error
    assert "raise hostKeyRevision of node edge (nodes[].hostKeyRevision" in result.error
    assert f"recorded: {before['edge']}" in result.error
    assert f"offered:  {cluster.lab.hosts['edge'].host_key}" in result.error
    assert steps_on(result, "198.18.0.32") == []
    assert recorded(cluster)["edge"] == before["edge"]
    small_state["rotated"] = rotated


small_state: dict = {}


def test_accepting_the_new_key_deliberately_converges(small):
    cluster, _ = small
    rotated = small_state["rotated"]
    accepted = dict(rotated, nodes=[dict(n, hostKeyRevision="2") if n["name"] == "edge" else n
                                    for n in rotated["nodes"]])
    before = kubelet_confs(cluster)
    result = cluster.up(accepted)
    assert result.error is None, result.error
    assert recorded(cluster)["edge"] == cluster.lab.hosts["edge"].host_key
    assert [s.name for s in result.commands if s.action in ("replace", "delete")] == ["edge-host-key-scan"]
    assert kubelet_confs(cluster) == before
    assert cluster.problems(accepted) == []
    assert cluster.preview(accepted, "--expect-no-changes").returncode == 0
    small_state["accepted"] = accepted


def test_an_ordinary_step_on_a_node_whose_key_changed_fails_at_the_handshake(small):
    """No connection change, so no re-scan: pulumi-command's own check (ssh.FixedHostKey) refuses edge's
    upgrade step before anything runs there; accepting the key then lets the upgrade finish."""
    cluster, _ = small
    accepted = small_state["accepted"]
    new_host_key(cluster, "edge")
    target = dict(accepted, kubernetesVersion="1.37.2")
    result = cluster.up(target)
    assert result.error is not None
    failed = [s for s in result.commands if s.failed]
    assert [s.name for s in failed] and all(s.name.startswith("edge-") for s in failed), result.error
    assert "ssh: handshake failed: ssh: host key mismatch" in result.error
    assert kubeadm_version(cluster, "edge") == "v1.36.4"
    again = dict(target, nodes=[dict(n, hostKeyRevision="3") if n["name"] == "edge" else n
                                for n in target["nodes"]])
    result = cluster.up(again)
    assert result.error is None, result.error
    assert cluster.problems(again) == []
    assert kubeadm_version(cluster, "edge") == "v1.37.2"
    assert cluster.kubectl("version")["serverVersion"]["gitVersion"] == "v1.37.2"
