"""SPEC §4: removal is real — drain and delete from the first control plane, reset on the node."""

from __future__ import annotations

import pytest

from harness import base_config, inner_script, run_program


@pytest.fixture(scope="module")
def run():
    return run_program(base_config())


def delete_script(run, name: str) -> str:
    return inner_script(run.named(name).plain("delete"))


def test_worker_registration_delete_drains_and_deletes_the_node_on_the_first_control_plane(run):
    register = run.named("w1-register")
    assert register.host == "10.0.0.11"
    script = delete_script(run, "w1-register")
    assert "NODE_NAME=w1\n" in script
    assert 'drain_node "$NODE_NAME"' in script
    assert 'admin_kubectl drain "$node" --ignore-daemonsets --delete-emptydir-data --force' in script
    assert "admin_kubectl delete node \"$NODE_NAME\" --ignore-not-found" in script
    assert "REMOVE_ETCD_MEMBER=false\n" in script


def test_control_plane_removal_also_removes_its_etcd_member_and_checks_it_is_gone(run):
    script = delete_script(run, "cp2-register")
    assert "REMOVE_ETCD_MEMBER=true\n" in script
    assert "member remove" in script
    assert "is still listed after its removal" in script
    assert "ETCD_POD=etcd-cp1\n" in script


def test_the_init_node_has_no_drain_path(run):
    assert not run.named("cp1-register").plain("delete")


@pytest.mark.parametrize("name", ["cp1-init", "cp2-join", "w1-join"])
def test_kubeadm_steps_reset_the_node_on_delete(run, name):
    command = run.named(name)
    script = delete_script(run, name)
    assert "kubeadm reset -f" in script
    assert "rm -rf /etc/cni/net.d" in script
    assert "KUBE-" in script and "iptables" in script
    assert command.delete_before_replace
    assert command.plain("triggers") == [command.host]


@pytest.mark.parametrize("runtime, socket", [("containerd", "unix:///run/containerd/containerd.sock"),
                                             ("cri-o", "unix:///var/run/crio/crio.sock")])
def test_reset_names_the_configured_runtime_socket(runtime, socket):
    script = delete_script(run_program(base_config(containerRuntime={"type": runtime})), "w1-join")
    assert f"CRI_SOCKET={socket}\n" in script
    assert 'kubeadm reset -f --cri-socket "$CRI_SOCKET"' in script


def test_registration_deletes_before_the_nodes_reset(run):
    """Pulumi deletes dependents first: the drain/delete (registration) before the reset (join)."""
    assert run.depends_on("w1-register", "w1-join")
    assert run.depends_on("cp2-register", "cp2-join")


def test_external_etcd_members_are_reset_on_delete():
    config = base_config(etcd={"topology": "external"}, nodes=base_config()["nodes"] + [
        {"name": f"etcd{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]} for i in (1, 2, 3)])
    run = run_program(config)
    script = delete_script(run, "etcd2-etcd-member")
    assert "kubeadm reset -f" in script and "rm -rf /var/lib/etcd" in script
    assert run.named("etcd2-etcd-member").delete_before_replace
    assert "REMOVE_ETCD_MEMBER=false\n" in delete_script(run, "cp2-register")
