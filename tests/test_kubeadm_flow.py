"""Issue 11: the kubeadm flow read against upstream (kubernetes v1.36.4): what each script hands kubeadm."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import base_config, inner_script, run_program

EXTERNAL = base_config(etcd={"topology": "external"}, nodes=base_config()["nodes"] + [
    {"name": f"etcd{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]} for i in (1, 2, 3)])


@pytest.fixture(scope="module")
def external():
    return run_program(EXTERNAL)


@pytest.fixture(scope="module")
def stacked():
    return run_program(base_config())


def run_with_stubs(script: str, tmp_path: Path, stubs: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    """Runs a rendered script with the named commands replaced by bash stubs (each logs its argv)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in stubs.items():
        stub = bin_dir / name
        stub.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >>{tmp_path}/calls\n{body}\n')
        stub.chmod(0o755)
    return subprocess.run(["bash", "-c", script], input=stdin, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_DIR": str(tmp_path)})


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


# --- item 2: upload-certs gets the cluster's etcd topology -------------------------------------------

JOIN_MATERIAL_STUBS = {
    "kubectl": "exit 0",
    "openssl": "echo pubkey",
    "kubeadm": """case "$1 $2" in
  "version -o") echo v1.37.1 ;;
  "token create") echo abcdef.0123456789abcdef ;;
  "init phase")
    while [[ $# -gt 0 ]]; do if [[ $1 == --config ]]; then cp "$2" "$STUB_DIR/upload-certs.yaml"; fi; shift; done
    echo "[upload-certs] Using certificate key:"; printf 'f%.0s' {1..64}; echo ;;
esac""",
}


def upload_certs_config(run, tmp_path: Path) -> dict[str, dict]:
    result = run_with_stubs(inner_script(run.named("join-material").plain("create")), tmp_path, JOIN_MATERIAL_STUBS)
    assert result.returncode == 0, result.stderr
    [upload] = [c for c in calls(tmp_path) if c.startswith("kubeadm init phase upload-certs")]
    assert "--upload-certs" in upload.split() and "--config" in upload.split()
    return {d["kind"]: d for d in yaml.safe_load_all((tmp_path / "upload-certs.yaml").read_text())}


def test_upload_certs_uploads_the_external_etcd_set(external, tmp_path):
    """Without --config kubeadm uploads the local-etcd set and joins fail on external-etcd-ca.crt."""
    cluster = upload_certs_config(external, tmp_path)["ClusterConfiguration"]
    assert cluster["etcd"]["external"] == {
        "endpoints": [f"https://10.0.0.3{i}:2379" for i in (1, 2, 3)], "caFile": "/etc/kubernetes/pki/etcd/ca.crt",
        "certFile": "/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "keyFile": "/etc/kubernetes/pki/apiserver-etcd-client.key"}


def test_upload_certs_config_names_kubeadms_own_version_not_stable_1(stacked, tmp_path):
    """A version is set (no online stable-1 lookup) and follows upgrades: kubeadm's own, not init's."""
    docs = upload_certs_config(stacked, tmp_path)
    assert docs["ClusterConfiguration"]["kubernetesVersion"] == "v1.37.1"
    assert "local" in docs["ClusterConfiguration"]["etcd"]
    assert docs["InitConfiguration"]["nodeRegistration"]["criSocket"] == "unix:///run/containerd/containerd.sock"


def test_upload_certs_config_does_not_change_with_the_version(stacked):
    """The join material is not re-minted by an upgrade: the version is filled on the node."""
    upgraded = run_program(base_config(kubernetesVersion="1.37.1"))
    assert upgraded.named("join-material").plain("create") == stacked.named("join-material").plain("create")
