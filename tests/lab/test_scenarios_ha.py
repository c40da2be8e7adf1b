"""The HA cluster through the real Pulumi CLI: one bring-up, then day-2 changes in order (see test_scenarios.py)."""

from __future__ import annotations

import pytest
import yaml

from pulumi_cli import plaintext
from scenario import calls, lab_cluster, no_init_join_or_reset_since, rerun_every_script

pytestmark = pytest.mark.lab


# ---------------------------------------------------------------------------------------------
# The HA cluster (3 control planes behind kube-vip, 2 workers): one bring-up,
# then day-2 changes in order.
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scale():
    with lab_cluster("scale.yaml") as cluster:
        config = cluster.config()
        result = cluster.up(config)
        assert result.error is None, result.error
        cluster.first = result
        yield cluster, config


@pytest.fixture
def ha(scale):
    """The HA cluster; after each test, nothing secret in its state or in what the CLI printed."""
    yield scale
    assert scale[0].secrets.leaks() == []


def test_ha_bring_up(ha):
    cluster, config = ha
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
    assert "https://198.18.0.100:6443" in cluster.stack.outputs(show_secrets=True)["kubeconfig"]
    assert cluster.stack.outputs()["kubeconfig"] == "[secret]"


def test_no_join_credential_outlives_the_bring_up(ha):
    """Init's token, the join set's token and the uploaded certificates are deleted once the joins are done."""
    cluster, _ = ha
    journal = cluster.lab.journal()
    assert journal["tokens"] == {} and journal["certificateKeys"] == {}
    assert len(journal["deletedTokens"]) == 3  # init's, the join set's, the kubeadm-certs owner
    assert cluster.lab.ssh("cp1", "sudo kubeadm token list").stdout == ""
    cleanup = cluster.first.step("join-cleanup")
    assert all(cleanup.started > cluster.first.step(f"{node}-join").ended for node in ("cp2", "cp3", "w1", "w2"))


def test_every_kubelets_serving_certificate_request_is_approved_before_up_ends(ha):
    """The stand-in kubelets ask as the kubelet does once their node is registered (standin.py
    request_serving_certificate); the approver on the first control plane checks and approves each."""
    cluster, config = ha
    decided = sorted((c["username"], c["conditions"]) for c in cluster.lab.journal().get("csrs", []))
    assert decided == [(f"system:node:{name}", ["Approved"]) for name in ("cp1", "cp2", "cp3", "w1", "w2")]
    timer = cluster.lab.ssh("cp1", "sudo systemctl is-active kubeadm-cluster-kubelet-serving.timer", check=False)
    assert timer.stdout.strip() == "active"


def test_the_engine_ran_every_node_command_on_its_own_host(ha):
    cluster, config = ha
    address = {n["name"]: n["address"] for n in config["nodes"]}
    on_nodes = [s for s in cluster.first.commands if s.name.split("-")[0] in address and s.name.endswith(
        ("-prepare", "-join", "-init"))]
    assert len(on_nodes) == 5 + 4 + 1
    for step in on_nodes:
        assert step.host == address[step.name.split("-")[0]], step.name
        assert step.action == "create" and not step.failed


def test_expired_material_without_a_remint_fails_clearly(ha):
    """The stand-in enforces expiry: the same join, with the old material, is refused."""
    cluster, config = ha
    cluster.lab.advance_clock(hours=3)
    state = cluster.stack.export(show_secrets=True)["deployment"]["resources"]
    join = next(r for r in state if r["urn"].endswith("::cp2-join"))
    # On the node it was for (its API server flags name files only control planes have); preflight is
    # waived so the material itself is what gets checked.
    result = cluster.lab.ssh("cp2", "sudo kubeadm join --config /dev/stdin --ignore-preflight-errors=all",
                             check=False, stdin=plaintext(join["inputs"]["stdin"]))
    assert result.returncode != 0
    assert 'Secret "kubeadm-certs" was not found' in result.stderr or "could not find a JWS" in result.stderr


def test_preview_right_after_up_expects_no_changes(ha):
    cluster, config = ha
    preview = cluster.preview(config, "--expect-no-changes")
    assert preview.returncode == 0, preview.error
    assert {step["op"] for step in preview.preview["steps"]} == {"same"}
    again = cluster.up(config)
    assert again.error is None and again.ran() == []


def test_every_script_is_idempotent(ha):
    cluster, config = ha
    before = cluster.lab.journal()
    ran = rerun_every_script(cluster)
    assert len(ran) >= 30
    after = cluster.lab.journal()
    assert after["nodes"] == before["nodes"]
    assert after["etcd"] == before["etcd"]
    assert no_init_join_or_reset_since(cluster, len(before["calls"])) == []


def test_remove_a_worker_drains_before_reset(ha):
    cluster, config = ha
    shrunk = cluster.config(without=("w2",))
    result = cluster.up(shrunk)
    assert result.error is None, result.error
    assert "w2" not in cluster.members()
    assert cluster.problems(shrunk) == []
    deleted = {s.name: s for s in result.commands if s.action == "delete"}
    assert {name.split("-")[0] for name in deleted} == {"w2"}
    # The engine ran the registration's delete (drain, delete the node) to its end before the join's (reset).
    assert deleted["w2-register"].ended < deleted["w2-join"].started
    assert any(c["host"] == "w2" for c in calls(cluster, "kubeadm", "reset"))
    assert any("drain" in c["argv"] and "w2" in c["argv"] for c in calls(cluster, "kubectl"))
    assert result.hosts_touched() <= {"198.18.0.11", "198.18.0.22"}


def test_remove_a_control_plane_leaves_etcd(ha):
    cluster, config = ha
    shrunk = cluster.config(without=("w2", "cp3"))
    result = cluster.up(shrunk)
    assert result.error is None, result.error
    assert [m["name"] for m in cluster.lab.journal()["etcd"]] == ["cp1", "cp2"]
    assert "cp3" not in cluster.members()
    assert cluster.problems(shrunk) == []


def test_destroy_resets_every_node(ha):
    cluster, config = ha
    result = cluster.destroy()
    assert result.error is None, result.error
    assert cluster.members() == {}
    assert {c["host"] for c in calls(cluster, "kubeadm", "reset")} >= {"cp1", "cp2", "w1"}
    assert cluster.stack.export()["deployment"].get("resources") in (None, [])
