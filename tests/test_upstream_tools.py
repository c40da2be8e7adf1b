"""tests/upstream_tools.go_tool with a `go` double on PATH (it writes the binary it is asked for and counts its
builds): a tool asked for while another caller builds it is built once, and both get the finished binary."""

import os
import stat
from concurrent.futures import ThreadPoolExecutor

from tests import upstream_tools
from tests.upstream_tools import go_tool

GO_DOUBLE = """#!/bin/sh
# go build ... -o OUTPUT PACKAGE: slow enough that a second caller asks while this build runs.
echo build >> "$GO_DOUBLE_BUILDS"
sleep 1
while [ "$1" != "-o" ]; do shift; done
printf 'built\\n' > "$2"
"""


def test_a_tool_asked_for_twice_at_once_is_built_once(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "go").write_text(GO_DOUBLE)
    (bin_dir / "go").chmod(stat.S_IRWXU)
    builds = tmp_path / "builds"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GO_DOUBLE_BUILDS", str(builds))
    monkeypatch.setenv("KUBEADM_CLUSTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(upstream_tools, "BUILDS", [])  # not one of the session's real builds

    def ask():
        return go_tool("example", "example.invalid/tool", "v1.0.0", "example.invalid/tool", "main.version")

    with ThreadPoolExecutor(2) as pool:
        binaries = list(pool.map(lambda _: ask(), range(2)))

    assert builds.read_text().splitlines() == ["build"]
    assert binaries[0] == binaries[1]
    assert binaries[0].read_text() == "built\n"
