"""Private machines for the etcd restore tests (tests/test_etcd_restore_real.py, with doubles of the
control plane; the lab restores three members under the real one, tests/lab/test_scenarios_real_stacked.py):
the stack's control planes and etcd members, each a "machine" of its own, and the program's rendered restore steps run on them.

A machine is a network namespace (198.18.77.0/24 on a bridge), a UTS namespace with the node's name as
hostname, a PID namespace whose PID 1 is the kubelet double (tests/static_pod_kubelet.py: static pods
only), and a mount namespace with its own /etc, /var/lib, /var/log and /usr/local/lib (overlays over the
host's, so nothing of the host changes) and an "image" directory on /usr/local/bin holding the programs
its static pods run (the restore takes etcdctl from /proc/PID/root, as on a real host). Before the
kubelet double starts, a provisioning script of the test's choice runs there (certificates, manifests).
Killing a PID 1 ends its whole namespace: nothing outlives the test.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness import base_config, inner_script, run_program
from tests.etcd_tools import ETCD_VERSION, etcd_tool

SUBNET = "198.18.77"
RESTORE_ID = "r1"
SNAPSHOT = "/var/lib/etcd-backups/etcd-cp1-20261125T060000Z.db"
PKI = "/etc/kubernetes/pki/etcd"


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

    def run(self, script: str, timeout: float = 600, stdin: str | None = None) -> subprocess.CompletedProcess:
        """`script` with bash as root on this member."""
        return subprocess.run(["nsenter", f"--target={self.pid}", "--mount", "--pid", "--net", "--uts", "--",
                               "bash", "-c", script], capture_output=True, text=True, timeout=timeout, input=stdin)

    def sh(self, script: str, timeout: float = 600) -> str:
        result = self.run(script, timeout)
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


# provision(member) -> (image directory for /usr/local/bin, bash run there before the kubelet double starts)
Provision = Callable[[Member], tuple[Path, str]]


def start_member(member: Member, image: Path, prepare: str, seconds: float = 300) -> None:
    """The machine, once `prepare` succeeded there, with the kubelet double as its PID 1."""
    root = member.root
    root.mkdir(parents=True, exist_ok=True)
    overlays = ""
    for i, target in enumerate(("/etc", "/var/lib", "/var/log", "/usr/local/lib")):
        upper, work = root / f"upper{i}", root / f"work{i}"
        upper.mkdir()
        work.mkdir()
        overlays += f"mount -t overlay overlay -o lowerdir={target},upperdir={upper},workdir={work} {target}\n"
    (root / "prepare.sh").write_text(f"set -euo pipefail\n{prepare}\n")
    setup = textwrap.dedent(f"""\
        set -e
        {overlays}
        mount --bind {image} /usr/local/bin
        hostname {member.name}
        bash {root / 'prepare.sh'}
        touch {root / 'prepared'}
        exec {sys.executable} {Path(__file__).parent / 'static_pod_kubelet.py'} {root}
        """).replace("\n        ", "\n")
    member.process = subprocess.Popen(
        ["ip", "netns", "exec", member.netns, "unshare", "--mount", "--pid", "--uts", "--fork", "--mount-proc",
         "--propagation", "private", "bash", "-c", setup],
        stdout=open(root / "node.log", "wb"), stderr=subprocess.STDOUT)
    children = Path(f"/proc/{member.process.pid}/task/{member.process.pid}/children")
    deadline = time.monotonic() + seconds
    while not (member.pid and (root / "prepared").exists()):
        pids = children.read_text().split() if children.exists() else []
        if pids:
            member.pid = int(pids[0])
        assert member.process.poll() is None and time.monotonic() < deadline, \
            f"{member.name} did not start: {(root / 'node.log').read_text()}"
        time.sleep(0.05)


def etcdctl(member: Member, *args: str, endpoints: str | None = None) -> str:
    command = (f"/usr/local/bin/etcdctl --endpoints={endpoints or f'https://{member.ip}:2379'} --cacert={PKI}/ca.crt "
               f"--cert={PKI}/healthcheck-client.crt --key={PKI}/healthcheck-client.key " + " ".join(args))
    return member.sh(command)


def wait_healthy(cluster: Cluster, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        result = cluster.first.run(f"/usr/local/bin/etcdctl --endpoints={cluster.layout.endpoints()} --cacert={PKI}/ca.crt "
                                   f"--cert={PKI}/healthcheck-client.crt --key={PKI}/healthcheck-client.key endpoint health")
        if result.returncode == 0:
            return
        assert time.monotonic() < deadline, result.stdout + result.stderr
        time.sleep(1)


@contextlib.contextmanager
def running(layout: Layout, root: Path, prefix: str, provision: Provision):
    """The layout's machines, provisioned one after the other in `nodes` order, etcd running on its
    members; yields a Cluster."""
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
        for member in members.values():
            start_member(member, *provision(member))
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
                member.process.kill()  # still provisioning: its PID 1 was not known yet
                member.process.wait(30)
        for name in namespaces:
            subprocess.run(["ip", "netns", "del", name], check=False)


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


def install_etcdutl(member: Member) -> None:
    """etcdctl and etcdutl where an earlier scheduled backup put them (etcd-tools.sh: etcdctl copied from
    the running etcd's image, etcdutl downloaded for its version): in a disaster etcd may not run at all."""
    tools = "/usr/local/lib/kubeadm-cluster/etcd"
    member.sh(f"install -D -m 0755 /usr/local/bin/etcdctl {tools}/etcdctl && "
              f"install -D -m 0755 {etcd_tool('etcdutl')} {tools}/etcdutl-{ETCD_VERSION.lstrip('v')}")
