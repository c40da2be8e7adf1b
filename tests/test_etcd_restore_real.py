"""etcd.restore against the real etcd: the rendered restore steps run, in the engine's order, on a real
three-member etcd v3.6.8 cluster (the version kubeadm v1.36.4 runs, tests/etcd_tools.py): stacked (three
control planes) and external (three etcd nodes and a control plane).

Each member is a private machine (tests/etcd_machines.py) whose image on /usr/local/bin holds the real
etcd and etcdctl — kubeadm's etcd image has no etcdutl. TLS as kubeadm sets it up: an etcd CA, server
and peer certificates per member, the healthcheck client pair (cmd/kubeadm/app/phases/certs/certlist.go
@v1.36.4), client and peer certificate auth on.

What cannot run here has doubles: the kubelet (see tests/static_pod_kubelet.py), the API server, controller
manager and scheduler (processes of those names, copies of sleep) and kubectl (`get --raw=/readyz` answers
while a kube-apiserver process runs, as the API server's /readyz does once it serves: k8s.io/apiserver
pkg/server/healthz@v0.36.4). The lab runs the same chain through the engine under the real kubeadm,
kube-apiserver, controller manager and scheduler (tests/lab/test_scenarios_real_stacked.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.etcd_machines import (EXTERNAL, RESTORE_ID, SNAPSHOT, STACKED, SUBNET, Cluster, Layout, Member,
                                 etcdctl, install_etcdutl, restore_steps, run_step, running, wait_healthy)
from tests.etcd_tools import etcd_tool

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nsenter")
                                or not shutil.which("openssl"),
                                reason="needs root, ip, nsenter and openssl for private namespaces and TLS")

KUBECTL_DOUBLE = """#!/usr/bin/env bash
# kubectl double: `get --raw=/readyz` succeeds while a kube-apiserver process runs (see the module docstring).
[[ " $* " == *" get --raw=/readyz "* ]] || { echo "unexpected kubectl $*" >&2; exit 2; }
for comm in /proc/[0-9]*/comm; do [[ $(cat "$comm" 2>/dev/null) == kube-apiserver ]] && { echo ok; exit 0; }; done
exit 1
"""


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path, layout: Layout) -> None:
    """kubeadm's etcd certificates: etcd-ca, per member server and peer (SANs: name, localhost, its IP,
    127.0.0.1), and healthcheck-client (certlist.go@v1.36.4; pkiutil GetEtcdAltNames/GetEtcdPeerAltNames)."""
    directory.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=etcd-ca", cwd=directory)

    def sign(base: str, cn: str, usage: str, sans: str = "") -> None:
        ext = directory / f"{base}.ext"
        ext.write_text(f"extendedKeyUsage={usage}\n" + (f"subjectAltName={sans}\n" if sans else ""))
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{base}.key", "-out", f"{base}.csr",
                "-subj", f"/CN={cn}", cwd=directory)
        openssl("x509", "-req", "-in", f"{base}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{base}.crt", "-days", "2", "-extfile", ext.name, cwd=directory)

    for name in layout.etcd:
        sans = f"DNS:{name},DNS:localhost,IP:{layout.ip(name)},IP:127.0.0.1"
        sign(f"{name}-server", name, "serverAuth,clientAuth", sans)
        sign(f"{name}-peer", name, "serverAuth,clientAuth", sans)
    sign("healthcheck-client", "kube-etcd-healthcheck-client", "clientAuth")


def etcd_manifest(member: Member, layout: Layout) -> str:
    """kubeadm's etcd static pod command (phases/etcd/local.go getEtcdCommand@v1.36.4), with the members
    listed as an external etcd's manifest lists them, all at once (components/etcd.py member_configuration,
    whose external members listen for clients only on their own address)."""
    ip = member.ip
    clients = f"https://{ip}:2379" if layout.external else f"https://127.0.0.1:2379,https://{ip}:2379"
    initial = ",".join(f"{n}=https://{layout.ip(n)}:2380" for n in layout.etcd)
    args = [
        f"--name={member.name}", f"--listen-client-urls={clients}",
        f"--advertise-client-urls=https://{ip}:2379", f"--listen-peer-urls=https://{ip}:2380",
        f"--initial-advertise-peer-urls=https://{ip}:2380", "--data-dir=/var/lib/etcd",
        "--cert-file=/etc/kubernetes/pki/etcd/server.crt", "--key-file=/etc/kubernetes/pki/etcd/server.key",
        "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt", "--client-cert-auth=true",
        "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt", "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key",
        "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt", "--peer-client-cert-auth=true",
        "--snapshot-count=10000", "--listen-metrics-urls=http://127.0.0.1:2381",
        "--feature-gates=InitialCorruptCheck=true", "--watch-progress-notify-interval=5s",
        f"--initial-cluster={initial}", "--initial-cluster-state=new",
    ]
    command = "\n".join(f"    - {a}" for a in ["etcd", *args])
    return ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n"
            "  containers:\n  - name: etcd\n    image: registry.k8s.io/etcd:3.6.8-0\n    command:\n"
            f"{command}\n  hostNetwork: true\n")


CONTROL_PLANE_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def control_plane_manifest(component: str) -> str:
    """A control-plane static pod whose process has the component's name (a copy of sleep)."""
    return (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {component}\n  namespace: kube-system\nspec:\n"
            f"  containers:\n  - name: {component}\n    command:\n    - {component}\n    - infinity\n"
            "  hostNetwork: true\n")


