"""Node preparation's containerd config, checked by the real containerd of the versions nodes get.

containerd is a Go module without replace directives; its go.mod has exclude directives, so
`go install …@v` refuses it and the binary is built from a throwaway module that requires it. Builds
are cached by version under ${KUBEADM_CLUSTER_CACHE:-~/.cache/kubeadm-cluster}/tools/ (about 4 minutes
cold on 2 cores, module download included). Docker's containerd.io shipped 2.1.5; 2.2.9 is the newest
2.2 the Go module proxy serves.
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
from tests.upstream_tools import go_tool

MODULE = "github.com/containerd/containerd/v2"
VERSIONS = ["v2.1.5", "v2.2.9"]
PAUSE = "registry.k8s.io/pause:3.10.1"

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed (containerd is built from source)")


def build_containerd(version: str) -> Path:
    """containerd `version`, built once (CGO off, tag no_btrfs, version-stamped) and cached."""
    return go_tool("containerd", MODULE, version, f"{MODULE}/cmd/containerd", f"{MODULE}/version.Version",
                   tags="no_btrfs")

@pytest.fixture(scope="module", params=VERSIONS)
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
