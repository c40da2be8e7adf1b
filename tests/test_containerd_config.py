"""Node preparation's containerd config, checked by the real containerd of the versions nodes get.

The binaries are built by tests/containerd_tools.py (cached by version; about 4 minutes cold).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from components.scripts import COMPONENTS_DIR
from tests.containerd_tools import CONTAINERD_VERSIONS, build_containerd

PAUSE = "registry.k8s.io/pause:3.10.1"

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed (containerd is built from source)")


@pytest.fixture(scope="module", params=CONTAINERD_VERSIONS)
def containerd(request) -> Path:
    binary = build_containerd(request.param)
    assert subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split()[2] == request.param
    return binary


def config_step(containerd: Path, tmp_path: Path) -> Path:
    """prepare.sh's containerd_config with the real containerd first on PATH, written where dump reads it."""
    template = (COMPONENTS_DIR / "prepare.sh").read_text()
    function = re.search(r"^containerd_config\(\) \{\n.*?^\}\n", template, re.M | re.S).group(0)
    result = subprocess.run(["bash", "-c", f"set -euo pipefail\n{function}containerd_config {PAUSE}\n"],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "PATH": f"{containerd.parent}:{os.environ['PATH']}"})
    path = tmp_path / "config.toml"
    path.write_text(result.stdout)
    return path


def dump(containerd: Path, config: Path) -> dict:
    """What containerd itself makes of the file (`config dump` merges it over its defaults)."""
    result = subprocess.run([containerd, "--config", str(config), "config", "dump"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return tomllib.loads(result.stdout)


def test_runc_uses_systemd_cgroups(containerd, tmp_path):
    plugins = dump(containerd, config_step(containerd, tmp_path))["plugins"]
    runc = plugins["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is True


def test_the_pause_image_is_kubeadms(containerd, tmp_path):
    plugins = dump(containerd, config_step(containerd, tmp_path))["plugins"]
    assert plugins["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == PAUSE


def test_the_config_is_the_v3_layout(containerd, tmp_path):
    assert tomllib.loads(config_step(containerd, tmp_path).read_text())["version"] == 3