def provision_with_doubles(pki: Path, layout: Layout):
    """Each machine's image (the real etcd and etcdctl, the control plane's doubles) and its files: the
    etcd certificates of `pki`, the static pod manifests, an empty admin.conf for the kubectl double."""

    def provision(member: Member) -> tuple[Path, str]:
        root = member.root
        image = root / "image"
        image.mkdir(parents=True)
        shutil.copy(etcd_tool("etcd"), image / "etcd")
        shutil.copy(etcd_tool("etcdctl"), image / "etcdctl")
        for component in CONTROL_PLANE_PODS:
            shutil.copy("/bin/sleep", image / component)
        (image / "kubectl").write_text(KUBECTL_DOUBLE)
        (image / "kubectl").chmod(0o755)
        files = root / "files"
        (files / "pki").mkdir(parents=True)
        if member.etcd:
            for src, dst in [("ca.crt", "ca.crt"), (f"{member.name}-server.crt", "server.crt"),
                             (f"{member.name}-server.key", "server.key"), (f"{member.name}-peer.crt", "peer.crt"),
                             (f"{member.name}-peer.key", "peer.key"), ("healthcheck-client.crt", "healthcheck-client.crt"),
                             ("healthcheck-client.key", "healthcheck-client.key")]:
                shutil.copy(pki / src, files / "pki" / dst)
            (files / "etcd.yaml").write_text(etcd_manifest(member, layout))
        if member.control_plane:
            for component in CONTROL_PLANE_PODS:
                (files / f"{component}.yaml").write_text(control_plane_manifest(component))
        return image, textwrap.dedent(f"""\
            install -d -m 0755 /etc/kubernetes/manifests /etc/kubernetes/pki
            cp -r {files}/pki /etc/kubernetes/pki/etcd
            touch /etc/kubernetes/admin.conf
            cp {files}/*.yaml /etc/kubernetes/manifests/
            """)

    return provision


def machines(layout: Layout, root: Path, prefix: str):
    make_pki(root / "pki", layout)
    return running(layout, root, prefix, provision_with_doubles(root / "pki", layout))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Stacked etcd on three control planes, running."""
    with machines(STACKED, tmp_path_factory.mktemp("etcd-restore"), f"kcr{os.getpid() % 100000}") as cluster:
        yield cluster


@pytest.fixture
def external_cluster(tmp_path):
    """External etcd on three etcd nodes and one control plane, running."""
    with machines(EXTERNAL, tmp_path, f"kce{os.getpid() % 100000}") as cluster:
        yield cluster


def in_place(member: Member) -> str:
    """A test that the member's static-pod manifests are in /etc/kubernetes/manifests."""
    pods = (["etcd"] if member.etcd else []) + (list(CONTROL_PLANE_PODS) if member.control_plane else [])
    return " && ".join(f"test -f /etc/kubernetes/manifests/{pod}.yaml" for pod in pods)


def unchanged(cluster: Cluster) -> None:
    """Nothing of a refused restore changed anything: manifests in place, data where it was, etcd healthy."""
    for member in cluster.values():
        member.sh(in_place(member) + f" && ! test -e /var/lib/etcd-before-restore-{RESTORE_ID}"
                  + (" && test -d /var/lib/etcd/member" if member.etcd else ""))
    wait_healthy(cluster, 5)


def refused(cluster: Cluster, steps: dict[str, str]) -> str:
    result = run_step(cluster, steps, "etcd-restore-snapshot")
    assert result.returncode != 0, result.stderr
    cluster.first.sh(f"rm -rf /var/lib/kubeadm-cluster/etcd-restore/{RESTORE_ID}")  # what the refused run left
    return result.stderr


def test_a_missing_snapshot_is_refused_naming_it(cluster):
    install_etcdutl(cluster["cp1"])
    stderr = refused(cluster, restore_steps(STACKED, "/var/lib/etcd-backups/nothing-here.db"))
    assert "the snapshot /var/lib/etcd-backups/nothing-here.db (etcd.restore.snapshot) does not exist" in stderr
    assert "nothing was changed" in stderr
    unchanged(cluster)


