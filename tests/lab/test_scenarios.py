"""End-to-end scenarios: the real Pulumi CLI runs this repo's program; the command plugin (the lab's
stand-in for pulumi-command, which the Go module proxy does not serve) runs its scripts on the lab's
hosts over real SSH (see tests/lab/README.md).

Assertions about what Pulumi did read the engine's own output (the events of `pulumi up --json`, the
steps of `pulumi preview --json`, `pulumi stack export`); the stand-ins' journal says what happened
on the machines. One bring-up serves several checks: the tests of a group run in file order on one
cluster, each leaving it converged for the next.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from cluster import LabCluster
from conftest import CONFIGS
from hosts import CLIENT_NS, PREFIX, stream_namespaces
from pulumi_cli import REPO, Result, Stack
from scenario import calls, journal_mark, lab_cluster, no_init_join_or_reset_since, replaced_or_deleted

pytestmark = pytest.mark.lab


def direct_ssh(cluster) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", CLIENT_NS, "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
                           "-o", "StrictHostKeyChecking=no", "-i", str(cluster.lab.key_path), "kube@198.18.0.31",
                           "true"], capture_output=True, text=True)


def consumer_preview(cluster) -> Result:
    """examples/consumer's `pulumi preview` in a stack of its own in the lab stack's backend (same
    passphrase), reading the lab stack's real outputs — the kubeconfig is a secret — through a StackReference."""
    consumer = Stack("consumer", cluster.stack.state, prefix=cluster.stack.prefix, passphrase=cluster.stack.passphrase,
                     project=REPO / "examples" / "consumer").init()
    consumer.set_config({"clusterStack": f"organization/kubeadm-cluster/{cluster.stack.name}"})
    cluster.stack.transcript += consumer.transcript  # its output is checked for secrets too
    result = consumer.preview()
    cluster.stack.transcript.append(result.output)
    return result


def test_single_control_plane_on_cri_o_gets_a_bastion_then_upgrades_a_minor():
    with lab_cluster("single-cri-o-bastion.yaml") as cluster:
        assert direct_ssh(cluster).returncode != 0  # the lab lets SSH reach the bastion only
        # Before the bastion: the client may reach the nodes directly.
        policy = ["ip", "netns", "exec", CLIENT_NS, "ip", "rule"]
        subprocess.run([*policy, "del", "ipproto", "tcp", "dport", "22", "lookup", "100"], check=True)
        direct = cluster.config()
        direct["ssh"] = {k: v for k, v in direct["ssh"].items() if k != "bastion"}
        result = cluster.up(direct)
        assert result.error is None, result.error
        assert cluster.problems(direct) == []
        members = cluster.members()
        assert {m["criSocket"] for m in members.values()} == {"unix:///var/run/crio/crio.sock"}
        assert members["solo"]["taints"] == []  # schedulable
        assert members["edge"]["labels"] == {"zone": "edge"}
        assert cluster.stack.outputs()["apiServerEndpoint"] == "198.18.1.31:6443"  # the advertise address

        # The bastion becomes the only way in; the stack follows without re-running init, join or reset.
        subprocess.run([*policy, "add", "ipproto", "tcp", "dport", "22", "lookup", "100"], check=True)
        assert direct_ssh(cluster).returncode != 0
        config = cluster.config()
        mark = journal_mark(cluster)
        result = cluster.up(config)
        assert result.error is None, result.error
        assert replaced_or_deleted(result) == []
        assert no_init_join_or_reset_since(cluster, mark) == []
        assert cluster.problems(config) == []

        consumer = consumer_preview(cluster)
        assert consumer.returncode == 0, consumer.error
        steps = {step["urn"].rsplit("::", 1)[1]: step["op"] for step in consumer.preview["steps"]}
        assert steps["cluster"] == "create" and steps["hello"] == "create"

        target = dict(config, kubernetesVersion="1.37.2")
        result = cluster.up(target)
        assert result.error is None, result.error
        assert cluster.problems(target) == []
        for node in ("solo", "edge"):
            assert cluster.lab.ssh(node, "sudo crio --version").stdout.strip() == "crio version 1.37.0"

        assert cluster.destroy().error is None
        assert cluster.members() == {}
        assert all("--cri-socket" in c["argv"] for c in calls(cluster, "kubeadm", "reset"))


# ---------------------------------------------------------------------------------------------
# tests/lab/run
# ---------------------------------------------------------------------------------------------

RUN = Path(__file__).resolve().parent / "run"


def test_run_previews_add_ons_brings_up_without_them_and_keeps_the_state(tmp_path):
    state = tmp_path / "state"
    result = subprocess.run([str(RUN), "--state", str(state), str(CONFIGS / "external-lb-mixed.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.splitlines()[-1]
    assert summary.startswith("lab: OK: 4/4 nodes as configured at v1.35.9")
    assert "brought up without them: cni.type none, ingress.controller none, no helmReleases" in summary
    assert stream_namespaces(PREFIX) == []
    # The kept backend opens with the kept passphrase: its state names every node's commands.
    stack = Stack("external-lb-mixed", state, passphrase=(state / "passphrase").read_text().strip())
    names = {r["urn"].rsplit("::", 1)[1] for r in stack.export()["deployment"]["resources"]}
    assert {"c1-init", "c2-join", "c3-join", "w1-join"} <= names


def test_run_fails_when_a_machine_is_down_and_still_cleans_up(monkeypatch, capsys):
    import run

    def up_with_w2_down(cluster, config, *extra, on_event=None):
        cluster.lab.stop_host("w2")
        return LabCluster.up.__wrapped__(cluster, config, *extra, on_event=on_event)

    up_with_w2_down.__wrapped__ = LabCluster.up
    monkeypatch.setattr(LabCluster, "up", up_with_w2_down)
    assert run.main([str(CONFIGS / "ha-kube-vip.yaml")]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[-1].startswith("lab: FAILED: 4/5 nodes")  # the others joined; w2 did not
    # The first step that reaches w2 is the scan that records its host key (SSH trust on first use).
    assert "pulumi up failed: w2-host-key-scan" in err and "w2: not in the cluster" in err
    assert stream_namespaces(PREFIX) == []


def test_run_gives_hosts_the_interface_the_config_names(tmp_path):
    config = yaml.safe_load((CONFIGS / "ha-kube-vip.yaml").read_text())
    config["config"]["kubeadm-cluster:controlPlane"]["loadBalancer"]["interface"] = "ens18"
    path = tmp_path / "ens18.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([str(RUN), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("lab: OK: 5/5 nodes")


def test_run_serves_the_configs_own_version(tmp_path):
    config = yaml.safe_load((CONFIGS / "single-cri-o-bastion.yaml").read_text())
    config["config"]["kubeadm-cluster:kubernetesVersion"] = "v1.36.1"  # not a default version; written with a v
    path = tmp_path / "other-version.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([str(RUN), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("lab: OK: 2/2 nodes as configured at v1.36.1")
