"""End-to-end scenarios: the program's own scripts on lab hosts over real SSH (see tests/lab/README.md)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from cluster import LabCluster
from conftest import CONFIGS
from hosts import CLIENT_NS, PREFIX

pytestmark = pytest.mark.lab


@pytest.fixture
def scale():
    """The HA cluster (3 control planes behind kube-vip, 2 workers) up, with spare hosts w3 and cp4."""
    with LabCluster(CONFIGS / "scale.yaml", log=lambda _: None) as cluster:
        config = cluster.config(without=("w3", "cp4"))
        result = cluster.up(config)
        assert result.error is None, result.error
        yield cluster, config


def calls(cluster, tool: str, first_arg: str | None = None) -> list[dict]:
    return [c for c in cluster.lab.journal()["calls"]
            if c["tool"] == tool and (first_arg is None or c["argv"][:1] == [first_arg])]


def test_ha_bring_up(scale):
    cluster, config = scale
    assert cluster.problems(config) == []
    members = cluster.members()
    assert members["w1"]["labels"] == {"disk": "ssd"}
    assert members["w2"]["taints"] == ["dedicated=infra:NoSchedule"]
    assert members["cp2"]["taints"] == ["node-role.kubernetes.io/control-plane=:NoSchedule"]
    assert [m["name"] for m in cluster.lab.journal()["etcd"]] == ["cp1", "cp2", "cp3"]
    for node in ("cp1", "cp2", "cp3"):
        manifest = yaml.safe_load(cluster.lab.ssh(node, "sudo cat /etc/kubernetes/manifests/kube-vip.yaml").stdout)
        assert manifest["spec"]["volumes"][0]["hostPath"]["path"] == "/etc/kubernetes/admin.conf"
        env = {e["name"]: e.get("value") for e in manifest["spec"]["containers"][0]["env"]}
        assert env["vip_interface"] == "eth0" and env["address"] == "198.18.0.100" and env["vip_subnet"] == "32"
    assert "https://198.18.0.100:6443" in cluster.engine.result.outputs["kubeconfig"]


def test_rerun_with_the_same_config_runs_nothing(scale):
    cluster, config = scale
    result = cluster.up(config)
    assert result.error is None
    assert result.ran() == []


def test_every_script_is_idempotent(scale):
    cluster, config = scale
    before = cluster.lab.journal()
    result = cluster.up(config, rerun_all=True)
    assert result.error is None, result.error
    assert len(result.ran("update")) >= 30
    after = cluster.lab.journal()
    assert after["nodes"] == before["nodes"]
    assert after["etcd"] == before["etcd"]
    new_calls = after["calls"][len(before["calls"]):]
    assert not [c for c in new_calls if c["tool"] == "kubeadm" and c["argv"][:1] in (["join"], ["reset"])]
    assert not [c for c in new_calls if c["tool"] == "kubeadm" and c["argv"][:1] == ["init"] and c["argv"][1] != "phase"]


def test_add_a_worker_and_a_control_plane_after_the_join_material_expired(scale):
    cluster, config = scale
    cluster.lab.advance_clock(hours=25)  # past the token's 24 h and the uploaded certificates' 2 h
    grown = cluster.config()
    result = cluster.up(grown)
    assert result.error is None, result.error
    assert cluster.problems(grown) == []
    assert set(result.ran("create")) == {"w3-prepare", "w3-join", "w3-register",
                                         "cp4-prepare", "cp4-join", "cp4-register", "cp4-kube-vip-after-kubeadm"}
    # Their day-2 steps are created too, without connecting anywhere.
    assert {op.name for op in result.operations if op.action == "none"} == {
        "w3-upgrade-drain", "w3-upgrade", "w3-upgrade-uncordon", "cp4-upgrade", "cp4-certs-renew"}
    assert result.ran("replace") == ["join-material"]
    assert result.hosts_touched() == {"198.18.0.11", "198.18.0.23", "198.18.0.14"}


def test_expired_material_without_a_remint_fails_clearly(scale):
    """The stand-in enforces expiry: the same join, with the old material, is refused."""
    cluster, config = scale
    cluster.lab.advance_clock(hours=3)
    stdin = cluster.engine.state[next(u for u, s in cluster.engine.state.items() if s["name"] == "cp2-join")]
    # On a node that has kubeadm; preflight is waived so the material itself is what gets checked.
    result = cluster.lab.ssh("w1", "sudo kubeadm join --config /dev/stdin --ignore-preflight-errors=all",
                             check=False, stdin=stdin["inputs"]["stdin"])
    assert result.returncode != 0
    assert 'Secret "kubeadm-certs" was not found' in result.stderr or "could not find a JWS" in result.stderr


def test_remove_a_worker(scale):
    cluster, config = scale
    shrunk = cluster.config(without=("w2", "w3", "cp4"))
    result = cluster.up(shrunk)
    assert result.error is None, result.error
    assert "w2" not in cluster.members()
    assert cluster.problems(shrunk) == []
    assert result.ran("delete").index("w2-register") < result.ran("delete").index("w2-join")
    assert any(c["host"] == "w2" for c in calls(cluster, "kubeadm", "reset"))
    assert any("drain" in c["argv"] and "w2" in c["argv"] for c in calls(cluster, "kubectl"))
    assert result.hosts_touched() <= {"198.18.0.11", "198.18.0.22"}


def test_remove_a_control_plane_leaves_etcd(scale):
    cluster, config = scale
    shrunk = cluster.config(without=("cp3", "w3", "cp4"))
    result = cluster.up(shrunk)
    assert result.error is None, result.error
    assert [m["name"] for m in cluster.lab.journal()["etcd"]] == ["cp1", "cp2"]
    assert "cp3" not in cluster.members()


def test_removing_the_first_control_plane_is_refused_before_anything_changes(scale):
    cluster, config = scale
    before = cluster.members()
    result = cluster.up(cluster.config(without=("cp1", "w3", "cp4")))
    assert result.error is not None
    assert "cannot run kubeadm init" in str(result.error)
    assert cluster.members() == before
    assert result.ran("delete") == []


def test_one_minor_upgrade_rolls_in_kubeadm_order(scale):
    cluster, config = scale
    target = dict(config, kubernetesVersion="1.37.1")
    started = time.time()
    result = cluster.up(target)
    assert result.error is None, result.error
    assert cluster.problems(target) == []
    journal = cluster.lab.journal()
    assert journal["snapshots"][0]["version"] == "1.36.4"
    upgrades = [(u["host"], u["command"]) for u in journal["upgrades"]]
    assert upgrades[0] == ("cp1", "apply")
    assert upgrades[1:3] == [("cp2", "node"), ("cp3", "node")]
    assert {h for h, _ in upgrades[3:]} == {"w1", "w2"}
    drains = [d["node"] for d in journal["drains"] if d["time"] >= started - 1]
    assert drains.index("cp1") < drains.index("cp2") < drains.index("cp3") < drains.index("w1") < drains.index("w2")
    assert not any(m["unschedulable"] for m in cluster.members().values())
    assert not any(m.get("annotations", {}).get("kubeadm-cluster.io/drained-for-upgrade")
                   for m in cluster.members().values())
    assert not [name for name in result.ran() if name.endswith(("-prepare", "-join", "-init"))]


def test_skipping_a_minor_is_refused_on_the_machine():
    with LabCluster(CONFIGS / "scale.yaml", log=lambda _: None) as cluster:
        config = cluster.config(without=("w3", "cp4"), kubernetesVersion="1.35.9")
        assert cluster.up(config).error is None
        result = cluster.up(dict(config, kubernetesVersion="1.37.1"))
        assert result.error is not None
        assert "from 1.35.9 to 1.37.1" in str(result.error)
        assert cluster.problems(config) == []  # every node still at 1.35.9
        assert cluster.lab.ssh("cp1", "sudo kubeadm version -o short").stdout.strip() == "v1.35.9"
        assert result.ran() == ["upgrade-preflight"]


def test_a_host_down_mid_join_then_back_converges():
    with LabCluster(CONFIGS / "scale.yaml", log=lambda _: None) as cluster:
        config = cluster.config(without=("w3", "cp4"))
        cluster.lab.stop_host("w2")
        first = cluster.up(config)
        assert first.error is not None
        assert "w2" not in cluster.members()
        cluster.lab.start_host("w2")
        second = cluster.up(config)
        assert second.error is None, second.error
        assert cluster.problems(config) == []


def test_certificate_renewal_one_control_plane_at_a_time(scale):
    cluster, config = scale
    result = cluster.up(dict(config, certificates={"renew": "2026-11-24"}))
    assert result.error is None, result.error
    assert [r["host"] for r in cluster.lab.journal()["renewals"]] == ["cp1", "cp2", "cp3"]
    assert "kubeconfig" in result.ran("replace")


def test_external_etcd_topology():
    with LabCluster(CONFIGS / "external-etcd.yaml", log=lambda _: None) as cluster:
        config = cluster.config()
        result = cluster.up(config)
        assert result.error is None, result.error
        assert cluster.problems(config) == []
        journal = cluster.lab.journal()
        assert sorted(journal["externalEtcd"]) == ["etcd1", "etcd2", "etcd3"]
        assert journal["cluster"]["stackedEtcd"] is False
        assert cluster.lab.ssh("cp1", "sudo test -s /etc/kubernetes/pki/apiserver-etcd-client.key").returncode == 0
        assert cluster.lab.ssh("cp1", "sudo test -e /etc/kubernetes/pki/etcd/ca.key", check=False).returncode != 0
        assert cluster.lab.ssh("etcd2", "sudo test -s /etc/kubernetes/pki/etcd/ca.key").returncode == 0


def test_destroy_resets_every_node(scale):
    cluster, config = scale
    result = cluster.destroy()
    assert result.error is None, result.error
    assert cluster.members() == {}
    assert {c["host"] for c in calls(cluster, "kubeadm", "reset")} == {"cp1", "cp2", "cp3", "w1", "w2"}


def test_haproxy_keepalived_endpoint():
    with LabCluster(CONFIGS / "haproxy-keepalived.yaml", log=lambda _: None) as cluster:
        config = cluster.config()
        result = cluster.up(config)
        assert result.error is None, result.error
        assert cluster.problems(config) == []
        for node, state in (("cp1", "MASTER"), ("cp2", "BACKUP")):
            keepalived = cluster.lab.ssh(node, "sudo cat /etc/keepalived/keepalived.conf").stdout
            assert f"state {state}" in keepalived and "interface eth0" in keepalived  # found by route to the VIP
            assert "@AUTH_PASS@" not in keepalived and "auth_pass " in keepalived
            mode = cluster.lab.ssh(node, "sudo stat -c %a /etc/keepalived/keepalived.conf").stdout.strip()
            assert mode == "600"
        haproxy = cluster.lab.ssh("cp3", "sudo cat /etc/haproxy/haproxy.cfg").stdout
        assert "bind *:8443" in haproxy and "198.18.0.13:6443 check" in haproxy
        assert cluster.lab.journal()["cluster"]["endpoint"] == "198.18.0.100:8443"


def test_a_node_cordoned_by_hand_stays_cordoned(scale):
    """The upgrade steps uncordon only what they drained: here w1's steps re-run with nothing to upgrade."""
    cluster, config = scale
    cluster.lab.ssh("cp1", "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf cordon w1")
    result = cluster.up(config, rerun_all=True)
    assert result.error is None, result.error
    assert cluster.members()["w1"]["unschedulable"] is True