def test_a_corrupt_snapshot_is_refused_before_anything_stops(cluster):
    install_etcdutl(cluster["cp1"])
    cp1 = cluster["cp1"]
    cp1.sh("install -d /var/lib/etcd-backups && head -c 65536 /dev/urandom > /var/lib/etcd-backups/corrupt.db")
    stderr = refused(cluster, restore_steps(STACKED, "/var/lib/etcd-backups/corrupt.db"))
    assert "etcdutl snapshot status rejects /var/lib/etcd-backups/corrupt.db" in stderr
    unchanged(cluster)


def test_a_snapshot_failing_its_integrity_hash_is_refused(cluster):
    """A real snapshot with one byte changed in its data: status reads it, the restore's hash check fails."""
    install_etcdutl(cluster["cp1"])
    cp1 = cluster["cp1"]
    cp1.sh("install -d -m 0700 /var/lib/etcd-backups")
    etcdctl(cp1, "snapshot", "save", "/var/lib/etcd-backups/damaged.db")
    cp1.sh("printf 'X' | dd of=/var/lib/etcd-backups/damaged.db bs=1 seek=20000 conv=notrunc status=none")
    stderr = refused(cluster, restore_steps(STACKED, "/var/lib/etcd-backups/damaged.db"))
    assert "refused on cp1, nothing was changed" in stderr
    unchanged(cluster)


def test_without_etcdutl_the_restore_is_refused_naming_the_checksum_setting(cluster):
    cp1 = cluster["cp1"]
    cp1.sh("rm -f /usr/local/lib/kubeadm-cluster/etcd/etcdutl*")
    stderr = refused(cluster, restore_steps(STACKED))
    assert "no etcdutl 3.6.8" in stderr and "etcd.backup.etcdutlSha256" in stderr
    unchanged(cluster)


def restore_steps_fetching(command: str) -> dict[str, str]:
    return restore_steps(STACKED, "/var/lib/etcd-fetched/snap.db", fetchCommand=command)


def test_a_failing_fetch_command_is_refused_and_leaves_no_snapshot(cluster):
    install_etcdutl(cluster["cp1"])
    stderr = refused(cluster, restore_steps_fetching('echo "bucket unreachable" >&2; exit 3'))
    assert "bucket unreachable" in stderr and "etcd.restore.fetchCommand failed" in stderr
    cluster["cp1"].sh("! test -e /var/lib/etcd-fetched/snap.db")
    unchanged(cluster)


def test_the_fetch_command_gets_the_destination_and_its_snapshot_is_verified(cluster):
    cp1 = cluster["cp1"]
    install_etcdutl(cp1)
    cp1.sh("install -d -m 0700 /var/lib/etcd-backups")
    etcdctl(cp1, "snapshot", "save", "/var/lib/etcd-backups/elsewhere.db")
    steps = restore_steps_fetching('cp /var/lib/etcd-backups/elsewhere.db "$1"')
    result = run_step(cluster, steps, "etcd-restore-snapshot")
    assert result.returncode == 0, result.stderr
    assert "snapshot /var/lib/etcd-fetched/snap.db (revision" in result.stderr
    cp1.sh("cmp /var/lib/etcd-backups/elsewhere.db /var/lib/etcd-fetched/snap.db")
    cp1.sh(f"rm -rf /var/lib/kubeadm-cluster/etcd-restore/{RESTORE_ID} /var/lib/etcd-fetched")  # only a rehearsal
    unchanged(cluster)


def test_without_etcdctl_and_no_running_etcd_the_restore_is_refused(cluster):
    """Nothing to take etcdctl from: no etcd runs (its manifest is away) and no backup installed one."""
    cp1 = cluster["cp1"]
    cp1.sh("rm -rf /usr/local/lib/kubeadm-cluster/etcd && mv /etc/kubernetes/manifests/etcd.yaml /etc/kubernetes/etcd.yaml.aside")
    try:
        for _ in range(100):
            if cp1.run("pgrep -x etcd").returncode != 0:
                break
            time.sleep(0.1)
        stderr = refused(cluster, restore_steps(STACKED))
        assert "no etcdctl: no etcd runs here to take it from" in stderr
    finally:
        cp1.sh("mv /etc/kubernetes/etcd.yaml.aside /etc/kubernetes/manifests/etcd.yaml")
    wait_healthy(cluster)
    unchanged(cluster)


