"""bench/real.py: its critical path, and a 10-node smoke run of the real-CLI preview benchmark."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import toolchain

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from real import critical_path  # noqa: E402


def resource(urn, dependencies=(), parent=None):
    return {"urn": urn, "dependencies": list(dependencies), **({"parent": parent} if parent else {})}


def test_critical_path_is_the_heaviest_chain_not_the_longest():
    resources = [resource("a"), resource("b", ["a"]), resource("c", ["b"]), resource("d", ["a"])]
    total, path = critical_path(resources, {"a": 1.0, "b": 1.0, "c": 1.0, "d": 5.0})
    assert (total, path) == (6.0, ["a", "d"])


def test_critical_path_waits_for_a_parent_and_what_it_waits_for():
    # A component (no time of its own) that depends on `slow`: its children start after `slow`.
    resources = [resource("slow"), resource("component", ["slow"]), resource("child", parent="component")]
    total, path = critical_path(resources, {"slow": 4.0, "child": 2.0})
    assert (total, path) == (6.0, ["slow", "child"])


def test_preview_smoke_at_10_nodes():
    try:
        toolchain.env()
    except toolchain.ToolchainUnavailable as e:
        pytest.skip(f"toolchain not built: {e}")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "real.py"), "preview", "10"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    row = re.search(r"^\| 10 \| (\d+) \| (\d+) \|( [\d.]+ \|){8}$", done.stdout, re.M)
    assert row, done.stdout
    commands, resources = int(row.group(1)), int(row.group(2))
    assert commands >= 6 * 10 and resources > commands
