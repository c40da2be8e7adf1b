"""Adding nodes in the run that raises kubernetesVersion: they join after the control planes are upgraded.

A new node's upgrade step is new as well and has no create, so it never runs for that node: the node
must join at the new version, and a kubelet must never be newer than an API server it can reach.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness import base_config, inner_script, plan, run_program, script_param

NEW_NODES = [{"name": "w3", "address": "10.0.0.23", "roles": ["worker"]},
             {"name": "cp4", "address": "10.0.0.14", "roles": ["control-plane"]}]


@pytest.fixture(scope="module")
def runs():
    before = run_program(base_config())
    after = run_program(base_config(kubernetesVersion="1.37.1", nodes=base_config()["nodes"] + NEW_NODES))
    return before, after


def test_the_run_upgrades_the_cluster_and_creates_the_new_nodes(runs):
    before, after = runs
    result = plan(before, after)
    assert {"cp1-upgrade", "cp2-upgrade", "cp3-upgrade", "w1-upgrade"} <= result.updated
    assert {"w3-prepare", "w3-join", "cp4-prepare", "cp4-join"} <= result.created


def test_the_new_nodes_upgrade_steps_run_nothing_when_created(runs):
    _, after = runs
    for step in ("w3-upgrade", "cp4-upgrade"):
        assert after.named(step).plain("create") is None


@pytest.mark.parametrize("upgrade", ["cp1-upgrade", "cp2-upgrade", "cp3-upgrade"])
def test_a_new_worker_joins_after_every_control_plane_is_upgraded(runs, upgrade):
    _, after = runs
    assert after.depends_on("w3-join", upgrade)


@pytest.mark.parametrize("upgrade", ["cp1-upgrade", "cp2-upgrade", "cp3-upgrade"])
def test_a_new_control_plane_joins_after_the_ones_before_it_are_upgraded(runs, upgrade):
    _, after = runs
    assert after.depends_on("cp4-join", upgrade)


def test_a_new_worker_does_not_wait_for_control_plane_joins_on_a_new_cluster(runs):
    """SPEC §4.6: worker joins run in parallel with control-plane joins."""
    _, after = runs
    for join in ("cp2-join", "cp3-join", "cp4-join"):
        assert not after.depends_on("w3-join", join)


def test_the_new_nodes_install_the_new_version(runs):
    _, after = runs
    for prepare in ("w3-prepare", "cp4-prepare"):
        assert script_param(inner_script(after.named(prepare).plain("create")), "K8S_VERSION") == "1.37.1"


def test_a_control_plane_upgrade_step_meeting_a_node_not_joined_yet_does_nothing(runs, tmp_path):
    """The control planes' upgrade steps no longer wait for their joins (so workers need not either):
    on a node whose join is still to come (no /etc/kubernetes/kubelet.conf) the step changes nothing."""
    if Path("/etc/kubernetes/kubelet.conf").exists():
        pytest.skip("this machine is a Kubernetes node")
    _, after = runs
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    for tool in ("kubeadm", "kubectl", "kubelet", "apt-get", "apt-cache", "apt-mark", "systemctl", "curl"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\necho "Kubernetes v1.36.4"\n')
        (bin_dir / tool).chmod(0o755)
    script = tmp_path / "upgrade.sh"
    script.write_text(inner_script(after.named("cp2-upgrade").plain("update")))
    result = subprocess.run(["timeout", "30", "bash", str(script)], capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    assert "cp2 has not joined the cluster yet" in result.stderr
    assert not calls.exists()
