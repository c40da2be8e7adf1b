"""tests/upstream_tools.go_tool with a `go` double on PATH (it writes the binary it is asked for and counts its
builds and the GOGC each build ran at): a tool asked for while another caller builds it is built once, and both get the
finished binary; builds run at GOGC=400 unless the caller set GOGC."""

import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import upstream_tools
from tests.upstream_tools import go_tool

GO_DOUBLE = """#!/bin/sh
# go build ... -o OUTPUT PACKAGE: slow enough that a second caller asks while this build runs.
echo "build GOGC=${GOGC-unset}" >> "$GO_DOUBLE_BUILDS"
sleep 1
while [ "$1" != "-o" ]; do shift; done
printf 'built\\n' > "$2"
"""


@pytest.fixture
def go_builds(tmp_path, monkeypatch):
    """The go double on PATH, an empty tools cache; yields the file the double logs each build to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "go").write_text(GO_DOUBLE)
    (bin_dir / "go").chmod(stat.S_IRWXU)
    builds = tmp_path / "builds"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GO_DOUBLE_BUILDS", str(builds))
    monkeypatch.setenv("KUBEADM_CLUSTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.setattr(upstream_tools, "BUILDS", [])  # not one of the session's real builds
    yield builds


def ask():
    return go_tool("example", "example.invalid/tool", "v1.0.0", "example.invalid/tool", "main.version")


def test_a_tool_asked_for_twice_at_once_is_built_once(go_builds):
    with ThreadPoolExecutor(2) as pool:
        binaries = list(pool.map(lambda _: ask(), range(2)))

    assert go_builds.read_text().splitlines() == ["build GOGC=400"]
    assert binaries[0] == binaries[1]
    assert binaries[0].read_text() == "built\n"


def test_the_callers_own_gogc_is_kept(go_builds, monkeypatch):
    monkeypatch.setenv("GOGC", "off")
    ask()
    assert go_builds.read_text().splitlines() == ["build GOGC=off"]
