"""etcd.restore against the real etcd: the rendered restore steps run, in the engine's order, on a real
three-member etcd v3.6.8 cluster (the version kubeadm v1.36.4 runs, tests/etcd_tools.py): stacked (three
control planes) and external (three etcd nodes and a control plane).

Each member is a "machine" of its own: a network namespace (198.18.77.0/24 on a bridge), a PID
namespace whose PID 1 is the kubelet double (tests/static_pod_kubelet.py: static pods only), and a
mount namespace with its own /etc, /var/lib and /usr/local/lib (overlays over the host's, so nothing
of the host changes) and an "image" on /usr/local/bin holding the real etcd and etcdctl — kubeadm's
etcd image has no etcdutl — which the restore takes from /proc/PID/root as on a real host. TLS as
kubeadm sets it up: an etcd CA, server and peer certificates per member, the healthcheck client pair
(cmd/kubeadm/app/phases/certs/certlist.go@v1.36.4), client and peer certificate auth on.
Killing a PID 1 ends its whole namespace: nothing outlives the test.

What cannot run here has doubles: the kubelet (see its module), the API server, controller manager and
scheduler (processes of those names, copies of sleep) and kubectl (`get --raw=/readyz` answers while a kube-apiserver
process runs, as the API server's /readyz does once it serves: k8s.io/apiserver pkg/server/healthz
@v0.36.4).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import base_config, inner_script, run_program
from tests.etcd_tools import ETCD_VERSION, etcd_tool

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nsenter")
                                or not shutil.which("openssl"),
                                reason="needs root, ip, nsenter and openssl for private namespaces and TLS")

SUBNET = "198.18.77"
RESTORE_ID = "r1"
SNAPSHOT = "/var/lib/etcd-backups/etcd-cp1-20261125T060000Z.db"
KUBECTL_DOUBLE = """#!/usr/bin/env bash
# kubectl double: `get --raw=/readyz` succeeds while a kube-apiserver process runs (see the module docstring).
[[ " $* " == *" get --raw=/readyz "* ]] || { echo "unexpected kubectl $*" >&2; exit 2; }
for comm in /proc/[0-9]*/comm; do [[ $(cat "$comm" 2>/dev/null) == kube-apiserver ]] && { echo ok; exit 0; }; done
exit 1
"""


@dataclass(frozen=True)
class Layout:
    """The machines of a stack: etcd members on 198.18.77.1-3, control planes that are no member from .10."""

    etcd: tuple[str, ...]
    control_planes: tuple[str, ...]

    @property
    def machines(self) -> tuple[str, ...]:
        """In the stack's `nodes` order."""
        return tuple(dict.fromkeys(self.control_planes + self.etcd))

    @property
    def first(self) -> str:
        return self.etcd[0]

    @property
    def external(self) -> bool:
        return self.etcd != self.control_planes

    def ip(self, name: str) -> str:
        if name in self.etcd:
            return f"{SUBNET}.{self.etcd.index(name) + 1}"
        return f"{SUBNET}.{10 + self.control_planes.index(name)}"

    def endpoints(self) -> str:
        return ",".join(f"https://{self.ip(n)}:2379" for n in self.etcd)

    def config(self, restore: dict) -> dict:
        nodes = [{"name": n, "address": self.ip(n),
                  "roles": ["etcd"] if self.external and n in self.etcd else ["control-plane"]} for n in self.machines]
        etcd = {"restore": restore, **({"topology": "external"} if self.external else {})}
        return base_config(nodes=nodes, controlPlane={"endpoint": f"{self.ip(self.control_planes[0])}:6443"}, etcd=etcd)

    def order(self) -> list[str]:
        """The engine's order (tests/test_etcd_restore.py checks the dependencies that make it)."""
        return ([f"{n}-etcd-restore-check" for n in self.machines] + ["etcd-restore-snapshot"]
                + [f"{n}-etcd-restore-stop" for n in self.machines] + ["etcd-restore-first"]
                + [f"{n}-etcd-restore-{step}" for n in self.etcd[1:] for step in ("add", "rejoin", "promote")]
                + ["etcd-restore-verify"] + [f"{n}-etcd-restore-apiserver" for n in self.control_planes])


STACKED = Layout(("cp1", "cp2", "cp3"), ("cp1", "cp2", "cp3"))
EXTERNAL = Layout(("etcd1", "etcd2", "etcd3"), ("cp1",))


