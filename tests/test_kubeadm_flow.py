"""Issue 11: the kubeadm flow read against upstream (kubernetes v1.36.4): what each script hands kubeadm."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import base_config, inner_script, plan, run_program

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
    "openssl": "cat >/dev/null; echo pubkey",  # reads its stdin, as in the pipe
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


# --- a sandbox for scripts that work on fixed paths ----------------------------------------------------

SANDBOXED = ("/etc", "/var/lib")
needs_root = pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/unshare").exists(),
                                reason="the sandbox needs root and unshare (a private mount namespace)")


def sandboxed(script: str, tmp_path: Path, stubs: dict[str, str], setup: str = "", stdin: str = ""
              ) -> subprocess.CompletedProcess:
    """Runs `script` in a private mount namespace where /etc and /var/lib are overlays whose writes
    land in tmp_path/upper (so the machine's own files are untouched), after `setup` (bash)."""
    (tmp_path / "script.sh").write_text(script)
    mounts = ""
    for index, directory in enumerate(SANDBOXED):
        upper, work = tmp_path / "upper" / str(index), tmp_path / "work" / str(index)
        upper.mkdir(parents=True)
        work.mkdir(parents=True)
        mounts += f"mount -t overlay overlay -o lowerdir={directory},upperdir={upper},workdir={work} {directory}\n"
    wrapper = f"set -e\n{mounts}{setup}\nexec bash {tmp_path}/script.sh\n"
    return run_with_stubs(f"exec unshare --mount --propagation private bash -c {shlex_quote(wrapper)}",
                          tmp_path, stubs, stdin)


def shlex_quote(text: str) -> str:
    import shlex
    return shlex.quote(text)


# --- item 14: upgrade snapshots outside the etcd data directory -----------------------------------------

# The etcd pod sees of the machine only its hostPaths (/var/lib/etcd, /etc/kubernetes/pki/etcd):
# a snapshot saved anywhere else stays inside the container (phases/etcd/local.go@v1.36.4 volumes).
SNAPSHOT_STUBS = {"kubectl": """case "$*" in
  *"snapshot save"*) target=${*: -1}
    if [[ $target == /var/lib/etcd/* ]]; then echo "snapshot of the keyspace" >"$target"; fi ;;
esac"""}
APISERVER_MANIFEST = ("mkdir -p /etc/kubernetes/manifests /var/lib/etcd/member && echo '    image: "
                      "registry.k8s.io/kube-apiserver:v1.36.4' >/etc/kubernetes/manifests/kube-apiserver.yaml")


def preflight_script(version: str) -> str:
    return inner_script(run_program(base_config(kubernetesVersion=version)).named("upgrade-preflight").plain("update"))


@needs_root
def test_upgrade_snapshot_lands_outside_the_etcd_data_directory(tmp_path):
    result = sandboxed(preflight_script("1.37.1") + "ls -A /var/lib/etcd; stat -c %a /var/lib/etcd-snapshots; "
                       "cat /var/lib/etcd-snapshots/before-v1.37.1.db\n", tmp_path, SNAPSHOT_STUBS,
                       setup=APISERVER_MANIFEST)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["member", "700", "snapshot of the keyspace"]


@needs_root
def test_upgrade_snapshots_keep_the_three_newest_and_move_old_ones_out_of_the_data_directory(tmp_path):
    setup = APISERVER_MANIFEST + "\nmkdir -p /var/lib/etcd/kubeadm-cluster-snapshots /var/lib/etcd-snapshots\n" + "".join(
        f"echo {v} >{d}/before-v{v}.db; touch -d '{age} days ago' {d}/before-v{v}.db\n" for v, d, age in (
            ("1.35.8", "/var/lib/etcd/kubeadm-cluster-snapshots", 30), ("1.36.3", "/var/lib/etcd-snapshots", 20),
            ("1.36.4", "/var/lib/etcd-snapshots", 10)))
    result = sandboxed(preflight_script("1.37.1") + "ls -A /var/lib/etcd /var/lib/etcd-snapshots\n", tmp_path,
                       SNAPSHOT_STUBS, setup=setup)
    assert result.returncode == 0, result.stderr
    listing = result.stdout.split("\n\n")
    assert listing[0].split() == ["/var/lib/etcd:", "member"]
    assert listing[1].split() == ["/var/lib/etcd-snapshots:", "before-v1.36.3.db", "before-v1.36.4.db",
                                  "before-v1.37.1.db"]


# --- item 6: the kubeconfig output is read again after an upgrade ---------------------------------------

def test_an_upgrade_reads_the_kubeconfig_again_after_the_first_control_plane_upgraded(stacked):
    """`kubeadm upgrade apply` renews admin.conf's client certificate (phases/upgrade/staticpods.go@v1.36.4)."""
    upgraded = run_program(base_config(kubernetesVersion="1.37.1"))
    assert "kubeconfig" in plan(stacked, upgraded).replaced
    assert upgraded.depends_on("kubeconfig", "cp1-upgrade")
