"""The first control plane ran kubeadm init: a config that puts another node first is refused before any step."""

from __future__ import annotations

import pytest

from harness import base_config, run_program


def cluster_resources(run) -> list[str]:
    """The custom resources registered inside the cluster component (every step on a node is one)."""
    return [r.name for r in run.resources if r.custom and "kubeadm-cluster:index:KubeadmCluster$" in r.urn]


def without_cp1() -> dict:
    config = base_config()
    config["nodes"] = [n for n in config["nodes"] if n["name"] != "cp1"]
    return config


@pytest.mark.parametrize("preview", [True, False])
def test_removing_the_first_control_plane_registers_no_step(preview):
    with pytest.raises(Exception) as raised:
        run_program(without_cp1(), preview=preview, stashed={"first-control-plane": "cp1"})
    assert "cp1 initialized this cluster, but cp2 is now the first control plane" in str(raised.value)
    assert cluster_resources(raised.value.run) == ["first-control-plane"]


def test_moving_another_control_plane_first_is_refused():
    config = base_config()
    config["nodes"] = [config["nodes"][1], config["nodes"][0], *config["nodes"][2:]]
    with pytest.raises(Exception) as raised:
        run_program(config, stashed={"first-control-plane": "cp1"})
    assert "restore cp1 as the first control-plane entry" in str(raised.value)
    assert cluster_resources(raised.value.run) == ["first-control-plane"]


def test_every_step_waits_for_the_check_and_the_record_never_changes():
    run = run_program(base_config())
    record = run.named("first-control-plane")
    assert record.typ == "pulumi:index:Stash" and record.plain("input") == "cp1"
    assert record.ignore_changes == ["input"]
    assert all(run.depends_on(c.name, "first-control-plane") for c in run.commands)
