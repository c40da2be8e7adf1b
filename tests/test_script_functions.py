"""The shell helpers the scripts share, run for real with bash (no machine needed)."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from components.scripts import COMPONENTS_DIR


def bash(code: str, *includes: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    sources = "".join(f"source {COMPONENTS_DIR / name}\n" for name in ("common.sh", *includes))
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + sources + code], input=stdin,
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("current,target", [("1.36.3", "1.36.4"), ("1.36.4", "1.37.1"), ("1.35.9", "1.36.0")])
def test_patch_and_single_minor_upgrades_are_accepted(current, target):
    assert bash(f"check_upgrade_path {current} {target}", "upgrade-lib.sh").returncode == 0


def test_skipping_a_minor_is_refused_naming_both_versions():
    result = bash("check_upgrade_path 1.35.2 1.37.1", "upgrade-lib.sh")
    assert result.returncode == 1
    assert "from 1.35.2 to 1.37.1" in result.stderr
    assert "1.36.x" in result.stderr


@pytest.mark.parametrize("current,target", [("1.37.1", "1.36.4"), ("1.36.4", "1.36.3")])
def test_downgrades_are_refused(current, target):
    result = bash(f"check_upgrade_path {current} {target}", "upgrade-lib.sh")
    assert result.returncode == 1
    assert f"downgrade Kubernetes from {current} to {target}" in result.stderr


def test_prune_snapshots_keeps_the_newest(tmp_path):
    for age, version in enumerate(["1.37.2", "1.37.1", "1.36.4", "1.36.3", "1.35.9"]):
        snapshot = tmp_path / f"before-v{version}.db"
        snapshot.write_text(version)
        os.utime(snapshot, (1_700_000_000 - age * 86400,) * 2)
    (tmp_path / "keep-me.txt").write_text("not a snapshot")
    assert bash(f"prune_snapshots {tmp_path} 3", "upgrade-lib.sh").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "before-v1.36.4.db", "before-v1.37.1.db", "before-v1.37.2.db", "keep-me.txt"]


def test_write_if_changed_reports_change_once(tmp_path):
    target = tmp_path / "sub" / "file.conf"
    code = f"""
    echo a | write_if_changed {target} && echo changed || echo same
    echo a | write_if_changed {target} && echo changed || echo same
    echo b | write_if_changed {target} && echo changed || echo same
    """
    assert bash(code).stdout.split() == ["changed", "same", "changed"]
    assert target.read_text() == "b\n"


def test_unpack_bundle_writes_each_file_readable_by_root_only(tmp_path):
    bundle = "# file: ca.crt\nCERT LINE 1\nCERT LINE 2\n# file: ca.key\nKEY\n"
    result = bash(f"unpack_bundle {tmp_path}/out", "pem-bundle.sh", stdin=bundle)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "ca.crt").read_text() == "CERT LINE 1\nCERT LINE 2\n"
    assert (tmp_path / "out" / "ca.key").read_text() == "KEY\n"
    assert stat.S_IMODE((tmp_path / "out" / "ca.key").stat().st_mode) == 0o600


def test_retry_gives_up_after_the_given_attempts(tmp_path):
    counter = tmp_path / "n"
    result = bash(f"retry 3 0 bash -c 'echo x >> {counter}; false' || echo gave-up")
    assert result.stdout.strip() == "gave-up"
    assert counter.read_text().count("x") == 3


def test_die_names_the_host_and_fails():
    result = bash("die 'something broke'")
    assert result.returncode == 1
    assert "ERROR: something broke" in result.stderr


def test_upgrade_skip_is_refused_before_any_package_change(tmp_path):
    """upgrade-preflight.sh stops on a two-minor jump before it touches anything (here: no kubectl call)."""
    manifests = tmp_path / "kube-apiserver.yaml"
    manifests.write_text("    image: registry.k8s.io/kube-apiserver:v1.35.2\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "kubectl-called"
    (bin_dir / "kubectl").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (bin_dir / "kubectl").chmod(0o755)
    script = (COMPONENTS_DIR / "upgrade-preflight.sh").read_text()
    code = (f"K8S_VERSION=1.37.1 STACKED_ETCD=true ETCD_POD=etcd-cp1\n"
            f"local_control_plane_version() {{ sed -n 's/.*kube-apiserver:v\\([0-9.]*\\).*/\\1/p' {manifests}; }}\n"
            + script.split("set -euo pipefail\n", 1)[1])
    result = bash(code, "upgrade-lib.sh", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert result.returncode == 1
    assert "from 1.35.2 to 1.37.1" in result.stderr
    assert not marker.exists()
