"""Every script the program generates passes `bash -n` and shellcheck; the wrapper is plain POSIX sh."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from components.scripts import HEREDOC_MARK, remote_command, render
from harness import KEEPALIVED_AUTH_PASS, base_config, inner_script, run_program

TOPOLOGIES = [
    base_config(),
    base_config(ssh={"user": "root", "port": 2222}, containerRuntime={"type": "cri-o"},
                networking={"kubeProxyMode": "nftables"}, certificates={"renew": "2026-11"}),
    base_config(controlPlane={"endpoint": "10.0.0.100:6443", "loadBalancer": {"type": "kube-vip", "vip": "10.0.0.100",
                                                                               "interface": "eth1"}}),
    base_config(controlPlane={"endpoint": "10.0.0.100:8443",
                              "loadBalancer": {"type": "haproxy-keepalived", "vip": "10.0.0.100"}},
                keepalivedAuthPass=KEEPALIVED_AUTH_PASS),
    base_config(etcd={"topology": "external"}, packageRepositories={
        "kubernetes": "http://mirror.example/k8s/v{minor}/deb/", "containerd": "http://mirror.example/containerd/",
        "allowInsecureHttp": True},
                nodes=base_config()["nodes"] + [
                    {"name": f"etcd{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]} for i in (1, 2, 3)]),
]

pytestmark = pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")


@pytest.fixture(scope="module")
def command_lines() -> dict[str, str]:
    """Every distinct create/update/delete command line of every topology, by a readable label."""
    lines: dict[str, str] = {}
    for index, config in enumerate(TOPOLOGIES):
        for command in run_program(config).commands:
            for field in ("create", "update", "delete"):
                text = command.plain(field)
                if text and text not in lines.values():
                    lines[f"t{index}-{command.name}-{field}"] = text
    return lines


def shellcheck(files: list[Path], shell: str) -> str:
    result = subprocess.run(["shellcheck", "--shell", shell, "--format", "gcc", *map(str, files)],
                            capture_output=True, text=True)
    return result.stdout + result.stderr


def test_every_inner_script_is_shellcheck_clean(command_lines, tmp_path):
    files = []
    for label, line in command_lines.items():
        path = tmp_path / f"{label}.sh"
        path.write_text(inner_script(line))
        files.append(path)
    assert len(files) > 40
    assert shellcheck(files, "bash") == ""


def test_every_inner_script_parses_with_bash_n(command_lines, tmp_path):
    for label, line in command_lines.items():
        path = tmp_path / f"{label}.sh"
        path.write_text(inner_script(line))
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{label}: {result.stderr}"


def test_every_wrapper_is_posix_sh(command_lines, tmp_path):
    files = []
    for label, line in command_lines.items():
        path = tmp_path / f"{label}.wrapper.sh"
        path.write_text(line)
        files.append(path)
        assert subprocess.run(["sh", "-n", str(path)]).returncode == 0, label
    assert shellcheck(files, "sh") == ""


def test_every_script_runs_with_strict_bash_options(command_lines):
    for label, line in command_lines.items():
        assert "\nset -euo pipefail\n" in inner_script(line), label


def test_non_root_users_get_sudo_n_and_root_does_not():
    run = run_program(TOPOLOGIES[0])
    assert run.named("cp1-init").plain("create").rstrip().endswith('sudo -n bash "$script"')
    root_run = run_program(TOPOLOGIES[1])
    assert root_run.named("cp1-init").plain("create").rstrip().endswith('\nbash "$script"')


def test_the_wrapper_runs_the_script_and_passes_stdin_and_exit_code():
    probe = remote_command("#!/usr/bin/env bash\nset -euo pipefail\nread -r line\necho \"got $line\"\nexit 3\n",
                           use_sudo=False)
    result = subprocess.run(["sh", "-c", probe], input="secret-on-stdin\n", capture_output=True, text=True)
    assert result.stdout == "got secret-on-stdin\n"
    assert result.returncode == 3


def test_a_script_containing_the_heredoc_mark_is_refused():
    with pytest.raises(ValueError, match=HEREDOC_MARK):
        render("kubeconfig.sh", {"RENEWAL": HEREDOC_MARK})


def test_parameters_are_shell_quoted():
    script = render("kubeconfig.sh", {"RENEWAL": "it's $(rm -rf /) `x`"})
    assert "RENEWAL='it'\"'\"'s $(rm -rf /) `x`'" in script


def test_parameter_names_must_be_upper_case():
    with pytest.raises(ValueError, match="UPPER_CASE"):
        render("kubeconfig.sh", {"renewal": ""})