@dataclass
class Member:
    name: str
    ip: str
    netns: str
    root: Path
    etcd: bool
    control_plane: bool
    process: subprocess.Popen | None = None
    pid: int = 0  # PID 1 of its namespace, as the host sees it

    def run(self, script: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """`script` with bash as root on this member."""
        return subprocess.run(["nsenter", f"--target={self.pid}", "--mount", "--pid", "--net", "--",
                               "bash", "-c", script], capture_output=True, text=True, timeout=timeout)

    def sh(self, script: str) -> str:
        result = self.run(script)
        assert result.returncode == 0, f"{self.name}: {script}\n{result.stdout}\n{result.stderr}"
        return result.stdout


class Cluster(dict):
    """The machines by name, and their layout."""

    def __init__(self, layout: Layout, members: dict[str, Member]):
        super().__init__(members)
        self.layout = layout

    @property
    def first(self) -> Member:
        return self[self.layout.first]


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


def start_member(member: Member, pki: Path, layout: Layout) -> None:
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
    overlays = ""
    for i, target in enumerate(("/etc", "/var/lib", "/usr/local/lib")):
        upper, work = root / f"upper{i}", root / f"work{i}"
        upper.mkdir()
        work.mkdir()
        overlays += f"mount -t overlay overlay -o lowerdir={target},upperdir={upper},workdir={work} {target}\n"
    setup = textwrap.dedent(f"""\
        set -e
        {overlays}
        mount --bind {image} /usr/local/bin
        install -d -m 0755 /etc/kubernetes/manifests /etc/kubernetes/pki
        cp -r {files}/pki /etc/kubernetes/pki/etcd
        touch /etc/kubernetes/admin.conf
        cp {files}/*.yaml /etc/kubernetes/manifests/
        exec {sys.executable} {Path(__file__).parent / 'static_pod_kubelet.py'} {root}
        """).replace("\n        ", "\n")
    member.process = subprocess.Popen(
        ["ip", "netns", "exec", member.netns, "unshare", "--mount", "--pid", "--fork", "--mount-proc",
         "--propagation", "private", "bash", "-c", setup],
        stdout=open(root / "node.log", "wb"), stderr=subprocess.STDOUT)
    children = Path(f"/proc/{member.process.pid}/task/{member.process.pid}/children")
    for _ in range(100):
        pids = children.read_text().split() if children.exists() else []
        if pids:
            member.pid = int(pids[0])
            return
        time.sleep(0.05)
    raise AssertionError(f"{member.name} did not start: {(root / 'node.log').read_text()}")


def etcdctl(member: Member, *args: str, endpoints: str | None = None) -> str:
    pki = "/etc/kubernetes/pki/etcd"
    command = (f"/usr/local/bin/etcdctl --endpoints={endpoints or f'https://{member.ip}:2379'} --cacert={pki}/ca.crt "
               f"--cert={pki}/healthcheck-client.crt --key={pki}/healthcheck-client.key " + " ".join(args))
    return member.sh(command)


def wait_healthy(cluster: Cluster, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        pki = "/etc/kubernetes/pki/etcd"
        result = cluster.first.run(f"/usr/local/bin/etcdctl --endpoints={cluster.layout.endpoints()} --cacert={pki}/ca.crt "
                                   f"--cert={pki}/healthcheck-client.crt --key={pki}/healthcheck-client.key endpoint health")
        if result.returncode == 0:
            return
        assert time.monotonic() < deadline, result.stdout + result.stderr
        time.sleep(1)


@contextlib.contextmanager
def running(layout: Layout, root: Path, prefix: str):
    """The layout's machines, etcd running on its members; yields a Cluster."""
    hub = f"{prefix}h"
    members = {name: Member(name, layout.ip(name), f"{prefix}n{i}", root / name, name in layout.etcd,
                            name in layout.control_planes) for i, name in enumerate(layout.machines, start=1)}
    cluster = Cluster(layout, members)
    namespaces = [hub, *(m.netns for m in members.values())]
    try:
        subprocess.run(["ip", "netns", "add", hub], check=True)
        subprocess.run(["ip", "-n", hub, "link", "add", "br0", "type", "bridge"], check=True)
        subprocess.run(["ip", "-n", hub, "link", "set", "br0", "up"], check=True)
        for i, member in enumerate(members.values(), start=1):
            subprocess.run(["ip", "netns", "add", member.netns], check=True)
            subprocess.run(["ip", "-n", hub, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0",
                            "netns", member.netns], check=True)
            subprocess.run(["ip", "-n", hub, "link", "set", f"v{i}", "master", "br0", "up"], check=True)
            subprocess.run(["ip", "-n", member.netns, "addr", "add", f"{member.ip}/24", "dev", "eth0"], check=True)
            subprocess.run(["ip", "-n", member.netns, "link", "set", "eth0", "up"], check=True)
            subprocess.run(["ip", "-n", member.netns, "link", "set", "lo", "up"], check=True)
        make_pki(root / "pki", layout)
        for member in members.values():
            start_member(member, root / "pki", layout)
        wait_healthy(cluster)
        yield cluster
    finally:
        for member in members.values():
            if member.pid:
                try:
                    os.kill(member.pid, 9)  # PID 1: the kernel ends everything in its namespace
                except ProcessLookupError:
                    pass
            if member.process is not None:
                member.process.wait(30)
        for name in namespaces:
            subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Stacked etcd on three control planes, running."""
    with running(STACKED, tmp_path_factory.mktemp("etcd-restore"), f"kcr{os.getpid() % 100000}") as machines:
        yield machines


@pytest.fixture
def external_cluster(tmp_path):
    """External etcd on three etcd nodes and one control plane, running."""
    with running(EXTERNAL, tmp_path, f"kce{os.getpid() % 100000}") as machines:
        yield machines


def restore_steps(layout: Layout, snapshot: str = SNAPSHOT, **restore: str) -> dict[str, str]:
    """The rendered restore scripts by step name."""
    run = run_program(layout.config({"id": RESTORE_ID, "snapshot": snapshot, **restore}))
    return {c.name: inner_script(c.plain("update")) for c in run.commands if "-restore-" in c.name}


def run_step(cluster: Cluster, steps: dict[str, str], name: str) -> subprocess.CompletedProcess:
    layout = cluster.layout
    host = next((n for n in layout.machines if name.startswith(f"{n}-")), layout.first)
    if name.endswith(("-add", "-promote")):
        host = layout.first  # the first member adds and promotes the others
    return cluster[host].run(steps[name])


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


def install_etcdutl(member: Member) -> None:
    """etcdctl and etcdutl where an earlier scheduled backup put them (etcd-tools.sh: etcdctl copied from
    the running etcd's image, etcdutl downloaded for its version): in a disaster etcd may not run at all."""
    tools = "/usr/local/lib/kubeadm-cluster/etcd"
    member.sh(f"install -D -m 0755 /usr/local/bin/etcdctl {tools}/etcdctl && "
              f"install -D -m 0755 {etcd_tool('etcdutl')} {tools}/etcdutl-{ETCD_VERSION.lstrip('v')}")


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
