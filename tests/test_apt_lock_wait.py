"""Every apt-get the program runs waits for the dpkg lock (cloud-init, unattended-upgrades on fresh images)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from components.scripts import COMPONENTS_DIR
from harness import base_config, inner_script, run_program

TOPOLOGIES = [
    base_config(),
    base_config(containerRuntime={"type": "cri-o"}),
    base_config(packageRepositories={"kubernetes": "https://mirror.example/k8s/v{minor}/deb/",
                                     "containerd": "https://mirror.example/containerd/"}),
    base_config(etcd={"topology": "external"},
                nodes=base_config()["nodes"] + [{"name": "etcd1", "address": "10.0.0.31", "roles": ["etcd"]}]),
]
# apt-get as a command word: not `command -v apt-get`, not inside a quoted message, not a comment.
APT_GET_CALL = re.compile(r"(?:^|\s)(?<!-v )apt-get\s")


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    found: dict[str, str] = {}
    for index, config in enumerate(TOPOLOGIES):
        for command in run_program(config).commands:
            for field in ("create", "update", "delete"):
                text = command.plain(field)
                if text:
                    found[f"t{index}-{command.name}-{field}"] = inner_script(text)
    return found


def apt_get_calls(script: str) -> list[str]:
    code = (re.sub(r'"[^"]*"', '""', line) for line in script.splitlines() if not line.lstrip().startswith("#"))
    return [line for line in code if APT_GET_CALL.search(line)]


def test_every_apt_get_invocation_waits_for_the_dpkg_lock(scripts):
    calls = {label: apt_get_calls(script) for label, script in scripts.items()}
    assert any(calls.values()), "no apt-get invocation found: the parser is broken"
    missing = [(label, line.strip()) for label, lines in calls.items() for line in lines
               if "-o DPkg::Lock::Timeout=" not in line]
    assert missing == []


def test_the_preparation_installs_through_the_waiting_apt_get(scripts):
    prepare = scripts["t0-cp1-prepare-create"]
    assert "apt-get install" not in prepare  # every install goes through apt_get
    assert re.search(r"^\s*apt_get install ", prepare, re.M)


def test_holding_the_packages_waits_for_the_dpkg_lock(tmp_path):
    """apt-mark hold runs dpkg --set-selections (apt-pkg/statechanges.cc@2.6.1), and dpkg takes its lock
    without waiting (lib/dpkg/dbmodify.c modstatdb_lock, FILE_LOCK_NOWAIT): a hold while, say,
    unattended-upgrades runs fails once and is tried again. The fake apt-mark fails its first hold
    like dpkg does; `sleep` is a no-op so the test does not wait."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    holds = tmp_path / "holds"
    fakes = {
        "apt-get": "exit 0\n",
        "apt-cache": 'echo " kubelet | 1.36.4-1.1 | https://pkgs.k8s.io/core:/stable:/v1.36/deb  Packages"\n',
        "dpkg-query": "printf 1.36.4-1.1\n",
        "apt-mark": (f'[ "$1" = hold ] || exit 0\necho "$*" >> {holds}\n'
                     f'if [ "$(wc -l < {holds})" -eq 1 ]; then\n'
                     '  echo "dpkg: error: dpkg frontend lock was locked by another process with pid 42" >&2; exit 100\nfi\n'),
    }
    for name, body in fakes.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    sources = "".join(f"source {COMPONENTS_DIR / name}\n" for name in ("common.sh", "packages.sh"))
    code = f"set -euo pipefail\n{sources}sleep() {{ :; }}\nK8S_VERSION=1.36.4 K8S_MINOR=1.36\ninstall_kubernetes_packages kubelet\n"
    result = subprocess.run(["bash", "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    assert holds.read_text().splitlines() == ["hold kubelet", "hold kubelet"]
