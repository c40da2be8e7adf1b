"""The lab's hosts: one network namespace per node of a stack config, each a Debian machine.

Each host has its own network namespace (a veth on the lab's bridge, at exactly the node's
address), hostname (UTS namespace), mounts (a private mount namespace whose root is an overlay over
a cached Debian bookworm debootstrap), PID namespace, and a stock OpenSSH server (Debian's
sshd_config, so AcceptEnv is the distribution's) with a non-root user `kube` that has passwordless
sudo. A client namespace holds the SSH client side and a signed apt repository with the stand-in
Kubernetes packages, served over HTTP. No namespace has a default route: traffic cannot leave the
lab, whatever addresses a config uses.

    python tests/lab/hosts.py up CONFIG.yaml    # prints the derived config's path
    python tests/lab/hosts.py down
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

LAB_DIR = Path(__file__).resolve().parent
CACHE = LAB_DIR / ".cache"
ROOTFS = CACHE / "rootfs-bookworm"
STANDIN = LAB_DIR / "standins" / "standin.py"
KUBELET_STANDIN = LAB_DIR / "standins" / "kubelet.py"
UNITS = LAB_DIR / "standins" / "units"
# One lab stream per pytest-xdist worker (.ci/run runs two side by side): each has its own namespaces and work
# directory. Addresses belong to a stream's own namespaces, so both use the configs' addresses.
PREFIX = f"kclab{os.environ.get('PYTEST_XDIST_WORKER', '').removeprefix('gw')}"
WORK = LAB_DIR / f".work-{PREFIX}"
SWITCH_NS = f"{PREFIX}-sw"
CLIENT_NS = f"{PREFIX}-client"
CLIENT_ADDRESS = "198.19.255.2"
REPO_PORT = 8080
USER = "kube"
BASTION = "bastion"
PACKAGES = ("openssh-server,sudo,curl,gnupg,ca-certificates,iproute2,kmod,procps,iptables,"
            "apt-transport-https,openssl,python3,python3-yaml")
DEFAULT_VERSIONS = ("1.35.9", "1.36.3", "1.36.4", "1.37.1", "1.37.2")
CONTAINERD_VERSION = "2.1.4"


class LabError(Exception):
    """A stack config the lab cannot build hosts for."""


def run(*argv: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, **kwargs)


def running(pid: int) -> bool:
    """Whether PID is a process that has not exited (a zombie has: it only waits to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def in_ns(ns: str, *argv: str, **kwargs: Any) -> subprocess.CompletedProcess:
    return run("ip", "netns", "exec", ns, *argv, **kwargs)


def lab_available() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, mounts)"
    for tool in ("ip", "debootstrap", "unshare", "dpkg-deb", "apt-ftparchive", "gpg", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (.ci/setup installs the packages)"
    return None


# ---------------------------------------------------------------------------------------------
# the base image and the package repository
# ---------------------------------------------------------------------------------------------

def ensure_rootfs() -> Path:
    """A Debian bookworm debootstrap, made once and cached; offline (no apt sources) and with a sudo user."""
    if (ROOTFS / ".complete").exists():
        return ROOTFS
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "rootfs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another stream's build is waited for, not repeated (or broken)
        if not (ROOTFS / ".complete").exists():
            _debootstrap()
    return ROOTFS


def _debootstrap() -> None:
    building = CACHE / "rootfs-building"
    shutil.rmtree(building, ignore_errors=True)
    run("debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(building),
        "http://deb.debian.org/debian")
    (building / "etc/apt/sources.list").unlink(missing_ok=True)
    for path in (building / "etc/apt/sources.list.d").glob("*"):
        path.unlink()
    run("chroot", str(building), "useradd", "--create-home", "--shell", "/bin/bash", USER)
    sudoers = building / "etc/sudoers.d" / USER
    sudoers.write_text(f"{USER} ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)
    # No login session bookkeeping in a namespace host: pam_loginuid cannot write /proc/self/loginuid.
    pam = building / "etc/pam.d/sshd"
    pam.write_text(pam.read_text().replace("session    required     pam_loginuid.so", "# pam_loginuid: not in the lab"))
    # systemd does not run in the lab; its stand-in does the bookkeeping the scripts need.
    shutil.copy(STANDIN, building / "usr/bin/systemctl")
    (building / "usr/bin/systemctl").chmod(0o755)
    for key in (building / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (building / "var/lib/kclab").mkdir(parents=True, exist_ok=True)
    (building / ".complete").touch()
    shutil.rmtree(ROOTFS, ignore_errors=True)
    building.rename(ROOTFS)


def _deb(out_dir: Path, name: str, version: str, files: dict[str, str | Path], depends: str = "") -> None:
    """A package of FILES: text (a stand-in, made executable) or a Path (a real binary, copied as it is)."""
    root = Path(tempfile.mkdtemp(prefix=f"kclab-deb-{name}-"))
    real = any(isinstance(content, Path) for content in files.values())
    try:
        (root / "DEBIAN").mkdir()
        control = (f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: kubeadm-cluster lab\n"
                   f"Description: {'the real ' if real else 'lab stand-in for '}{name}, packaged by the lab\n")
        if depends:
            control += f"Depends: {depends}\n"
        (root / "DEBIAN" / "control").write_text(control)
        for path, content in files.items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_text(content)
            target.chmod(0o644 if "/systemd/" in path else 0o755)
        # Real binaries are large: uncompressed packages build and install in seconds.
        run("dpkg-deb", "--root-owner-group", *(["-Znone"] if real else []), "--build", str(root),
            str(out_dir / f"{name}_{version}_all.deb"))
    finally:
        shutil.rmtree(root)


def _sign_flat_repo(directory: Path, gnupg_home: Path) -> None:
    env = {**os.environ, "GNUPGHOME": str(gnupg_home)}
    packages = run("apt-ftparchive", "packages", ".", cwd=directory).stdout
    (directory / "Packages").write_text(packages)
    release = run("apt-ftparchive", "release", ".", cwd=directory).stdout
    (directory / "Release").write_text(release)
    for target, mode in (("InRelease", "--clearsign"), ("Release.gpg", "--detach-sign")):
        (directory / target).unlink(missing_ok=True)
        run("gpg", "--batch", "--yes", "--armor" if target == "Release.gpg" else "--no-armor", mode,
            "-o", str(directory / target), str(directory / "Release"), env=env)
    (directory / "Release.key").write_text(run("gpg", "--batch", "--armor", "--export", env=env).stdout)


def build_repository(repo: Path, versions: Iterable[str], real: bool = False) -> None:
    """pkgs.k8s.io-shaped flat repositories, one per minor; containerd's; CRI-O's per minor; all signed.
    REAL: the real kubeadm and kubectl of each version (built from the Go module proxy) and the kubelet stand-in."""
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    gnupg_home = Path(tempfile.mkdtemp(prefix="kclab-gnupg-"))
    env = {**os.environ, "GNUPGHOME": str(gnupg_home)}
    try:
        run("gpg", "--batch", "--passphrase", "", "--quick-gen-key", "kubeadm-cluster lab <lab@invalid>",
            "rsa2048", "sign", "never", env=env)
        _build_packages(repo, versions, gnupg_home, real)
    finally:
        run("gpgconf", "--kill", "gpg-agent", env=env, check=False)
        shutil.rmtree(gnupg_home, ignore_errors=True)


def real_kubernetes_packages(version: str) -> dict[str, dict[str, str | Path]]:
    """The files of kubeadm, kubelet and kubectl VERSION as the real packages lay them out (kubernetes/release
    cmd/krel/templates/latest/{kubeadm,kubelet,kubectl}: /usr/bin/NAME; the kubelet's unit and kubeadm's drop-in
    under /usr/lib/systemd/system), with the real kubeadm and kubectl and the lab's kubelet stand-in."""
    from tests.kubernetes_tools import kubernetes_tool  # builds on first use: only real labs need it
    kubelet = {"/usr/bin/kubelet": KUBELET_STANDIN.read_text().replace("@VERSION@", version)}
    for unit in sorted(u for u in UNITS.rglob("*") if u.is_file() and u.relative_to(UNITS).parts[0].startswith("kubelet")):
        kubelet["/usr/lib/systemd/system/" + unit.relative_to(UNITS).as_posix()] = unit.read_text()
    return {"kubeadm": {"/usr/bin/kubeadm": kubernetes_tool("kubeadm", f"v{version}")},
            "kubelet": kubelet,
            "kubectl": {"/usr/bin/kubectl": kubernetes_tool("kubectl", f"v{version}")}}


def real_runtime_packages() -> dict[str, tuple[str, dict[str, str | Path]]]:
    """The real containerd (with ctr and containerd's unit, as Docker's containerd.io lays them out): package name →
    (version, files)."""
    from tests.containerd_tools import build_containerd  # built on first use
    version = "v2.1.5"  # what Docker's containerd.io shipped (tests/containerd_tools.py)
    return {"containerd": (f"{version[1:]}-1", {"/usr/bin/containerd": build_containerd(version),
                                                "/usr/bin/ctr": build_containerd(version, "ctr"),
                                                "/usr/lib/systemd/system/containerd.service":
                                                    (UNITS / "containerd.service").read_text()})}


def _build_packages(repo: Path, versions: Iterable[str], gnupg_home: Path, real: bool) -> None:
    standin = STANDIN.read_text()
    runtime = real_runtime_packages() if real else {}
    if real:
        from tests.containerd_tools import build_crictl  # built on first use
    by_minor: dict[str, list[str]] = {}
    for version in versions:
        by_minor.setdefault(".".join(version.split(".")[:2]), []).append(version)
    for minor, minor_versions in by_minor.items():
        directory = repo / "core" / "stable" / f"v{minor}" / "deb"
        directory.mkdir(parents=True)
        for version in minor_versions:
            revision = f"{version}-1.1"
            code = standin.replace("@VERSION@", version)
            files = real_kubernetes_packages(version) if real else {
                name: {f"/usr/bin/{name}": code} for name in ("kubeadm", "kubelet", "kubectl")}
            # kubeadm's packages require nothing since 1.32 (kubernetes/release
            # cmd/krel/templates/latest/metadata.yaml): preparation must install cri-tools itself.
            _deb(directory, "kubeadm", revision, files["kubeadm"])
            _deb(directory, "kubelet", revision, files["kubelet"], "kubernetes-cni")
            _deb(directory, "kubectl", revision, files["kubectl"])
        # pkgs.k8s.io carries cri-tools MINOR.0 in each minor's repository.
        crictl = build_crictl(f"v{minor}.0") if real else standin.replace("@VERSION@", f"{minor}.0")
        _deb(directory, "cri-tools", f"{minor}.0-1.1", {"/usr/bin/crictl": crictl})
        _deb(directory, "kubernetes-cni", "1.7.1-1.1", {"/opt/cni/bin/.lab": ""})
        _sign_flat_repo(directory, gnupg_home)
        # CRI-O's minor follows Kubernetes' (isv:cri-o:stable:v1.NN).
        directory = repo / "cri-o" / f"v{minor}" / "deb"
        directory.mkdir(parents=True)
        _deb(directory, "cri-o", f"{minor}.0-1.1", {"/usr/bin/crio": standin.replace("@VERSION@", f"{minor}.0")})
        _sign_flat_repo(directory, gnupg_home)
    directory = repo / "containerd" / "deb"
    directory.mkdir(parents=True)
    _deb(directory, "containerd", *runtime.get("containerd", (
        f"{CONTAINERD_VERSION}-1", {"/usr/bin/containerd": standin.replace("@VERSION@", CONTAINERD_VERSION)})))
    _sign_flat_repo(directory, gnupg_home)


# ---------------------------------------------------------------------------------------------
# the lab
# ---------------------------------------------------------------------------------------------

@dataclass
class Host:
    name: str
    addresses: list[str]
    namespace: str
    root: Path
    process: subprocess.Popen | None = None
    host_key: str = ""


HOST_START = """set -e
root={root}
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
mount --bind {journal} "$root/var/lib/kclab"
exec chroot "$root" /bin/sh -c '
  mount -t proc proc /proc
  # Kernel settings that are not per network namespace (the kubelet protectKernelDefaults set that
  # preparation writes): each host gets its own copy, so the lab never changes the kernel of this machine
  # (no single quote in this script: it is inside sh -c quotes).
  for key in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
    copy=/run/kclab-sysctl-$(echo $key | tr / .)
    cat /proc/sys/$key > $copy
    mount --bind $copy /proc/sys/$key
  done
  mount -t sysfs sysfs /sys
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
  # This kernel binds every cgroup controller to v1, so the v2 root lists only hugetlb. A host booted with
  # systemd on cgroup v2 delegates these; the SystemVerification check of kubeadm reads them from this file
  # (k8s.io/system-validators@v1.12.1 validators/cgroup_validator_linux.go) and needs cpu cpuset memory pids.
  echo "cpuset cpu io memory hugetlb pids rdma misc" > /run/kclab-cgroup.controllers
  mount --bind /run/kclab-cgroup.controllers /sys/fs/cgroup/cgroup.controllers
  hostname {name}
  mkdir -p /run/sshd
  exec /usr/sbin/sshd -D -e'
"""


@dataclass
class Lab:
    config: dict[str, Any]
    work: Path = WORK
    versions: tuple[str, ...] = DEFAULT_VERSIONS
    hosts: dict[str, Host] = field(default_factory=dict)
    repo_server: subprocess.Popen | None = None
    registry: Any = None  # images.Registry of a real lab
    charts: Any = None  # charts.ChartRepository of a real lab whose config installs charts
    # Pin every host key (nodes[].hostKey, ssh.bastion.hostKey) in the derived config; otherwise the program
    # records them on first use. A config file asks for pins with a top-level `kclab: {pinHostKeys: true}`.
    pin_host_keys: bool = False
    # The real kubeadm, kubectl, containerd and control plane with the kubelet stand-in (issue 12): a config
    # file asks with `kclab: {real: true}`.
    real: bool = False

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> "Lab":
        document = yaml.safe_load(Path(path).read_text())
        if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
            raise LabError(f"{path} is not a stack config file (no `config:` mapping)")
        kwargs.setdefault("pin_host_keys", bool((document.get("kclab") or {}).get("pinHostKeys")))
        kwargs.setdefault("real", bool((document.get("kclab") or {}).get("real")))
        if kwargs["real"]:
            # A real lab builds every version it packages: only those the config asks for besides its own
            # (`kclab: {versions: [...]}`, e.g. an upgrade's source), not the stand-in lab's defaults.
            kwargs.setdefault("versions", tuple((document.get("kclab") or {}).get("versions") or ()))
        return cls({k.split(":", 1)[1]: v for k, v in document["config"].items() if ":" in k}, **kwargs)

    # -- addresses ------------------------------------------------------------------------------

    @property
    def repo_url(self) -> str:
        return f"http://{CLIENT_ADDRESS}:{REPO_PORT}"

    @property
    def journal_dir(self) -> Path:
        return self.work / "journal"

    @property
    def key_path(self) -> Path:
        return self.work / "id_ed25519"

    def _nodes(self) -> list[dict[str, Any]]:
        bastion = self._bastion()
        # The bastion starts first: with one, the nodes are reachable only through it.
        return ([{"name": BASTION, "address": bastion["host"]}] if bastion else []) + list(self.config["nodes"])

    @property
    def nic(self) -> str:
        """The hosts' network interface: the one the config names for the VIP, else eth0."""
        return ((self.config.get("controlPlane") or {}).get("loadBalancer") or {}).get("interface") or "eth0"

    def _bastion(self) -> dict[str, Any] | None:
        return (self.config.get("ssh") or {}).get("bastion")

    def _all_addresses(self) -> list[str]:
        addresses = {CLIENT_ADDRESS}
        for node in self._nodes():
            addresses.update(a for a in (node["address"], node.get("internalAddress")) if a)
        vip = ((self.config.get("controlPlane") or {}).get("loadBalancer") or {}).get("vip")
        if vip:
            addresses.add(vip)
        for address in addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise LabError(f"{address!r} is not an IP address; the lab places hosts at IP addresses only "
                               f"(use addresses in 198.18.0.0/15)") from None
        return sorted(addresses)

    # -- lifecycle ------------------------------------------------------------------------------

    def up(self) -> "Lab":
        self.down()
        ensure_rootfs()
        self.work.mkdir(parents=True)
        self.journal_dir.mkdir()
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key_path))
        build_repository(self.work / "repo", self.versions, self.real)
        self._network()
        self.repo_server = subprocess.Popen(
            ["ip", "netns", "exec", CLIENT_NS, sys.executable, "-m", "http.server", str(REPO_PORT), "--bind",
             CLIENT_ADDRESS, "--directory", str(self.work / "repo")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if self.real:
            self._start_registry()
        for node in self._nodes():
            self._make_host(node)
        for host in self.hosts.values():
            self.start_host(host.name)
        return self

    def _start_registry(self) -> None:
        """The image registry (tests/lab/images.py) with the images of every version the lab packages."""
        import images  # builds crane and the images on first use: only real labs need them
        self.registry = images.Registry(CLIENT_NS, CLIENT_ADDRESS, self.work / "registry").start()
        self.registry.push(list(dict.fromkeys(image for version in self.versions for image in images.images_for(
            self._from_registry({**self.config, "kubernetesVersion": version})))))
        import charts  # the config's ingress chart and Helm releases, from a chart repository in the lab
        wanted = charts.charts_for(self.config)
        if wanted:
            self.charts = charts.ChartRepository(CLIENT_NS, CLIENT_ADDRESS, self.registry.work / "registry.pem",
                                                 self.registry.ca, self.work / "charts").start(wanted)

    def _from_registry(self, config: dict[str, Any]) -> dict[str, Any]:
        """CONFIG with every image it pulls from the lab's registry, as an air-gapped site points them at its
        mirror: kubeadm's through imageRepository, kube-vip's or haproxy's and keepalived's through
        controlPlane.loadBalancer.images."""
        from components.config import HAPROXY_IMAGE, KEEPALIVED_IMAGE, KUBE_VIP_IMAGE
        config = {**config, "imageRepository": self.registry.repository}
        control_plane = config.get("controlPlane") or {}
        images = {"kube-vip": {"kubeVip": KUBE_VIP_IMAGE},
                  "haproxy-keepalived": {"haproxy": HAPROXY_IMAGE, "keepalived": KEEPALIVED_IMAGE}
                  }.get((control_plane.get("loadBalancer") or {}).get("type"), {})
        if images:
            load_balancer = {**control_plane["loadBalancer"], "images": {
                key: f"{self.registry.address}/{self.registry.path_of(image)}" for key, image in images.items()}}
            config["controlPlane"] = {**control_plane, "loadBalancer": load_balancer}
        if self.charts:
            import charts
            config = charts.from_chart_repository(config, self.charts.url)
        return config

    def _link(self, index: int, namespace: str, addresses: list[str]) -> None:
        switch_end = f"{PREFIX}{index}"
        run("ip", "netns", "add", namespace)
        in_ns(namespace, "ip", "link", "set", "lo", "up")
        run("ip", "link", "add", switch_end, "netns", SWITCH_NS, "type", "veth", "peer", "name", self.nic,
            "netns", namespace)
        in_ns(SWITCH_NS, "ip", "link", "set", switch_end, "master", "br0", "up")
        for address in addresses:
            in_ns(namespace, "ip", "addr", "add", f"{address}/32", "dev", self.nic)
        self._link_up(namespace, addresses)

    def _link_up(self, namespace: str, addresses: list[str]) -> None:
        in_ns(namespace, "ip", "link", "set", self.nic, "up")
        # On-link routes to every other lab address, and nothing else: no default route.
        for address in self._all_addresses():
            if address not in addresses:
                in_ns(namespace, "ip", "route", "replace", f"{address}/32", "dev", self.nic)

    def _network(self) -> None:
        run("ip", "netns", "add", SWITCH_NS)
        in_ns(SWITCH_NS, "ip", "link", "add", "br0", "type", "bridge")
        in_ns(SWITCH_NS, "ip", "link", "set", "br0", "up")
        self._link(0, CLIENT_NS, [CLIENT_ADDRESS])
        # Where the program runs, TCP keepalive as the real pulumi-command sets it on each connection: its ssh.Dial
        # (command@v1.2.1 provider/pkg/provider/remote/connection.go; x/crypto@v0.48.0 ssh/client.go Dial →
        # net.DialTimeout) keeps Go's defaults, idle 15 s, then 9 probes 15 s apart (go1.25 net/dial.go,
        # tcpsock.go KeepAliveConfig). The lab's stand-in dials with OpenSSH, whose TCPKeepAlive takes the
        # system's timers (per namespace): so a session to a machine gone silent ends after 150 s, as upstream's.
        in_ns(CLIENT_NS, "sysctl", "-q", "-w", "net.ipv4.tcp_keepalive_time=15", "net.ipv4.tcp_keepalive_intvl=15",
              "net.ipv4.tcp_keepalive_probes=9")
        bastion = self._bastion()
        if bastion:
            # SSH from the client (where the program runs) reaches the bastion only; the package
            # repository's HTTP traffic with the nodes still flows.
            in_ns(CLIENT_NS, "ip", "route", "add", "unreachable", "default", "table", "100")
            in_ns(CLIENT_NS, "ip", "route", "add", f"{bastion['host']}/32", "dev", self.nic, "table", "100")
            in_ns(CLIENT_NS, "ip", "rule", "add", "ipproto", "tcp", "dport", "22", "lookup", "100")

    def _make_host(self, node: dict[str, Any]) -> None:
        name = node["name"]
        addresses = list(dict.fromkeys(a for a in (node["address"], node.get("internalAddress")) if a))
        base = self.work / "hosts" / name
        for sub in ("upper", "work", "root"):
            (base / sub).mkdir(parents=True)
        run("mount", "-t", "overlay", "overlay", "-o",
            f"lowerdir={ROOTFS},upperdir={base / 'upper'},workdir={base / 'work'}", str(base / "root"))
        host = Host(name, addresses, f"{PREFIX}-{name}", base / "root")
        self._link(len(self.hosts) + 1, host.namespace, addresses)
        root = host.root
        (root / "etc/hostname").write_text(name + "\n")
        lines = ["127.0.0.1 localhost"] + [f"{n.get('internalAddress') or n['address']} {n['name']}"
                                           for n in self._nodes()]
        (root / "etc/hosts").write_text("\n".join(lines) + "\n")
        ssh_dir = root / "home" / USER / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(self.key_path.with_suffix(".pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        run("chroot", str(root), "chown", "-R", f"{USER}:{USER}", f"/home/{USER}/.ssh")
        run("chroot", str(root), "ssh-keygen", "-A")
        # This checkout's systemctl stand-in: the cached image keeps the one of the day it was made.
        shutil.copy(STANDIN, root / "usr/bin/systemctl")
        (root / "usr/bin/systemctl").chmod(0o755)
        host.host_key = " ".join((root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2])
        if self.registry:
            import images
            images.trust_ca(root, self.registry.ca)
            images.containerd_disk(root, base / "containerd")
        self.hosts[name] = host

    def start_host(self, name: str) -> None:
        host = self.hosts[name]
        script = HOST_START.format(root=host.root, journal=self.journal_dir, name=name)
        self._link_up(host.namespace, host.addresses)
        host.process = subprocess.Popen(
            ["ip", "netns", "exec", host.namespace, "unshare", "--uts", "--mount", "--pid", "--fork",
             "--propagation", "private", "--kill-child", "sh", "-c", script],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while self.ssh(name, "true", check=False).returncode != 0:
            if time.monotonic() > deadline or host.process.poll() is not None:
                raise RuntimeError(f"lab host {name} did not start its SSH server")
            time.sleep(0.2)

    def stop_host(self, name: str) -> None:
        """The machine goes away: its processes end and its link goes down (its disk stays)."""
        host = self.hosts[name]
        if host.process and host.process.poll() is None:
            # unshare --fork's child is the machine's PID 1. It exits only after the kernel has killed and reaped
            # every other process of its PID namespace (kernel/pid_namespace.c zap_pid_ns_processes), so once it
            # is gone their TCP connections are closed, while the link is up: their FIN or RST reach the peers.
            init = Path(f"/proc/{host.process.pid}/task/{host.process.pid}/children").read_text().split()[:1]
            os.killpg(host.process.pid, signal.SIGKILL)
            host.process.wait()
            deadline = time.monotonic() + 30
            while init and running(int(init[0])):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"lab host {name}: its processes did not end within 30 s of SIGKILL")
                time.sleep(0.05)
        in_ns(host.namespace, "ip", "link", "set", self.nic, "down")

    def ssh(self, name: str, command: str, check: bool = True, stdin: str = "") -> subprocess.CompletedProcess:
        host = self.hosts[name]
        known = self.work / "known_hosts"
        # Written whole, then renamed: sessions of several threads never read a half-written file.
        draft = known.with_name(f"known_hosts.{threading.get_ident()}")
        draft.write_text("".join(f"{a} {h.host_key}\n" for h in self.hosts.values() for a in h.addresses))
        draft.replace(known)
        options = ["-i", str(self.key_path), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                   "-o", f"UserKnownHostsFile={known}", "-o", "ConnectTimeout=5"]
        if self._bastion() and name != BASTION:
            jump = " ".join(["ssh", *options, "-W", "%h:%p", f"{USER}@{self._bastion()['host']}"])
            options += ["-o", f"ProxyCommand={jump}"]
        return run("ip", "netns", "exec", CLIENT_NS, "ssh", *options, f"{USER}@{host.addresses[0]}", command,
                   check=check, input=stdin)

    def derived_config(self) -> dict[str, Any]:
        """The stack config pointed at the lab: its key, user, port, host keys and package repositories."""
        config = json.loads(json.dumps(self.config))
        config["sshPrivateKey"] = self.key_path.read_text()
        # Every lab host runs stock sshd on port 22 for the lab's user and key.
        config["ssh"] = {**(config.get("ssh") or {}), "user": USER, "port": 22, "agent": False}
        if config["ssh"].get("bastion"):
            config["ssh"]["bastion"] = {**config["ssh"]["bastion"], "user": USER, "port": 22}
            if self.pin_host_keys:
                config["ssh"]["bastion"]["hostKey"] = self.hosts[BASTION].host_key
        for node in config["nodes"]:
            node.pop("user", None)
            node.pop("port", None)
            node.pop("hostKey", None)
            if self.pin_host_keys:
                node["hostKey"] = self.hosts[node["name"]].host_key
        # One key signs all of the lab's repositories (build_repository): pinned like a real mirror's.
        key = self.work / "repo" / "containerd" / "deb" / "Release.key"
        with tempfile.TemporaryDirectory(prefix="kclab-gnupg-") as home:
            listing = run("gpg", "--batch", "--with-colons", "--show-keys", str(key),
                          env={**os.environ, "GNUPGHOME": home}).stdout
        fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        config["packageRepositories"] = {
            **{name: {"url": f"{self.repo_url}/{path}", "keyFingerprint": fingerprint} for name, path in (
                ("kubernetes", "core/stable/v{minor}/deb/"), ("containerd", "containerd/deb/"),
                ("cri-o", "cri-o/v{minor}/deb/"))},
            "allowInsecureHttp": True,  # the lab's own repository on the lab network
        }
        return self._from_registry(config) if self.registry else config

    def journal(self) -> dict[str, Any]:
        path = self.journal_dir / "journal.json"
        return json.loads(path.read_text()) if path.exists() and path.stat().st_size else {}

    def advance_clock(self, hours: float) -> None:
        clock = self.journal_dir / "clock"
        current = float(clock.read_text()) if clock.exists() else 0.0
        clock.write_text(str(current + hours * 3600))

    def down(self) -> None:
        """Remove everything the lab made, also after a partial start."""
        for host in self.hosts.values():
            if host.process and host.process.poll() is None:
                os.killpg(host.process.pid, signal.SIGKILL)
                host.process.wait()
        if self.repo_server and self.repo_server.poll() is None:
            os.killpg(self.repo_server.pid, signal.SIGKILL)
            self.repo_server.wait()
        if self.charts:
            self.charts.stop()
            self.charts = None
        if self.registry:
            self.registry.stop()
            self.registry = None
        remove_stream(PREFIX, self.work)
        self.hosts.clear()


def stream_namespaces(prefix: str) -> list[str]:
    """The network namespaces of the lab stream PREFIX (PREFIX-NAME)."""
    return [ns.split()[0] for ns in run("ip", "netns", "list").stdout.splitlines() if ns.startswith(f"{prefix}-")]


def remove_stream(prefix: str, work: Path) -> None:
    """The namespaces of the lab stream PREFIX with every process in them (also an earlier run's, another
    process's lab), the mounts under WORK, and WORK."""
    namespaces = stream_namespaces(prefix)
    for ns in namespaces:
        for pid in run("ip", "netns", "pids", ns, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    time.sleep(0.2)
    for mount in reversed(run("findmnt", "-rn", "-o", "TARGET").stdout.splitlines()):
        if mount.startswith(f"{work}/"):
            run("umount", "-l", mount, check=False)
    for ns in namespaces:
        run("ip", "netns", "del", ns, check=False)
    shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "up":
        lab = Lab.from_file(argv[1]).up()
        path = lab.work / "derived-config.json"
        path.write_text(json.dumps(lab.derived_config(), indent=1))
        print(path)
        return 0
    if argv[:1] == ["down"]:
        # Every stream's lab (a pytest-xdist worker's PREFIX is kclabN), found by its work directory or namespaces.
        namespaces = run("ip", "netns", "list").stdout.split()
        prefixes = {work.name.removeprefix(".work-") for work in LAB_DIR.glob(".work-kclab*")}
        prefixes |= {ns.split("-", 1)[0] for ns in namespaces if re.match(r"kclab\d*-", ns)}
        for prefix in prefixes:
            remove_stream(prefix, LAB_DIR / f".work-{prefix}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