def test_single_control_plane_on_cri_o_behind_a_bastion_upgrades_a_minor():
    with LabCluster(CONFIGS / "single-cri-o-bastion.yaml", log=lambda _: None) as cluster:
        direct = subprocess.run(["ip", "netns", "exec", CLIENT_NS, "ssh", "-o", "BatchMode=yes",
                                 "-o", "ConnectTimeout=3", "-o", "StrictHostKeyChecking=no",
                                 "-i", str(cluster.lab.key_path), "kube@198.18.0.31", "true"],
                                capture_output=True, text=True)
        assert direct.returncode != 0 and "No route to host" in direct.stderr  # only the bastion reaches the nodes
        config = cluster.config()
        result = cluster.up(config)
        assert result.error is None, result.error
        assert cluster.problems(config) == []
        members = cluster.members()
        assert {m["criSocket"] for m in members.values()} == {"unix:///var/run/crio/crio.sock"}
        assert members["solo"]["taints"] == []  # schedulable
        assert members["edge"]["labels"] == {"zone": "edge"}
        assert result.outputs["apiServerEndpoint"] == "198.18.1.31:6443"  # the advertise address

        target = dict(config, kubernetesVersion="1.37.2")
        result = cluster.up(target)
        assert result.error is None, result.error
        assert cluster.problems(target) == []
        for node in ("solo", "edge"):
            assert cluster.lab.ssh(node, "sudo crio --version").stdout.strip() == "crio version 1.37.0"

        assert cluster.destroy().error is None
        assert cluster.members() == {}
        assert all("--cri-socket" in c["argv"] for c in calls(cluster, "kubeadm", "reset"))


