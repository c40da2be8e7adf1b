"""Every apt-get the program runs waits for the dpkg lock (cloud-init, unattended-upgrades on fresh images)."""

from __future__ import annotations

import re

import pytest

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
