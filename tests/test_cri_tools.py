"""cri-tools (crictl) is installed with the Kubernetes packages, pinned to the minor and held.

kubeadm's packages require nothing since 1.32 (kubernetes/release cmd/krel/templates/latest/metadata.yaml),
so nothing else brings crictl, which /etc/crictl.yaml configures. apt-cache, dpkg-query, apt-get and
apt-mark are fakes that answer like a pkgs.k8s.io v1.36 repository and record what they are asked.
"""

from __future__ import annotations

import os
import subprocess

from components.scripts import COMPONENTS_DIR

MADISON = {
    "kubelet": ["1.36.4-1.1", "1.36.3-1.1"],
    "kubeadm": ["1.36.4-1.1", "1.36.3-1.1"],
    "kubectl": ["1.36.4-1.1", "1.36.3-1.1"],
    "cri-tools": ["1.36.0-1.1", "1.36.1-1.1"],
}


def fake_apt(tmp_path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    madison = "\n".join(f'  {pkg}) printf " {pkg} | %s | https://pkgs.k8s.io/core:/stable:/v1.36/deb  Packages\\n" '
                        f'{" ".join(versions)} ;;' for pkg, versions in MADISON.items())
    tools = {
        "apt-cache": f'[ "$1" = madison ] || exit 1\ncase $2 in\n{madison}\nesac\n',
        "dpkg-query": "exit 1\n",
        "apt-get": f'echo "apt-get $*" >> {calls}\n',
        "apt-mark": f'echo "apt-mark $*" >> {calls}\n',
    }
    for name, body in tools.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def install(tmp_path, *packages: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    env = fake_apt(tmp_path)
    sources = "".join(f"source {COMPONENTS_DIR / name}\n" for name in ("common.sh", "packages.sh"))
    code = (f"set -euo pipefail\n{sources}K8S_VERSION=1.36.4 K8S_MINOR=1.36 K8S_REPO=https://pkgs.k8s.io/core:/stable:/v1.36/deb/\n"
            f"install_kubernetes_packages {' '.join(packages)}\n")
    result = subprocess.run(["bash", "-c", code], capture_output=True, text=True, env={**os.environ, **env})
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    return result, calls


def test_cri_tools_is_installed_at_the_newest_release_of_the_minor(tmp_path):
    result, calls = install(tmp_path, "kubelet", "kubeadm", "kubectl", "cri-tools")
    assert result.returncode == 0, result.stderr
    installs = [c for c in calls if c.startswith("apt-get ") and " install " in c]
    assert len(installs) == 1
    assert installs[0].split()[-4:] == ["kubelet=1.36.4-1.1", "kubeadm=1.36.4-1.1", "kubectl=1.36.4-1.1",
                                        "cri-tools=1.36.1-1.1"]


def test_cri_tools_is_held_with_the_other_packages(tmp_path):
    result, calls = install(tmp_path, "kubelet", "kubeadm", "kubectl", "cri-tools")
    assert result.returncode == 0, result.stderr
    assert "apt-mark hold kubelet kubeadm kubectl cri-tools" in calls