RUN = Path(__file__).resolve().parent / "run"


def lab_namespaces() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in listed.splitlines() if line.startswith(PREFIX)]


def test_run_brings_up_a_config_summarises_last_and_cleans_up():
    result = subprocess.run([str(RUN), str(CONFIGS / "external-lb-mixed.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("lab: OK: 4/4 nodes as configured at v1.35.9")
    assert lab_namespaces() == []


def test_run_fails_when_a_machine_is_down_and_still_cleans_up(monkeypatch, capsys):
    import run

    def up_with_w2_down(cluster, config, rerun_all=False):
        cluster.lab.stop_host("w2")
        return LabCluster.up.__wrapped__(cluster, config, rerun_all)

    up_with_w2_down.__wrapped__ = LabCluster.up
    monkeypatch.setattr(LabCluster, "up", up_with_w2_down)
    assert run.main([str(CONFIGS / "ha-kube-vip.yaml")]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[-1].startswith("lab: FAILED: 4/5 nodes")  # the others joined; w2 did not
    assert "pulumi up failed: w2-prepare" in err and "w2: not in the cluster" in err
    assert lab_namespaces() == []


def test_run_gives_hosts_the_interface_the_config_names(tmp_path):
    config = yaml.safe_load((CONFIGS / "ha-kube-vip.yaml").read_text())
    config["config"]["kubeadm-cluster:controlPlane"]["loadBalancer"]["interface"] = "ens18"
    path = tmp_path / "ens18.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([str(RUN), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("lab: OK: 5/5 nodes")


def test_run_serves_the_configs_own_version(tmp_path):
    config = yaml.safe_load((CONFIGS / "single-cri-o-bastion.yaml").read_text())
    config["config"]["kubeadm-cluster:kubernetesVersion"] = "v1.36.1"  # not a default version; written with a v
    path = tmp_path / "other-version.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([str(RUN), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("lab: OK: 2/2 nodes as configured at v1.36.1")