def test_a_member_add_waits_until_etcd_accepts_it(cluster):
    """Right after a voting member (re)connects, etcd refuses a member add as "unhealthy cluster" for 5 s
    (server/etcdserver/server.go@v3.6.8 mayAddMember): the add step retries instead of failing."""
    first = cluster.first
    four = Layout(("cp1", "cp2", "cp3", "cp4"), ("cp1", "cp2", "cp3", "cp4"))
    add = restore_steps(four)["cp4-etcd-restore-add"]
    state = f"/var/lib/kubeadm-cluster/etcd-restore/{RESTORE_ID}"
    install_etcdutl(first)
    first.sh(f"install -d {state} && touch {state}/first.done")  # the add step runs only in a restore
    try:
        cluster["cp3"].sh("pkill -9 -x etcd")  # the kubelet double starts it again after a second
        result = first.run(add)
        assert result.returncode == 0, result.stderr
        learner = [m for m in json.loads(etcdctl(first, "member", "list", "-w", "json"))["members"]
                   if m["peerURLs"] == [f"https://{SUBNET}.4:2380"]]
        assert len(learner) == 1 and learner[0].get("isLearner")
    finally:
        for member in json.loads(etcdctl(first, "member", "list", "-w", "json"))["members"]:
            if member["peerURLs"] == [f"https://{SUBNET}.4:2380"]:
                etcdctl(first, "member", "remove", format(member["ID"], "x"))
        first.sh(f"rm -rf {state}")
    wait_healthy(cluster)


def restore_after_disaster(cluster: Cluster) -> None:
    """Keys written, a snapshot, a key after it; every member's data destroyed; every restore step run in
    the engine's order: the snapshot's keys are back under a new cluster ID, every member voting and healthy."""
    layout, first = cluster.layout, cluster.first
    for i in range(20):
        etcdctl(first, "put", f"/registry/configmaps/default/cm{i}", f"value{i}")
    first.sh("install -d -m 0700 /var/lib/etcd-backups")
    etcdctl(first, "snapshot", "save", SNAPSHOT)
    etcdctl(first, "put", "/registry/configmaps/default/after-snapshot", "lost")
    old_cluster_id = json.loads(etcdctl(first, "member", "list", "-w", "json"))["header"]["cluster_id"]
    install_etcdutl(first)
    # The disaster: every member's data directory gone, every etcd killed (the kubelet double restarts them).
    for member in cluster.values():
        if member.etcd:
            member.sh("rm -rf /var/lib/etcd/member && pkill -9 -x etcd || true")

    steps = restore_steps(layout)
    assert sorted(steps) == sorted(layout.order())
    for name in layout.order():
        result = run_step(cluster, steps, name)
        assert result.returncode == 0, f"{name}:\n{result.stderr}"
        if name == "etcd-restore-verify":
            report = json.loads(result.stdout.strip().splitlines()[-1])

    wait_healthy(cluster, 30)
    keys = etcdctl(first, "get", "/registry/", "--prefix", "--keys-only", endpoints=layout.endpoints()).split()
    assert sorted(keys) == sorted(f"/registry/configmaps/default/cm{i}" for i in range(20))
    members = json.loads(etcdctl(first, "member", "list", "-w", "json"))
    assert sorted(m["name"] for m in members["members"]) == list(layout.etcd)
    assert not any(m.get("isLearner") for m in members["members"])
    assert members["header"]["cluster_id"] != old_cluster_id
    assert report["clusterId"] == str(members["header"]["cluster_id"]) and report["members"] == list(layout.etcd)
    # The revision jumped (--bump-revision), so watchers' old resourceVersions are compacted away.
    status = json.loads(etcdctl(first, "endpoint", "status", "-w", "json"))
    assert status[0]["Status"]["header"]["revision"] > 1_000_000_000
    for member in cluster.values():
        member.sh(in_place(member) + (f" && test -d /var/lib/etcd-before-restore-{RESTORE_ID}" if member.etcd else ""))
        if member.control_plane:  # running again (the controller manager under the name the kernel keeps)
            member.sh("for i in $(seq 50); do pgrep -x kube-apiserver && pgrep -x kube-controller && pgrep -x "
                      "kube-scheduler && exit 0; sleep 0.2; done; ls -l /etc/kubernetes/manifests; ps -eo pid,comm,args; exit 1")

    # A second run of every step (a later `pulumi up` that changed their text) changes nothing.
    for name in layout.order():
        result = run_step(cluster, steps, name)
        assert result.returncode == 0 and "already done" in result.stderr, f"{name}:\n{result.stderr}"
    assert json.loads(etcdctl(first, "member", "list", "-w", "json"))["header"]["cluster_id"] == members["header"]["cluster_id"]


def test_restore_after_every_data_directory_is_destroyed_brings_the_snapshot_back(cluster):
    restore_after_disaster(cluster)


def test_restore_of_external_etcd_brings_the_snapshot_back_and_restarts_the_control_plane(external_cluster):
    restore_after_disaster(external_cluster)
