"""The lab engine does what `pulumi up` with pulumi-command would do, checked with a recording runner."""

from __future__ import annotations


import pytest

from components.program import main
from harness import base_config
from lab.engine import CommandFailed, LabEngine, SshRunner


class RecordingRunner:
    """Stands in for SSH: records (host, first script line) and prints canned stdout by resource."""

    def __init__(self, fail_on: str | None = None):
        self.calls: list[tuple[str, str]] = []
        self.fail_on = fail_on

    def __call__(self, connection, command, stdin, environment):
        script = command.split("# kubeadm-cluster: ", 1)[1].split("\n", 1)[0] if "# kubeadm-cluster: " in command else "?"
        self.calls.append((connection["host"], script))
        if self.fail_on and self.fail_on == f"{connection['host']}:{script}":
            return 1, "", "boom"
        if script == "join-material.sh":
            return 0, '{"token":"abcdef.0123456789abcdef","caCertHash":"sha256:00","certificateKey":"' + "a" * 64 + '"}\n', ""
        if script == "kubeconfig.sh":
            return 0, "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {server: https://x:6443}\n  name: dev\n", ""
        if script == "certs-expiry.sh":
            return 0, '{"certificates": []}\n', ""
        return 0, "", ""


@pytest.fixture
def engine(tmp_path):
    runner = RecordingRunner()
    return LabEngine(tmp_path / "state.json", runner, log=lambda _: None), runner


def test_first_run_creates_every_command_once(engine):
    lab, runner = engine
    result = lab.up(base_config(), main)
    assert result.error is None
    assert len(result.ran("create")) == len(runner.calls)
    assert ("10.0.0.11", "init.sh") in runner.calls


def test_second_run_with_the_same_config_runs_nothing(engine):
    lab, runner = engine
    lab.up(base_config(), main)
    runner.calls.clear()
    result = lab.up(base_config(), main)
    assert result.error is None and runner.calls == []


def test_rerun_all_updates_every_command(engine):
    lab, runner = engine
    lab.up(base_config(), main)
    runner.calls.clear()
    result = lab.up(base_config(), main, rerun_all=True)
    assert sorted(result.ran("update")) == sorted(entry["name"] for entry in lab.state.values())
    assert len(runner.calls) == len(lab.state)


def test_a_command_without_create_connects_nowhere_until_it_changes(engine):
    lab, runner = engine
    result = lab.up(base_config(), main)
    assert "w1-upgrade" not in result.ran() and ("10.0.0.21", "upgrade-worker.sh") not in runner.calls
    result = lab.up(base_config(kubernetesVersion="1.37.2"), main)
    assert "w1-upgrade" in result.ran("update") and ("10.0.0.21", "upgrade-worker.sh") in runner.calls


def test_removed_worker_is_deleted_registration_before_reset(engine):
    lab, runner = engine
    lab.up(base_config(), main)
    runner.calls.clear()
    config = base_config()
    config["nodes"] = [n for n in config["nodes"] if n["name"] != "w2"]
    result = lab.up(config, main)
    assert result.error is None
    deletes = [call for call in runner.calls if call[1] in ("node-remove.sh", "reset.sh")]
    assert deletes == [("10.0.0.11", "node-remove.sh"), ("10.0.0.22", "reset.sh")]


def test_ignore_changes_keeps_the_stored_input(engine):
    lab, runner = engine
    lab.up(base_config(), main)
    runner.calls.clear()
    lab.up(base_config(kubernetesVersion="1.37.1"), main)
    assert ("10.0.0.21", "prepare.sh") not in runner.calls
    assert ("10.0.0.21", "upgrade-worker.sh") in runner.calls


def test_a_failed_command_fails_the_run_and_keeps_what_succeeded(tmp_path):
    runner = RecordingRunner(fail_on="10.0.0.22:join.sh")
    lab = LabEngine(tmp_path / "state.json", runner, log=lambda _: None)
    result = lab.up(base_config(), main)
    assert isinstance(result.error, CommandFailed) or "boom" in str(result.error)
    runner.fail_on = None
    runner.calls.clear()
    result = lab.up(base_config(), main)
    assert result.error is None
    assert ("10.0.0.22", "join.sh") in runner.calls
    assert ("10.0.0.11", "init.sh") not in runner.calls


def test_destroy_deletes_in_reverse_creation_order(engine):
    lab, runner = engine
    lab.up(base_config(), main)
    runner.calls.clear()
    assert lab.destroy().error is None
    resets = [host for host, script in runner.calls if script == "reset.sh"]
    assert resets[-1] == "10.0.0.11"
    assert lab.state == {}


def test_environment_outside_accept_env_is_refused_like_sshd():
    with pytest.raises(CommandFailed, match="AcceptEnv"):
        SshRunner()({"host": "192.0.2.1", "privateKey": "k"}, "true", None, {"SECRET": "x"})
