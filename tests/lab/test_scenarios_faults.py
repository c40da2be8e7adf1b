"""Faults through the real Pulumi CLI on the lab's real Kubernetes (configs/real-faults.yaml): Ctrl-C mid-up, a
refused minor skip, a host down mid-up. What converged is read from the real API server (cluster.problems)."""

from __future__ import annotations

import pytest

from pulumi_cli import interrupt
from scenario import lab_cluster

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def faults():
    with lab_cluster("real-faults.yaml") as cluster:
        yield cluster


def test_ctrl_c_mid_up_then_up_converges(faults):
    """What a user does after Ctrl-C: the CLI cancels (running steps finish); if the state still records
    interrupted operations, `pulumi refresh --clear-pending-creates` clears them (the CLI's own advice);
    a stale lock goes with `pulumi cancel`; then `pulumi up` again."""
    cluster = faults
    config = cluster.config(without=("w3",))
    sent = []

    def on_event(event, process):
        pre = event.get("resourcePreEvent")
        if not sent and pre and pre["metadata"]["urn"].endswith("::cp1-init"):
            interrupt(process)
            sent.append(event["sequence"])

    first = cluster.up(config, on_event=on_event)
    assert sent and first.returncode != 0
    assert cluster.problems(config) != []
    pending = cluster.stack.export()["deployment"].get("pending_operations") or []
    if pending:
        cleared = cluster.stack.refresh("--clear-pending-creates")
        assert cleared.error is None, cleared.error
    second = cluster.up(config)
    if second.error and "locked" in second.error:
        cluster.stack.cancel()
        second = cluster.up(config)
    assert second.error is None, second.error
    assert cluster.problems(config) == []
    assert cluster.preview(config, "--expect-no-changes").returncode == 0


def test_skipping_a_minor_is_refused_on_the_machine(faults):
    cluster = faults
    config = cluster.config(without=("w3",))
    # Refused before anything is installed, so the lab needs no 1.38 packages.
    result = cluster.up(dict(config, kubernetesVersion="1.38.1"))
    assert result.error is not None
    assert "upgrade-preflight" in result.error and "from 1.36.4 to 1.38.1" in result.error
    assert cluster.problems(config) == []  # every node still at 1.36.4
    assert cluster.lab.ssh("cp1", "sudo kubeadm version -o short").stdout.strip() == "v1.36.4"
    assert cluster.kubectl("version")["serverVersion"]["gitVersion"] == "v1.36.4"
    assert [s.name for s in result.commands if s.action != "same" and s.ended is not None] == ["upgrade-preflight"]


def test_a_host_down_mid_up_fails_naming_it_and_the_next_up_converges(faults):
    cluster = faults
    config = cluster.config()
    stopped = []

    def on_event(event, process):
        if not stopped and event.get("resourcePreEvent"):
            cluster.lab.stop_host("w3")
            stopped.append(True)

    first = cluster.up(config, on_event=on_event)
    assert first.error is not None
    assert "198.18.0.23" in first.error
    assert "w3" not in cluster.real_members()
    cluster.lab.start_host("w3")
    second = cluster.up(config)
    assert second.error is None, second.error
    assert cluster.problems(config) == []
